"""The benchmark protocol (DeepOBS, Schneider, Balles & Hennig 2019, §3; issue 14).

For each problem and optimizer:

1. **Tune** on a fixed search budget of B trials (``budget``), seed 0, each trained for the
   problem's full step budget and scored by its final *validation* metric. The space is the
   learning rate on a log scale plus the one or two hyper-parameters the optimizer's paper says
   matter (``SEARCH_SPACES``). One dimension: a log grid of B points; more: the first B
   Hammersley points (a low-discrepancy set; coordinate 1 = (i + ½)/B, coordinate k + 1 the
   base-pₖ radical inverse of i, p = 2, 3, 5), mapped onto the box (log axes for "log").
   ``search="tpe"`` chooses them one at a time instead, each from the scores before it, with
   optuna's Tree-structured Parzen Estimator (``tpe_search``, seeded; the first third of the
   budget, at most 10, drawn at random; a diverged trial counts as the worst score so far).
2. **Rerun** the best setting over seeds 0 … S − 1 (``seeds``; seed 0 is the tuning run, kept).
3. **Report** per optimizer: the final *test* metric (mean ± std over seeds), steps to the
   problem's target (median over the seeds that reach it, and how many do), wall time per run
   (training steps only, evaluation excluded), the learning curves (test metric and the mean
   training loss per evaluation interval, mean ± std over seeds) and the tuning sensitivity
   (validation metric against the learning rate over the search).

A diverged trial (non-finite loss or metric) stops early and scores NaN, worse than any number;
an optimizer that cannot run on a problem (it needs a closure kind the problem lacks, or its
constructor refuses the model, e.g. kSGD's parameter cap) is recorded with the reason.

Resumable: every finished trial is appended (one JSON line, flushed and fsynced) to
``OUT/runs.jsonl``, keyed by (problem, optimizer, hyper-parameters, seed); a restarted run
skips the keys it finds (a line cut short by a kill is ignored and its trial rerun). A TPE
search resumes the same way: its sampler is seeded and told the same scores again, so it asks
for the same settings, which the log already holds. The key
does not hold the problem's definition: after changing a problem, use a new OUT.

Deviations from DeepOBS: its baselines tune the learning rate alone on a log grid and rerun
the best over 10 seeds, on GPU-sized problems; here B and S are options, the spaces add the
zoo's own hyper-parameters, and the problems are CPU-sized.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlskills.bench.problems import Problem, get

#: how the tuning settings are chosen: all fixed before the first trial (the log grid or the
#: Hammersley points), or one at a time by optuna's TPE from the scores before
SEARCHES = ("design", "tpe")

#: optimizer -> {hyper-parameter: (low, high, scale)}; the first entry is the learning rate (or
#: the optimizer's step multiplier), plotted in the sensitivity panel. Optimizers not listed
#: tune ``lr`` over DEFAULT_SPACE. Scales: "log", "int" (log-spaced, rounded).
SEARCH_SPACES: dict[str, dict[str, tuple[float, float, str]]] = {
    "sgd": {"lr": (1e-4, 1.0, "log")},
    "momentum": {"lr": (1e-4, 1.0, "log")},
    "nesterov": {"lr": (1e-4, 1.0, "log")},
    "adam": {"lr": (1e-4, 1.0, "log")},
    "adamw": {"lr": (1e-4, 1.0, "log"), "weight_decay": (1e-4, 1e-1, "log")},
    "amsgrad": {"lr": (1e-4, 1.0, "log")},
    "adamax": {"lr": (1e-4, 1.0, "log")},
    "nadam": {"lr": (1e-4, 1.0, "log")},
    "rmsprop": {"lr": (1e-4, 1.0, "log")},
    "adagrad": {"lr": (1e-4, 1.0, "log")},
    "adadelta": {"lr": (1e-1, 10.0, "log")},
    # AdaBound (1902.09843): lr and the final (SGD-like) step size
    "adabound": {"lr": (1e-4, 1.0, "log"), "final_lr": (1e-3, 1.0, "log")},
    "amsbound": {"lr": (1e-4, 1.0, "log"), "final_lr": (1e-3, 1.0, "log")},
    # AggMo (1804.00325): lr; the paper keeps β = (0, 0.9, 0.99) across its experiments
    "aggmo": {"lr": (1e-4, 1.0, "log")},
    # YellowFin (1706.03471) tunes lr and momentum itself: only its lr factor is searched
    "yellowfin": {"lr_factor": (0.1, 10.0, "log")},
    # vSGD (1206.1106) has no learning rate; its multiplier is searched around 1
    "vsgd": {"lr": (0.1, 10.0, "log")},
    # STORM (1905.10018): k (lr) and c
    "storm": {"lr": (1e-2, 10.0, "log"), "c": (10.0, 1000.0, "log")},
    # PTS-SGD (1905.08850): lr and the averaging window
    "pts_sgd": {"lr": (1e-4, 1.0, "log"), "window": (1, 20, "int")},
    "fg_sgd": {"lr": (1e-4, 1.0, "log")},
    "easgd": {"lr": (1e-4, 1.0, "log")},
    "becker_lecun": {"lr": (1e-2, 1.0, "log"), "damping": (1e-3, 1.0, "log")},
    "curveball": {"lr": (0.1, 3.0, "log")},
    "natural_gradient": {"lr": (1e-2, 1.0, "log"), "damping": (1e-4, 1.0, "log")},
    "ksgd": {"lr": (0.1, 3.0, "log"), "observation_noise": (1e-2, 1e2, "log")},
}
DEFAULT_SPACE: dict[str, tuple[float, float, str]] = {"lr": (1e-4, 1.0, "log")}
BASELINES = ("momentum", "adam", "adamw")

_PRIMES = (2, 3, 5, 7, 11)


def radical_inverse(i: int, base: int) -> float:
    """Van der Corput: the digits of ``i`` in ``base`` mirrored behind the point."""
    value, scale = 0.0, 1.0 / base
    while i > 0:
        i, digit = divmod(i, base)
        value += digit * scale
        scale /= base
    return value


def hammersley(n: int, dims: int) -> np.ndarray:
    """The n-point Hammersley set in [0, 1)^dims: ((i + ½)/n, φ₂(i), φ₃(i), …)."""
    if dims - 1 > len(_PRIMES):
        raise ValueError(f"dims must be <= {len(_PRIMES) + 1}, got {dims}")
    rows = [
        [(i + 0.5) / n] + [radical_inverse(i, p) for p in _PRIMES[: dims - 1]] for i in range(n)
    ]
    return np.array(rows, dtype=float).reshape(n, dims)


def search_space(optimizer: str) -> dict[str, tuple[float, float, str]]:
    """The hyper-parameters tuned for ``optimizer`` (canonical registry name)."""
    return SEARCH_SPACES.get(optimizer, DEFAULT_SPACE)


def search_points(space: dict[str, tuple[float, float, str]], budget: int) -> list[dict]:
    """The ``budget`` settings tried: a log grid (one dimension) or Hammersley points; values
    rounded to 4 significant digits (so that they read well in tables and keys)."""
    budget = check_count("budget", budget)
    names = list(space)
    if len(names) == 1:
        unit = np.linspace(0.0, 1.0, budget)[:, None] if budget > 1 else np.full((1, 1), 0.5)
    else:
        unit = hammersley(budget, len(names))
    points = []
    for row in unit:
        point: dict[str, Any] = {}
        for name, u in zip(names, row):
            low, high, scale = space[name]
            value = math.exp(math.log(low) + float(u) * (math.log(high) - math.log(low)))
            point[name] = _on_axis(value, scale)
        points.append(point)
    return points


def _on_axis(value: float, scale: str) -> float | int:
    return round(value) if scale == "int" else float(f"{value:.4g}")


def tpe_search(
    space: dict[str, tuple[float, float, str]],
    budget: int,
    score: Callable[[dict], float | None],
    *,
    goal: str,
    seed: int = 0,
) -> list[tuple[dict, float | None]]:
    """``budget`` settings chosen one after another by optuna's TPE sampler (``seed``), each
    told ``score(setting)`` before the next is asked; values on the axes of ``search_points``
    (log scale, 4 significant digits, "int" rounded). A score of None or a non-finite one (a
    diverged trial) is told as the worst score seen so far, so that the sampler learns to avoid
    its region (a failed trial, which TPE ignores, keeps it coming back: 16 of 24 settings
    diverged on a test bowl); before any score it is told as failed. Returns (setting, score)
    in the order tried."""
    import optuna
    from optuna.trial import TrialState

    budget = check_count("budget", budget)
    if goal not in ("min", "max"):
        raise ValueError(f"goal must be 'min' or 'max', got {goal!r}")
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(1, min(10, budget // 3)))
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            direction="minimize" if goal == "min" else "maximize", sampler=sampler
        )
        tried: list[tuple[dict, float | None]] = []
        for _ in range(budget):
            trial = study.ask()
            setting = {
                name: _on_axis(
                    trial.suggest_int(name, round(low), round(high), log=True)
                    if scale == "int"
                    else trial.suggest_float(name, low, high, log=True),
                    scale,
                )
                for name, (low, high, scale) in space.items()
            }
            value = score(setting)
            finite = [v for _, v in tried if v is not None and math.isfinite(v)]
            if value is not None and math.isfinite(value):
                study.tell(trial, value)
            elif finite:
                study.tell(trial, max(finite) if goal == "min" else min(finite))
            else:
                study.tell(trial, state=TrialState.FAIL)
            tried.append((setting, value))
    finally:
        optuna.logging.set_verbosity(verbosity)
    return tried


def check_count(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _canonical(optimizer: str) -> Any:
    from dlskills.optim import OPTIMIZERS

    return OPTIMIZERS.entry(optimizer)


def _closure_kind(entry: Any) -> str:
    """The closure kind an optimizer's registry entry needs ("backward" without a closure)."""
    return entry.meta.get("closure", "backward") if entry.meta.get("needs_closure") else "backward"


