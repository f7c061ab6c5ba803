"""The benchmark protocol: the search grids against their definitions, a trial against a literal
SGD loop, the selection and statistics against hand-made records, resume after a kill."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dlskills.bench import problems, protocol, surfaces


def test_radical_inverse_and_hammersley_against_their_definition():
    # base 2: 1 → .1₂ = 0.5, 2 → .01₂ = 0.25, 3 → .11₂ = 0.75, 6 = 110₂ → .011₂ = 0.375
    assert [protocol.radical_inverse(i, 2) for i in (0, 1, 2, 3, 6)] == [0, 0.5, 0.25, 0.75, 0.375]
    # base 3: 1 → 1/3, 2 → 2/3, 3 = 10₃ → .01₃ = 1/9, 5 = 12₃ → .21₃ = 7/9
    assert [protocol.radical_inverse(i, 3) for i in (1, 2, 3, 5)] == pytest.approx(
        [1 / 3, 2 / 3, 1 / 9, 7 / 9]
    )
    points = protocol.hammersley(4, 3)
    expected = [[0.125, 0, 0], [0.375, 0.5, 1 / 3], [0.625, 0.25, 2 / 3], [0.875, 0.75, 1 / 9]]
    assert points.flatten().tolist() == pytest.approx([v for row in expected for v in row])
    with pytest.raises(ValueError, match="dims"):
        protocol.hammersley(4, 9)


def test_one_dimension_is_a_log_grid_spanning_the_range():
    points = protocol.search_points({"lr": (1e-4, 1.0, "log")}, 5)
    assert [p["lr"] for p in points] == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    assert protocol.search_points({"lr": (1e-4, 1.0, "log")}, 1) == [{"lr": 0.01}]
    assert protocol.search_space("adam") == {"lr": (1e-4, 1.0, "log")}
    assert protocol.search_space("not_listed") == protocol.DEFAULT_SPACE


def test_several_dimensions_are_hammersley_points_on_log_axes():
    space = {"lr": (1e-3, 1e-1, "log"), "window": (1, 16, "int")}
    points = protocol.search_points(space, 4)
    # lr = 1e-3·100^((i+½)/4); window = 16^φ₂(i) rounded: 16^0, 16^½, 16^¼, 16^¾
    expected_lr = [1e-3 * 100 ** ((i + 0.5) / 4) for i in range(4)]
    assert [p["lr"] for p in points] == pytest.approx(expected_lr, rel=1e-3)
    assert [p["window"] for p in points] == [1, 4, 2, 8]
    with pytest.raises(ValueError, match="budget must be an int >= 1"):
        protocol.search_points(space, 0)


def _bowl(setting):
    """A score with its maximum 0 at lr = 1e-2, window = 4 (both on log axes)."""
    return -((math.log10(setting["lr"]) + 2) ** 2) - (math.log2(setting["window"]) - 2) ** 2


def test_tpe_search_concentrates_on_the_best_region_after_its_random_start():
    space = {"lr": (1e-5, 1.0, "log"), "window": (1, 64, "int")}
    tried = protocol.tpe_search(space, 30, _bowl, goal="max", seed=0)
    assert len(tried) == 30 and [score for _, score in tried] == [_bowl(s) for s, _ in tried]
    for setting, _ in tried:  # on the design's axes: inside the box, 4 digits, whole windows
        assert 1e-5 <= setting["lr"] <= 1.0 and setting["lr"] == float(f"{setting['lr']:.4g}")
        assert isinstance(setting["window"], int) and 1 <= setting["window"] <= 64
    random_start = [score for _, score in tried[:10]]  # n_startup_trials = min(10, 30 // 3)
    guided = [score for _, score in tried[10:]]
    assert sum(guided) / len(guided) > sum(random_start) / len(random_start) + 1.0
    best, _ = max(tried, key=lambda t: t[1])
    assert abs(math.log10(best["lr"]) + 2) < 0.35 and best["window"] in (3, 4, 5)
    # seeded: the same scores give the same settings (what lets the run log resume a search)
    assert protocol.tpe_search(space, 30, _bowl, goal="max", seed=0) == tried
    assert protocol.tpe_search(space, 30, _bowl, goal="max", seed=1) != tried


def test_tpe_search_minimises_and_learns_to_avoid_where_trials_diverge():
    space = {"lr": (1e-4, 1.0, "log")}

    def loss(setting):  # "diverges" above lr 0.1, best (lowest) at 1e-3
        return None if setting["lr"] > 0.1 else (math.log10(setting["lr"]) + 3) ** 2

    tried = protocol.tpe_search(space, 24, loss, goal="min", seed=0)
    # a diverged trial counts as the worst score so far: 2 of 24 diverge (told as failed
    # trials, which TPE ignores, 16 of 24 did)
    assert len(tried) == 24 and sum(score is None for _, score in tried) == 2
    best = min((s for s in tried if s[1] is not None), key=lambda t: t[1])
    assert abs(math.log10(best[0]["lr"]) + 3) < 0.1
    with pytest.raises(ValueError, match="goal must be 'min' or 'max'"):
        protocol.tpe_search(space, 4, loss, goal="maximise")


def test_a_tpe_benchmark_run_again_finds_every_trial_in_its_log(tmp_path):
    def run(reported):
        return protocol.run_benchmark(
            ["noisy_quadratic"],
            ["sgd"],
            budget=4,
            seeds=2,
            out=tmp_path,
            figures=False,
            search="tpe",
            progress=lambda done, total, what: reported.append(what),
        )

    first, second = [], []
    results = run(first)
    assert results["protocol"]["search"] == "tpe"
    sgd = results["problems"]["noisy_quadratic"]["optimizers"]["sgd"]
    assert len({t["hparams"]["lr"] for t in sgd["tuning"]}) == 4
    best = min(sgd["tuning"], key=lambda t: math.inf if t["val"] is None else t["val"])
    assert sgd["best_hparams"] == best["hparams"]  # a loss: the lowest validation score
    assert run(second) == results
    assert all(what.endswith("(done before)") for what in second) and len(second) == 6
    with pytest.raises(ValueError, match="search must be one of design, tpe"):
        protocol.run_benchmark(["beale"], ["sgd"], out=tmp_path, search="grid")


def test_trial_equals_a_literal_sgd_loop_on_the_noisy_quadratic():
    problem = problems.get("noisy_quadratic")
    record = protocol.run_trial(problem, "sgd", {"lr": 0.015}, seed=2)
    hessian = surfaces.quadratic_hessian(100.0)
    generator = torch.Generator().manual_seed(2)
    theta = torch.tensor([-1.5, 1.0], dtype=torch.float64)
    values = {0: float(0.5 * theta @ hessian @ theta)}
    for step in range(1, problem.steps + 1):
        xi = 0.5 * torch.randn(2, generator=generator, dtype=torch.float64)
        theta = theta - 0.015 * (hessian @ theta + xi)
        if step % problem.eval_every == 0:
            values[step] = float(0.5 * theta @ hessian @ theta)
    assert record["status"] == "ok" and record["steps"] == list(values)
    assert record["test"] == pytest.approx(list(values.values()), rel=1e-9)
    assert record["test_final"] == record["val_final"] == record["test"][-1]
    first = next(s for s, v in values.items() if v <= problem.target)
    assert record["steps_to_target"] == first
    assert record["train_loss"][0] is None and record["seconds"] > 0


def test_divergence_and_refusals_are_recorded_not_raised():
    problem = problems.get("rosenbrock")
    diverged = protocol.run_trial(problem, "sgd", {"lr": 1.0}, seed=0)
    assert diverged["status"] == "diverged" and diverged["test_final"] is None
    refused = protocol.run_trial(problems.get("digits_mlp"), "natural_gradient", {"lr": 0.1}, 0)
    assert refused["status"] == "error" and "max_params" in refused["message"]


def test_an_overflow_inside_the_optimizer_scores_as_diverged(monkeypatch):
    from dlskills._registry import Entry

    class Overflowing(torch.optim.SGD):  # as CurveBall's 2×2 solve can overflow in float
        def step(self, closure=None):
            raise OverflowError("(34, 'Numerical result out of range')")

    monkeypatch.setattr(protocol, "_canonical", lambda name: Entry("overflowing", Overflowing))
    record = protocol.run_trial(problems.get("beale"), "overflowing", {"lr": 0.1}, seed=0)
    assert record["status"] == "diverged" and record["message"].startswith("OverflowError")
    assert record["test_final"] is None and record["steps"] == [0]


def _record(val, test, reached, seconds=1.0, lr=0.1):
    return {
        "hparams": {"lr": lr},
        "seed": 0,
        "val_final": val,
        "test_final": test,
        "status": "ok" if test is not None else "diverged",
        "message": "",
        "steps": [0, 10, 20],
        "test": [0.1, 0.5, test],
        "train_loss": [None, 2.0, 1.0],
        "steps_to_target": reached,
        "seconds": seconds,
    }


def test_summary_selects_on_validation_and_reports_seed_statistics():
    problem = problems.get("digits_mlp")  # accuracy: higher is better
    tuning = [
        _record(0.9, 0.99, 10, lr=0.01),
        _record(None, None, None, lr=1.0),
        _record(0.95, 0.5, None, lr=0.1),
    ]
    finals = [
        _record(0.95, 0.90, 20, 1.0),
        _record(0.9, 0.96, 10, 3.0),
        _record(None, None, None, 2.0),
    ]
    summary = protocol.summarise(problem, tuning, finals)
    assert summary["best_hparams"] == {"lr": 0.1}  # by validation, not by test
    assert summary["test_mean"] == pytest.approx(0.93)
    assert summary["test_std"] == pytest.approx(0.03)
    assert summary["diverged"] == 1
    assert summary["steps_to_target_median"] == 15 and summary["reached_target"] == 2
    assert summary["seconds_mean"] == pytest.approx(2.0)
    assert summary["test_curve_mean"] == pytest.approx([0.1, 0.5, 0.93])
    assert summary["train_loss_mean"][0] is None
    all_failed = protocol.summarise(problem, [_record(None, None, None)], [])
    assert all_failed["best_hparams"] == {"lr": 0.1} and all_failed["test_mean"] is None


def test_log_ignores_a_line_cut_short_and_keeps_appending(tmp_path):
    path = tmp_path / "runs.jsonl"
    whole = {"problem": "beale", "optimizer": "adam", "hparams": {"lr": 0.1}, "seed": 0}
    path.write_text(json.dumps(whole) + "\n" + '{"problem": "beale", "optimi')
    log = protocol.RunLog(path)
    key = protocol.trial_key("beale", "adam", {"lr": 0.1}, 0)
    assert list(log.records) == [key]
    log.append({**whole, "seed": 1})
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["seed"] == 1
    assert len(protocol.RunLog(path).records) == 2


KILLED = """
import sys
from dlskills.bench.protocol import run_benchmark
run_benchmark(["noisy_quadratic"], ["sgd"], budget=2, seeds=2, out=sys.argv[1], figures=False)
"""


def test_a_killed_benchmark_resumes_without_rerunning_finished_trials(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(protocol.__file__).parents[2])}
    child = subprocess.Popen([sys.executable, "-c", KILLED, str(out)], env=env)
    runs = out / "runs.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        if runs.exists() and runs.read_text().count("\n") >= 1:
            break
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    before = [json.loads(line) for line in runs.read_text().splitlines()]
    assert 1 <= len(before) < 3  # 2 tuning trials + seed 1 (seed 0 is a tuning trial)
    reported = []
    results = protocol.run_benchmark(
        ["noisy_quadratic"],
        ["sgd"],
        budget=2,
        seeds=2,
        out=out,
        figures=False,
        progress=lambda done, total, what: reported.append((done, total, what)),
    )
    after = [json.loads(line) for line in runs.read_text().splitlines()]
    assert after[: len(before)] == before and len(after) == 3
    assert len({protocol.RunLog._key(r) for r in after}) == 3
    cached = [what for _, _, what in reported if what.endswith("(done before)")]
    assert len(cached) == len(before) + 1  # and seed 0 of the reruns, a tuning trial
    assert [done for done, _, _ in reported] == list(range(1, 5))
    assert {total for _, total, _ in reported} == {4}
    summary = results["problems"]["noisy_quadratic"]["optimizers"]["sgd"]
    assert summary["seeds"] == [0, 1] and summary["test_mean"] is not None
    assert (out / "results.json").exists() and (out / "summary.md").exists()
    assert math.isfinite(summary["test_mean"])


def test_tables_show_percent_mean_std_and_steps_to_target():
    problem = problems.get("digits_mlp")
    finals = [_record(0.95, 0.90, 20), _record(0.9, 0.96, 10, 3.0)]
    summary = protocol.summarise(problem, finals, finals)
    summary["space"] = {"lr": [1e-4, 1.0, "log"]}
    results = {
        "protocol": {"budget": 2, "seeds": 2},
        "problems": {
            "digits_mlp": {
                "metric": "test accuracy",
                "target": 0.96,
                "optimizers": {"adam": summary, "ksgd": {"skipped": "needs a 'residuals' closure"}},
            }
        },
    }
    long = protocol.summary_table(results).splitlines()
    assert (
        long[2] == "| digits_mlp | adam | lr=0.1 | test accuracy % 93.0 ± 3.0 | 15 (2/2) | 2.00 |"
    )
    assert long[3].startswith("| digits_mlp | ksgd | — | skipped: needs a 'residuals' closure")
    compact = protocol.compact_table(results).splitlines()
    assert compact[0] == "| optimizer | digits_mlp (test accuracy, target 96 %) |"
    assert compact[2:] == ["| adam | 93.0 ± 3.0 (15) |", "| ksgd | skipped |"]
