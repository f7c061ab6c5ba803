import json

import pytest

from dlskills import repro
from dlskills.cli import main
from dlskills.repro.result import Claim, Measured, Run, Threshold


def test_list_names_the_registered_reproductions(capsys):
    assert main(["repro", "--list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "fast: reproduced" in lines["1812.05994"]
    assert "1404.7828" not in lines  # a survey (doc entry): no reproduction


def test_unknown_ids_and_entries_without_a_reproduction_fail_cleanly(capsys, tmp_path):
    assert main(["repro", "1812.0599", "--out", str(tmp_path / "x")]) == 2
    assert "did you mean 1812.05994" in capsys.readouterr().err
    assert main(["repro", "1404.7828", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "1404.7828" in err and "has no registered reproduction (status: implemented" in err
    assert not (tmp_path / "x").exists()


def test_out_pointing_at_a_file_is_a_one_line_error(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["repro", "1812.05994", "--out", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file" in err
    assert main(["repro", "1812.05994", "--seeds", "0"]) == 2
    assert "--seeds must be at least 1" in capsys.readouterr().err


def test_prints_the_table_and_writes_result_and_figure(capsys, tmp_path):
    out = tmp_path / "j"
    assert main(["repro", "1812.05994", "--seeds", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "variance slope" in printed and "verdict:" in printed and "paper's number" in printed
    data = json.loads((out / "result.json").read_text())
    assert data["id"] == "1812.05994" and data["run"]["seeds"] == [0]
    assert data["verdict"] in repro.VERDICTS
    assert data["figures"] == ["variance_vs_beta.png"]
    assert (out / "variance_vs_beta.png").read_bytes()[:4] == b"\x89PNG"
    assert repro.load(out).measured[0].name == "variance slope"


def _tiny(scale="fast", seeds=None, out=None):
    run = Run("1812.05994", scale, seeds, out, default_seeds={"fast": (0,), "full": (0, 1)})
    return run.result(
        claim=Claim("c", "1", "Fig. 1"),
        measured=[Measured.exact("x", "", 2.0)],
        thresholds=[Threshold("x", ">=", 1.0, "why")],
        config={},
    )


def test_all_writes_one_folder_per_entry_and_an_index(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(repro, "ids", lambda: ["1812.05994"])
    monkeypatch.setattr(repro, "get", lambda entry_id: _tiny)
    assert main(["repro", "--all", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "1 reproductions at scale fast in" in out
    assert "repro [1/1] 1812.05994" in err and "reproduced" in err
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["entries"] == [
        {"id": "1812.05994", "verdict": "reproduced", "path": "1812.05994/result.json"}
    ]
    assert repro.load(tmp_path / "1812.05994").verdict == "reproduced"
    assert (tmp_path / "table.md").read_text().splitlines()[2] == (
        "| 1812.05994 | 1 | Fig. 1 | reproduced |"
    )


def test_ctrl_c_leaves_no_result_json(monkeypatch, capsys, tmp_path):
    (tmp_path / "result.json").write_text("{}")  # an older run's result is not kept either

    def interrupted(scale="fast", seeds=None, out=None):
        (out / "curve.png").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(repro, "get", lambda entry_id: interrupted)
    assert main(["repro", "1812.05994", "--out", str(tmp_path)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not (tmp_path / "result.json").exists()
    assert not list(tmp_path.glob(".result.json*"))


def test_wrong_arguments(capsys):
    assert main(["repro"]) == 2
    assert "name an entry id" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["repro", "1812.05994", "--scale", "huge"])