def _loss_value(kind: str, out: Any) -> float:
    if kind == "graph" and isinstance(out, tuple):
        out = out[0]
    if kind == "residuals":
        return float(out.detach().square().mean())
    return float(out.detach() if isinstance(out, torch.Tensor) else out)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def run_trial(problem: Problem, optimizer: str, hparams: dict[str, Any], seed: int) -> dict:
    """Train ``problem`` with ``optimizer(**hparams)`` from ``seed`` for the problem's budget.

    Returns a JSON-ready record: the test metric and mean training loss at every evaluation step,
    the final validation and test metrics (None when diverged), the first evaluated step at which
    the test metric meets the target (None if never), the training seconds and a status
    ("ok", "diverged" or "error" with its message)."""
    entry = _canonical(optimizer)
    kind = _closure_kind(entry)
    record: dict[str, Any] = {
        "problem": problem.name,
        "optimizer": entry.name,
        "hparams": dict(hparams),
        "seed": seed,
        "status": "ok",
        "message": "",
        "steps": [],
        "test": [],
        "train_loss": [],
        "val_final": None,
        "test_final": None,
        "steps_to_target": None,
        "seconds": 0.0,
    }
    torch.manual_seed(seed)
    try:
        task = problem.build(seed)
        kwargs = dict(hparams)
        if "seed" in inspect.signature(entry.obj).parameters:
            kwargs["seed"] = seed
        opt = entry.obj(task.params, **kwargs)
        closure = task.closure(kind)
    except (ValueError, TypeError, RuntimeError) as exc:
        record.update(status="error", message=f"{type(exc).__name__}: {exc}")
        return record

    losses: list[float] = []
    calls: list[int] = []

    def recorded() -> Any:
        out = closure()
        if not calls:  # the first evaluation of a step is at the current iterate
            losses.append(_loss_value(kind, out))
        calls.append(1)
        return out

    def evaluate(step: int) -> bool:
        value = task.evaluate("test")
        interval = losses[-problem.eval_every :] if step else []
        record["steps"].append(step)
        record["test"].append(_finite(value))
        record["train_loss"].append(_finite(float(np.mean(interval))) if interval else None)
        if record["steps_to_target"] is None and problem.reached(value):
            record["steps_to_target"] = step
        return math.isfinite(value)

    evaluate(0)
    seconds = 0.0
    try:
        for step in range(1, problem.steps + 1):
            task.next_batch()
            calls.clear()
            started = time.perf_counter()
            if entry.meta.get("needs_closure"):
                opt.step(recorded)
            else:
                recorded()
                opt.step()
            seconds += time.perf_counter() - started
            if not math.isfinite(losses[-1]):
                record.update(status="diverged", message=f"non-finite loss at step {step}")
                break
            if (step % problem.eval_every == 0 or step == problem.steps) and not evaluate(step):
                record.update(status="diverged", message=f"non-finite metric at step {step}")
                break
    except ArithmeticError as exc:  # an overflow inside the optimizer's own arithmetic
        record.update(status="diverged", message=f"{type(exc).__name__}: {exc}".splitlines()[0])
    except (ValueError, RuntimeError) as exc:  # e.g. a singular solve (LinAlgError)
        record.update(status="error", message=f"{type(exc).__name__}: {exc}".splitlines()[0])
    record["seconds"] = round(seconds, 4)
    if record["status"] == "ok":
        record["val_final"] = _finite(task.evaluate("val"))
        record["test_final"] = record["test"][-1]
    return record


