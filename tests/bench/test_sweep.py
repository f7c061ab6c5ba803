"""dlskills.bench.sweep / ``dlskills sweep`` (1510.03820's sensitivity tool on Optuna): the
designs' points, the analysis against sums done here, every sampler, the stored spec, Ctrl-C and
a killed process (SIGKILL) that a second run resumes without losing a finished trial."""

import itertools
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time

import optuna
import pytest

from dlskills.bench.sweep import (
    SweepSpec,
    best,
    distributions,
    open_study,
    plot_sensitivity,
    run_sweep,
    sensitivity,
)
from dlskills.cli import main

optuna.logging.set_verbosity(optuna.logging.WARNING)
SPACE = {"lr": [0.01, 0.001, 0.1], "width": [16, 8], "region_sizes": [(3, 4, 5), (2,)]}


def fake_fit(config):
    """A known accuracy surface instead of training: lr, width, region sizes and seed add up."""
    args = config.model_args
    val = 50 + 100 * config.lr + args["width"] / 8 + len(args["region_sizes"]) + config.seed
    return {"val": val, "test": val - 1}


def expected(params, seed):
    return 50 + 100 * params["lr"] + params["width"] / 8 + len(params["region_sizes"]) + seed


def test_grid_and_ofat_points():
    grid = SweepSpec(SPACE, sampler="grid").points()
    assert grid == [
        {"lr": a, "width": b, "region_sizes": c} for a, b, c in itertools.product(*SPACE.values())
    ]
    baseline = {"lr": 0.01, "width": 16, "region_sizes": (3, 4, 5)}
    assert SweepSpec(SPACE, sampler="ofat").points() == [
        baseline,
        {**baseline, "lr": 0.001},
        {**baseline, "lr": 0.1},
        {**baseline, "width": 8},
        {**baseline, "region_sizes": (2,)},
    ]
    assert SweepSpec(SPACE, sampler="tpe").points() is None


def test_config_routes_keys_and_model_keywords():
    spec = SweepSpec({"lr": [0.1]}, base={"model": "textcnn", "epochs": 3})
    config = spec.config({"lr": 0.1, "pooling": "avg"}, seed=4)
    assert (config.lr, config.epochs, config.seed) == (0.1, 3, 4)
    assert config.model_args == {"pooling": "avg"} and config.progress is False


def test_grid_analysis_matches_the_sums():
    spec = SweepSpec(SPACE, sampler="grid", repeats=2, seed=3)
    study = run_sweep(spec, fit=fake_fit)
    points = spec.points()
    assert len(study.trials) == len(points) == 12
    lr = distributions(study, "lr")
    for value in SPACE["lr"]:
        wanted = [expected(p, s) for p in points if p["lr"] == value for s in (3, 4)]
        assert sorted(lr[value]) == pytest.approx(sorted(wanted))
    means = {v: statistics.fmean(a) for v, a in lr.items()}
    assert sensitivity(study)["lr"] == pytest.approx(max(means.values()) - min(means.values()))
    assert sensitivity(study)["lr"] == pytest.approx(100 * (0.1 - 0.001))
    assert sensitivity(study)["width"] == pytest.approx(1.0)
    assert sensitivity(study, "test") == pytest.approx(sensitivity(study))
    top = best(study)
    assert top["params"] == {"lr": 0.1, "width": 16, "region_sizes": "3,4,5"}
    assert top["test_accuracy"] == pytest.approx(top["val_accuracy"] - 1)


def test_ofat_compares_each_key_at_the_baseline():
    study = run_sweep(SweepSpec(SPACE, sampler="ofat"), fit=fake_fit)
    assert len(study.trials) == 5
    baseline = {"lr": 0.01, "width": 16, "region_sizes": (3, 4, 5)}
    # the width-8 trial keeps lr at 0.01: only baseline-lr trials enter the width comparison
    assert distributions(study, "width") == {
        16: [expected(baseline, 0)],
        8: [expected({**baseline, "width": 8}, 0)],
    }
    assert distributions(study, "region_sizes")["2"] == [expected(baseline, 0) - 2]


