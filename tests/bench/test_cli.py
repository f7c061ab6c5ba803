"""``dlskills bench list`` / ``dlskills bench optimizers``: options, outputs, one-line errors, and
the script runner still in place."""

import json

import pytest

from dlskills.cli import main


def test_optimizers_writes_table_results_and_figure(tmp_path, capsys, saved_figures):
    out = tmp_path / "b"
    argv = ["bench", "optimizers", "--problems", "digits_logreg", "--optimizers", "sgd,ksgd"]
    argv += ["--budget", "2", "--seeds", "2", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["protocol"] == {
        "budget": 2,
        "seeds": 2,
        "tuning_seed": 0,
        "selected_by": "val",
        "search": "design",
    }
    sgd = results["problems"]["digits_logreg"]["optimizers"]["sgd"]
    assert [t["hparams"]["lr"] for t in sgd["tuning"]] == [1e-4, 1.0]  # the log grid's ends
    best = max(sgd["tuning"], key=lambda t: t["val"])  # accuracy: the higher validation score
    assert sgd["best_hparams"] == best["hparams"]
    assert f"| digits_logreg | sgd | lr={best['hparams']['lr']:g} | test accuracy % " in printed
    assert sgd["seeds"] == [0, 1] and len(sgd["test_curve_mean"]) == len(sgd["curve_steps"])
    assert sgd["curve_steps"] == list(range(0, 301, 20))
    # kSGD needs a residual closure, which a classifier does not give: skipped with the reason
    assert "| digits_logreg | ksgd | — | skipped: needs a 'residuals' closure" in printed
    assert (out / "summary.md").read_text().startswith("| problem | optimizer |")
    # 2 tuning trials (seed 0) and seed 1 of the best (its seed 0 is a tuning trial)
    assert len((out / "runs.jsonl").read_text().splitlines()) == 3
    assert (out / "digits_logreg.png").stat().st_size < 300_000
    (figure,) = saved_figures
    assert saved_figures.readable(figure)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--problems", "digit_mlp"], "unknown problem 'digit_mlp'; did you mean 'digits_mlp'?"),
        (["--optimizers", "adamm"], "adamm"),
        (["--budget", "0"], "budget must be an int >= 1, got 0"),
        (["--seeds", "x"], "argument --seeds: invalid int value: 'x'"),
        (["--problems", ","], "the list is empty"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["--search", "grid"], "argument --search: invalid choice: 'grid' (choose from"),
    ],
)
def test_bad_input_is_one_line(options, message, capsys, tmp_path):
    assert main(["bench", "optimizers", *options, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dlskills bench: error: ") and message in err
    assert err.count("\n") == 1


def test_list_shows_scripts_and_the_optimizer_benchmark(capsys):
    assert main(["bench", "list"]) == 0
    listed = capsys.readouterr().out
    assert "optim_step" in listed and "trainer_overhead" in listed
    assert "\noptimizers " in listed and "digits_vae:" in listed
    assert main(["bench"]) == 0
    assert capsys.readouterr().out == listed
    assert main(["bench", "list", "extra"]) == 2
    assert "bench list takes no arguments" in capsys.readouterr().err