def trial_key(problem: str, optimizer: str, hparams: dict[str, Any], seed: int) -> str:
    return json.dumps([problem, optimizer, sorted(hparams.items()), seed])


class RunLog:
    """``runs.jsonl``: finished trials, one JSON line each; read back on restart."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.records: dict[str, dict] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a kill
                    continue
                self.records[self._key(record)] = record

    @staticmethod
    def _key(record: dict) -> str:
        return trial_key(record["problem"], record["optimizer"], record["hparams"], record["seed"])

    def get(self, key: str) -> dict | None:
        return self.records.get(key)

    def append(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, allow_nan=False) + "\n"
        with open(self.path, "a+b") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() and not self._ends_with_newline(handle):
                handle.write(b"\n")  # close a line a kill cut short
            handle.write(line.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        self.records[self._key(record)] = record

    @staticmethod
    def _ends_with_newline(handle: Any) -> bool:
        handle.seek(-1, os.SEEK_END)
        last = handle.read(1)
        handle.seek(0, os.SEEK_END)
        return last == b"\n"


def _mean_std(rows: Sequence[Sequence[float | None]]) -> tuple[list, list]:
    """Column-wise mean and std over rows (None ignored; None where a column has no value)."""
    width = max((len(r) for r in rows), default=0)
    means, stds = [], []
    for i in range(width):
        column = [r[i] for r in rows if i < len(r) and r[i] is not None]
        with np.errstate(over="ignore"):  # a run on its way to diverging: inf is the answer
            means.append(_finite(float(np.mean(column))) if column else None)
            stds.append(_finite(float(np.std(column))) if column else None)
    return means, stds


def summarise(problem: Problem, tuning: list[dict], finals: list[dict]) -> dict:
    """One optimizer on one problem: its tuning scan, best setting and the seeds' statistics."""
    scores = [r["val_final"] for r in tuning]
    best = None
    for i, score in enumerate(scores):
        value = math.nan if score is None else score
        if best is None or problem.better(value, best[1]):
            best = (i, value)
    finite = [r["test_final"] for r in finals if r["test_final"] is not None]
    reached = [r["steps_to_target"] for r in finals if r["steps_to_target"] is not None]
    test_mean, test_std = _mean_std([r["test"] for r in finals])
    loss_mean, loss_std = _mean_std([r["train_loss"] for r in finals])
    return {
        "best_hparams": tuning[best[0]]["hparams"] if best else None,
        "tuning": [
            {"hparams": r["hparams"], "val": r["val_final"], "status": r["status"]} for r in tuning
        ],
        "seeds": [r["seed"] for r in finals],
        "status": [r["status"] for r in finals],
        "messages": sorted({r["message"] for r in tuning + finals if r["message"]}),
        "test_final": [r["test_final"] for r in finals],
        "test_mean": float(np.mean(finite)) if finite else None,
        "test_std": float(np.std(finite)) if finite else None,
        "diverged": sum(r["test_final"] is None for r in finals),
        "steps_to_target_median": float(np.median(reached)) if reached else None,
        "reached_target": len(reached),
        "seconds_mean": float(np.mean([r["seconds"] for r in finals])) if finals else None,
        "curve_steps": max((r["steps"] for r in finals), key=len, default=[]),
        "test_curve_mean": test_mean,
        "test_curve_std": test_std,
        "train_loss_mean": loss_mean,
        "train_loss_std": loss_std,
    }


