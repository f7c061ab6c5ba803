import json
import math

import pytest

from dlskills import catalog, repro
from dlskills.repro.result import (
    Claim,
    Measured,
    Run,
    Threshold,
    code_hash,
    judge,
    load,
    resolve_seeds,
)


def test_measured_over_seeds_is_mean_and_sample_std():
    row = Measured.over_seeds("acc", "%", [1.0, 2.0, 4.0], [0, 1, 2])
    assert row.mean == pytest.approx(7 / 3)
    assert row.std == pytest.approx(
        math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2)
    )
    assert row.values == (1.0, 2.0, 4.0) and row.seeds == (0, 1, 2)
    assert Measured.exact("n", "", 3).std is None
    with pytest.raises(ValueError, match="one value per seed"):
        Measured.over_seeds("acc", "%", [1.0], [0, 1])


@pytest.mark.parametrize(
    ("op", "value", "holds"),
    [
        (">=", 2.0, True),
        (">", 2.0, False),
        ("<=", 2.0, True),
        ("<", 2.0, False),
        (">=", 2.5, False),
    ],
)
def test_threshold_ops(op, value, holds):
    assert Threshold("x", op, value, "why").holds(Measured.exact("x", "", 2.0)) is holds


def test_threshold_rejects_unknown_op_and_nan_never_holds():
    with pytest.raises(ValueError, match="op must be one of"):
        Threshold("x", "=>", 1.0, "why")
    assert not Threshold("x", "<=", 1.0, "").holds(Measured.exact("x", "", math.nan))


def test_verdict_follows_from_the_thresholds():
    rows = [Measured.exact("a", "", 1.0), Measured.exact("b", "s", 5.0)]
    a_ok, b_ok = Threshold("a", ">=", 0.5, ""), Threshold("b", "<=", 10, "")
    b_bad = Threshold("b", "<", 2, "")
    assert judge(rows, [a_ok, b_ok]) == ("reproduced", "all 2 thresholds hold")
    verdict, reason = judge(rows, [a_ok, b_bad])
    assert verdict == "partial" and reason == "1 of 2 thresholds fail: b = 5 s (needs < 2)"
    assert judge(rows, [b_bad])[0] == "not reproduced"
    with pytest.raises(ValueError, match="not measured"):
        judge(rows, [Threshold("c", ">", 0, "")])
    with pytest.raises(ValueError, match="at least one threshold"):
        judge(rows, [])


def _result(tmp_path=None, scale="fast", seeds=None):
    run = Run("1812.05994", scale, seeds, tmp_path, default_seeds={"fast": (0, 1), "full": (0,)})
    if tmp_path is not None:
        run.figure("f.png", lambda path: path.write_bytes(b"\x89PNG"))
    return run.result(
        claim=Claim("text", "5β", "Thm 1"),
        measured=[Measured.over_seeds("x", "", [1.0, 3.0], run.seeds)],
        thresholds=[Threshold("x", ">=", 1.5, "why")],
        config={"width": 8},
        note="a note",
    )


def test_result_round_trips_through_result_json_with_its_run_record(tmp_path):
    result = _result(tmp_path)
    assert result.verdict == "reproduced" and result.reason == "all 1 thresholds hold. a note"
    path = result.write(tmp_path)
    assert load(path) == result == load(tmp_path)
    data = json.loads(path.read_text())
    assert data["schema"] == 1 and data["figures"] == ["f.png"]
    assert (
        data["title"]
        == "Products of Many Large Random Matrices and Gradients in Deep Neural Networks"
    )
    run = data["run"]
    assert run["config"] == {"scale": "fast", "width": 8} and run["seeds"] == [0, 1]
    assert len(run["code_hash"]) == 64 and run["code_hash"] == code_hash()
    for key in ("dlskills", "commit", "torch", "python", "threads", "platform", "started"):
        assert key in run
    assert not list(tmp_path.glob(".*.tmp"))


def test_write_refuses_missing_figures_and_files_in_the_way(tmp_path):
    result = _result(tmp_path)
    other = tmp_path / "other"
    with pytest.raises(FileNotFoundError, match=r"f\.png"):
        result.write(other)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        result.write(tmp_path / "file")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"schema": 2}', "schema 2 is not supported"),
        ('{"schema": 1, "claim": {}}', "missing 'measured'"),
    ],
)
def test_load_names_the_malformed_file(tmp_path, content, message):
    path = tmp_path / "result.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as caught:
        load(path)
    assert str(path) in str(caught.value)


def test_load_rejects_an_unknown_verdict_and_a_missing_file(tmp_path):
    data = _result().to_dict()
    data["verdict"] = "mostly"
    (tmp_path / "result.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="unknown verdict 'mostly'"):
        load(tmp_path)
    with pytest.raises(FileNotFoundError, match="no result file"):
        load(tmp_path / "nothing")


def test_seeds_and_scale_are_validated_before_running():
    assert resolve_seeds(None, (4, 5)) == (4, 5)
    assert resolve_seeds(3, ()) == (0, 1, 2)
    assert resolve_seeds([7, 2], ()) == (7, 2)
    for bad in (0, [], [1, 1], [-1], ["a"]):
        with pytest.raises(ValueError, match="seeds"):
            resolve_seeds(bad, ())
    with pytest.raises(ValueError, match="scale must be one of"):
        _result(scale="huge")


def test_registry_gives_every_registered_entry_a_declared_fast_verdict():
    ids = repro.ids()
    assert "1812.05994" in ids
    checked_by = {catalog.reproduction_of(entry) for entry in catalog.load()}
    for entry_id in ids:
        assert repro.fast_verdict(entry_id) in repro.VERDICTS
        assert entry_id in checked_by, f"no catalog entry is checked by the reproduction {entry_id}"
    with pytest.raises(ValueError, match="no registered reproduction"):
        repro.get("1404.7828")  # a survey: a doc entry, no check
    with pytest.raises(ValueError, match="fast verdict must be one of"):
        repro.register("x", fast="yes")
