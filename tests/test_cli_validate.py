"""`dlskills validate --pmv` (1905.10201): spec parsing, the ranked table, PNG and JSON."""

import json

import pytest

from dlskills._cli.validate import parse_models, parse_rates
from dlskills.cli import main


def test_parse_models_and_rates():
    assert parse_models("mlp:width=4, mlp:width=64:depth=1,cnn") == [
        ("mlp:width=4", "mlp", {"width": 4}),
        ("mlp:width=64:depth=1", "mlp", {"width": 64, "depth": 1}),
        ("cnn", "cnn", {}),
    ]
    # a tuple value has the syntax of `dlskills train --model-arg hidden=64,32`
    assert parse_models("mlp:hidden=64,32,cnn") == [
        ("mlp:hidden=64,32", "mlp", {"hidden": (64, 32)}),
        ("cnn", "cnn", {}),
    ]
    with pytest.raises(ValueError, match="key=value"):
        parse_models("mlp:width")
    with pytest.raises(ValueError, match="twice"):
        parse_models("mlp,mlp")
    assert parse_rates("0, 0.25,0.5") == (0.0, 0.25, 0.5)
    with pytest.raises(ValueError, match="noise-rates"):
        parse_rates("0,a")


def test_validate_pmv_ranks_and_writes(tmp_path, capsys):
    png, report = tmp_path / "pmv.png", tmp_path / "pmv.json"
    code = main(
        [
            "validate", "--pmv", "--dataset", "spirals", "--train-samples", "120",
            "--models", "mlp:width=1:depth=1,mlp:width=32:depth=1", "--noise-rates", "0,0.3",
            "--steps", "60", "--lr", "0.05", "--out", str(png), "--json", str(report),
        ]
    )  # fmt: skip
    assert code == 0
    out, err = capsys.readouterr()
    assert "PMV on spirals (120 training samples, 2 classes)" in out
    assert "PMV picks" in out
    assert png.stat().st_size > 1000
    results = json.loads(report.read_text())
    relevances = [r["relevance"] for r in results]
    assert relevances == sorted(relevances, reverse=True)  # ranked, most relevant first
    assert {r["name"] for r in results} == {"mlp:width=1:depth=1", "mlp:width=32:depth=1"}
    for result in results:
        # relevance is minus the least-squares slope through the two points
        rise = result["accuracies"][1] - result["accuracies"][0]
        assert result["relevance"] == pytest.approx(-rise / 0.3)
        assert 0.0 <= result["eval_accuracy"] <= 1.0
    # stderr is not a terminal: one plain progress line per fit (2 models x 2 noise rates)
    fits = [line.split(" (")[0] for line in err.splitlines() if line.startswith("validate --pmv")]
    assert fits == [
        "validate --pmv: fit 1/4 mlp:width=1:depth=1 at noise 0",
        "validate --pmv: fit 2/4 mlp:width=1:depth=1 at noise 0.3",
        "validate --pmv: fit 3/4 mlp:width=32:depth=1 at noise 0",
        "validate --pmv: fit 4/4 mlp:width=32:depth=1 at noise 0.3",
    ]


def test_validate_errors(capsys):
    assert main(["validate", "--models", "mlp"]) == 2
    assert "--pmv" in capsys.readouterr().err
    assert main(["validate", "--pmv", "--models", "nosuchmodel", "--dataset", "spirals"]) == 2