def test_plot_draws_the_keys_that_have_finished_trials(tmp_path, saved_figures):
    study = run_sweep(SweepSpec(SPACE, sampler="ofat"), trials=2, fit=fake_fit)
    covered = sensitivity(study)  # the keys some finished trial compares at the baseline
    plot_sensitivity(study, tmp_path / "sensitivity.png")
    (fig,) = saved_figures
    assert saved_figures.readable(fig)
    shown = [ax.get_xlabel() for ax in fig.axes if ax.get_visible()]
    assert shown == sorted(covered, key=lambda k: -covered[k])
    with pytest.raises(ValueError, match="no finished trial"):
        plot_sensitivity(open_study(SweepSpec(SPACE)), tmp_path / "empty.png")


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_random_and_tpe_reach_the_trial_count(sampler):
    spec = SweepSpec(SPACE, sampler=sampler)
    with pytest.raises(ValueError, match="needs a number of trials"):
        run_sweep(spec, fit=fake_fit)
    done = []
    study = run_sweep(spec, trials=7, fit=fake_fit, progress=lambda d, t, w: done.append((d, t)))
    assert len(study.trials) == 7 and done[-1] == (7, 7)
    assert all(t.user_attrs["val"] == [t.value] for t in study.trials)


def test_a_study_keeps_its_spec(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    run_sweep(SweepSpec(SPACE, sampler="ofat"), storage=storage, fit=fake_fit)
    with pytest.raises(ValueError, match="another spec"):
        run_sweep(SweepSpec(SPACE, sampler="grid"), storage=storage, fit=fake_fit)
    with pytest.raises(ValueError, match="RDB URL"):
        run_sweep(SweepSpec(SPACE), storage="study.db", fit=fake_fit)
    with pytest.raises(ValueError, match="sampler"):
        SweepSpec(SPACE, sampler="bayes")
    with pytest.raises(ValueError, match="'width' lists a value twice"):
        SweepSpec({"width": [8, 8]})


def test_ctrl_c_requeues_the_interrupted_trial(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    spec = SweepSpec(SPACE, sampler="grid")
    calls = []

    def interrupted_third(config):
        calls.append(config)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return fake_fit(config)

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, storage=storage, fit=interrupted_third)
    study = run_sweep(spec, storage=storage, fit=fake_fit)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) == 12
    assert sorted(map(str, (t.user_attrs["params"] for t in finished))) == sorted(
        str({k: (",".join(map(str, v)) if isinstance(v, tuple) else v) for k, v in p.items()})
        for p in spec.points()
    )


GRID = ["--param", "width=[4,8,16,32]", "--param", "lr=[0.001,0.003,0.01,0.03,0.1]"]


def test_a_killed_sweep_resumes_without_losing_a_finished_trial(tmp_path):
    """20 trials on digits (tiny MLPs, one epoch each); SIGKILL after some have finished; the same
    command again finishes the grid, keeping every trial finished before the kill as it was."""
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "dlskills", "sweep", "--model", "mlp", "--dataset", "digits",
               *GRID, "--set", "epochs=1", "--set", "ema_decay=0", "--set", "batch_size=128",
               "--heartbeat", "1", "--out", str(out), "--no-progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    storage = f"sqlite:///{out / 'study.db'}"
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120

    def count_finished():
        """Finished trials, read from the database without taking a write lock."""
        if not (out / "study.db").is_file():
            return 0
        database = sqlite3.connect(f"file:{out / 'study.db'}?mode=ro", uri=True, timeout=60)
        try:
            query = "SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'"
            return database.execute(query).fetchone()[0]
        except sqlite3.OperationalError:  # the tables are not made yet
            return 0
        finally:
            database.close()

    def finished():
        study = optuna.load_study(study_name="mlp-digits", storage=storage)
        return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]

    while count_finished() < 5:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    before = {t.number: (t.user_attrs["params"], t.value) for t in finished()}
    assert 5 <= len(before) < 20

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert "20 finished trials" in done.stdout
    after = {t.number: (t.user_attrs["params"], t.value) for t in finished()}
    assert len(after) == 20 and all(after[n] == before[n] for n in before)
    widths, lrs = [4, 8, 16, 32], [0.001, 0.003, 0.01, 0.03, 0.1]
    assert sorted((p["width"], p["lr"]) for p, _ in after.values()) == sorted(
        itertools.product(widths, lrs)
    )
    assert (out / "sweep.json").is_file() and (out / "sensitivity.png").is_file()


def test_cli_help_and_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--sampler {grid,ofat,random,tpe}" in text and "--storage URL" in text
    assert main(["sweep", "--model", "mlp"]) == 2
    assert "--param: give the values to sweep for 'mlp'" in capsys.readouterr().err


def test_param_values_are_literals_or_words():
    from dlskills._cli.sweep import parse_param

    assert parse_param("lr=0.1,0.01") == ("lr", [0.1, 0.01])
    assert parse_param("region-sizes=[[3],[3,4,5]]") == ("region_sizes", [[3], [3, 4, 5]])
    assert parse_param("activation=[relu,tanh]") == ("activation", ["relu", "tanh"])
    assert parse_param("dropout=0.5") == ("dropout", [0.5])
    with pytest.raises(ValueError, match="KEY=\\[V1,V2"):
        parse_param("lr")