def _resolve(names: Sequence[str] | None, default: Sequence[str], resolve: Callable) -> list:
    chosen = [n.strip() for n in (default if names is None else names) if n.strip()]
    if not chosen:
        raise ValueError("the list is empty")
    resolved = {}
    for name in chosen:
        item = resolve(name)
        resolved.setdefault(item.name, item)
    return list(resolved.values())


def run_benchmark(
    problems: Sequence[str] | None = None,
    optimizers: Sequence[str] | None = None,
    *,
    budget: int = 8,
    seeds: int = 5,
    out: str | os.PathLike[str] = "bench-optimizers",
    progress: Callable[[int, int | None, str], None] | None = None,
    figures: bool = True,
    search: str = "design",
) -> dict:
    """Tune (``search``: one of SEARCHES), rerun over seeds and summarise every (problem,
    optimizer) pair; write
    ``OUT/runs.jsonl`` (every trial), ``OUT/results.json``, ``OUT/summary.md`` and, with
    ``figures``, ``OUT/<problem>.png``. Returns the results dictionary."""
    from dlskills._io import atomic_write_json, atomic_write_text
    from dlskills.bench.figures import plot_problem

    problem_list = _resolve(problems, list(_problem_names()), get)
    entries = _resolve(optimizers, BASELINES, _canonical)
    budget, seeds = check_count("budget", budget), check_count("seeds", seeds)
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {', '.join(SEARCHES)}, got {search!r}")
    out = Path(out)
    log = RunLog(out / "runs.jsonl")
    pairs = [(p, e) for p in problem_list for e in entries]
    total = len(pairs) * (budget + seeds)
    done = 0
    results: dict[str, Any] = {
        "protocol": {
            "budget": budget,
            "seeds": seeds,
            "tuning_seed": 0,
            "selected_by": "val",
            "search": search,
        },
        "problems": {},
    }

    def trial(problem: Problem, name: str, hparams: dict, seed: int) -> dict:
        nonlocal done
        key = trial_key(problem.name, name, hparams, seed)
        record = log.get(key)
        if record is None:
            record = run_trial(problem, name, hparams, seed)
            log.append(record)
            what = f"{problem.name} {name} seed {seed}"
        else:
            what = f"{problem.name} {name} seed {seed} (done before)"
        done += 1
        if progress is not None:
            progress(done, total, what)
        return record

    for problem in problem_list:
        section: dict[str, Any] = {
            "description": problem.description,
            "metric": problem.metric,
            "goal": problem.goal,
            "target": problem.target,
            "steps": problem.steps,
            "optimizers": {},
        }
        for entry in entries:
            kind = _closure_kind(entry)
            if kind not in problem.closures:
                done += budget + seeds
                section["optimizers"][entry.name] = {
                    "skipped": f"needs a {kind!r} closure, which {problem.name} does not give"
                }
                continue
            space = search_space(entry.name)
            tuning = _tune(problem, entry.name, space, budget, search, trial)
            best = summarise(problem, tuning, [])["best_hparams"]
            finals = [trial(problem, entry.name, best, s) for s in range(seeds)]
            summary = summarise(problem, tuning, finals)
            summary["space"] = {k: list(v) for k, v in space.items()}
            section["optimizers"][entry.name] = summary
        results["problems"][problem.name] = section
        if figures:
            plot_problem(problem, section, out / f"{problem.name}.png")
    atomic_write_json(out / "results.json", results)
    tables = summary_table(results) + "\n\n" + compact_table(results)
    atomic_write_text(out / "summary.md", tables + "\n")
    return results


def _tune(
    problem: Problem,
    optimizer: str,
    space: dict[str, tuple[float, float, str]],
    budget: int,
    search: str,
    trial: Callable[[Problem, str, dict, int], dict],
) -> list[dict]:
    """The tuning trials (seed 0) of ``optimizer`` on ``problem``, in the order they ran."""
    if search == "design":
        return [trial(problem, optimizer, h, 0) for h in search_points(space, budget)]
    records: list[dict] = []

    def validation_score(setting: dict) -> float | None:
        records.append(trial(problem, optimizer, setting, 0))
        return records[-1]["val_final"]

    tpe_search(space, budget, validation_score, goal=problem.goal)
    return records


def _problem_names() -> list[str]:
    from dlskills.bench.problems import PROBLEMS

    return list(PROBLEMS)


def _format_metric(value: float | None, percent: bool, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.1f}" if percent else f"{value:.{digits}g}"


def summary_table(results: dict) -> str:
    """The results as one markdown table (mean ± std over seeds; accuracies in percent)."""
    lines = [
        "| problem | optimizer | tuned setting | final test metric (mean ± std) "
        "| steps to target (reached) | s / run |",
        "|---|---|---|---|---|---|",
    ]
    seeds = results["protocol"]["seeds"]
    for name, section in results["problems"].items():
        percent = "accuracy" in section["metric"]
        metric = section["metric"] + (" %" if percent else "")
        for optimizer, s in section["optimizers"].items():
            if "skipped" in s:
                lines.append(f"| {name} | {optimizer} | — | skipped: {s['skipped']} | — | — |")
                continue
            setting = ", ".join(f"{k}={v:g}" for k, v in (s["best_hparams"] or {}).items())
            mean = _format_metric(s["test_mean"], percent)
            std = _format_metric(s["test_std"], percent, digits=2)
            if s["test_mean"] is not None:
                cell = f"{metric} {mean} ± {std}"
            elif "error" in s["status"]:
                cell = "error: " + "; ".join(s["messages"])[:120]
            else:
                cell = "diverged"
            if s["diverged"] and s["test_mean"] is not None:
                cell += f" ({s['diverged']} of {seeds} diverged)"
            target = s["steps_to_target_median"]
            steps = (
                f"{target:.0f} ({s['reached_target']}/{seeds})"
                if target is not None
                else (f"never (0/{seeds})")
            )
            seconds = f"{s['seconds_mean']:.2f}" if s["seconds_mean"] is not None else "—"
            lines.append(
                f"| {name} | {optimizer} | {setting or '—'} | {cell} | {steps} | {seconds} |"
            )
    return "\n".join(lines)


def compact_table(results: dict) -> str:
    """Optimizers × problems: each cell the final test metric's mean ± std over the seeds that
    finished (accuracy in percent), the median steps to the target (— when no seed reaches it)
    and how many seeds diverged, if any."""
    names = list(results["problems"])
    optimizers = list(
        dict.fromkeys(o for section in results["problems"].values() for o in section["optimizers"])
    )
    header = []
    for name in names:
        section = results["problems"][name]
        percent = "accuracy" in section["metric"]
        target = f"{100 * section['target']:g} %" if percent else f"{section['target']:g}"
        header.append(f"{name} ({section['metric']}, target {target})")
    lines = ["| optimizer | " + " | ".join(header) + " |", "|---" * (len(names) + 1) + "|"]
    for optimizer in optimizers:
        cells = []
        for name in names:
            section = results["problems"][name]
            s = section["optimizers"].get(optimizer)
            percent = "accuracy" in section["metric"]
            if s is None or "skipped" in s:
                cells.append("skipped")
            elif s["test_mean"] is None:
                cells.append("error" if "error" in s["status"] else "diverged")
            else:
                steps = s["steps_to_target_median"]
                cell = (
                    f"{_format_metric(s['test_mean'], percent)} ± "
                    f"{_format_metric(s['test_std'], percent, digits=2)} "
                    f"({'—' if steps is None else f'{steps:.0f}'})"
                )
                if s["diverged"]:
                    cell += f" [{s['diverged']} diverged]"
                cells.append(cell)
        lines.append(f"| {optimizer} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
