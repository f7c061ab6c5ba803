"""``dlskills sweep``: a hyper-parameter sensitivity study (catalog 1510.03820) on Optuna
(``dlskills.bench.sweep``). Without ``--param`` it runs the paper's study: Kim's TextCNN on the
generated sentences, region sizes, feature maps, activation, pooling and dropout, one factor at a
time. Writes ``DIR/study.db`` (the default storage), ``DIR/sweep.json`` and
``DIR/sensitivity.png``; the same command again continues the study where it stopped."""

from __future__ import annotations

import argparse
import ast
from typing import Any

HELP = "hyper-parameter sensitivity study on Optuna (grid, ofat, random, tpe), resumable"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model name (default: textcnn, the paper's study)")
    parser.add_argument("--dataset", help="dataset name (default: sentences with textcnn)")
    parser.add_argument(
        "--param",
        action="append",
        metavar="KEY=[V1,V2,...]",
        help="a config key or model keyword and its values (repeatable; first value = ofat "
        "baseline), e.g. --param lr=[0.001,0.01] --param 'region_sizes=[[3],[3,4,5]]' "
        "(default with textcnn: the paper's grid)",
    )
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        dest="fixed",
        help="a config key fixed for every trial (repeatable), e.g. --set epochs=2",
    )
    parser.add_argument(
        "--sampler",
        choices=("grid", "ofat", "random", "tpe"),
        default=None,
        help="grid: every combination; ofat: one factor at a time (default with the paper's "
        "grid); random; tpe (default: grid with --param)",
    )
    parser.add_argument(
        "--trials", type=int, help="finished trials to reach (default: every grid/ofat point)"
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs (seeds) per trial")
    parser.add_argument("--seed", type=int, default=0, help="first seed; the samplers' seed")
    parser.add_argument(
        "--out", metavar="DIR", help="output folder (default: runs/sweep-<model>-<dataset>)"
    )
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna RDB storage URL shared by every process of the study "
        "(default: sqlite:///DIR/study.db)",
    )
    parser.add_argument("--study", help="study name (default: <model>-<dataset>)")
    parser.add_argument(
        "--heartbeat",
        type=int,
        default=10,
        metavar="S",
        help="seconds between a running trial's heartbeats; a trial silent for 2·S (its process "
        "was killed) is re-queued",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or lines")


def parse_param(text: str) -> tuple[str, list[Any]]:
    """``KEY=[V1,V2,...]`` (Python literals; bare words are strings; the brackets may be left
    out for plain values: ``lr=0.001,0.01``) → (key, values)."""
    from dlskills.train.config import normalise_key

    key, sep, raw = text.partition("=")
    key = normalise_key(key)
    if not sep or not key.isidentifier():
        raise ValueError(f"--param expects KEY=[V1,V2,...], got {text!r}")
    raw = raw.strip()
    try:
        values = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        inner = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
        values = [_literal(item.strip()) for item in inner.split(",")]
    if not isinstance(values, list | tuple):
        values = [values]
    if not values:
        raise ValueError(f"--param {key}: give at least one value")
    return key, list(values)


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def spec_from_args(args: argparse.Namespace) -> Any:
    from dlskills.bench.sweep import PAPER_BASE, PAPER_SPACE, SweepSpec
    from dlskills.train.config import check_keys, parse_assignment

    model = args.model or "textcnn"
    dataset = args.dataset or ("sentences" if model == "textcnn" else "digits")
    paper = model == "textcnn" and dataset == "sentences"
    base = dict(PAPER_BASE) if paper else {"model": model, "dataset": dataset}
    base.update(check_keys(dict(parse_assignment(a, "--set") for a in args.fixed or [])))
    space = dict(parse_param(p) for p in args.param or [])
    if not space:
        if model != "textcnn":
            raise ValueError(f"--param: give the values to sweep for {model!r}")
        space = PAPER_SPACE
    sampler = args.sampler or ("ofat" if space is PAPER_SPACE else "grid")
    return SweepSpec(space=space, base=base, sampler=sampler, repeats=args.repeats, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dlskills._io import atomic_write_json
    from dlskills._progress import Progress
    from dlskills.bench import sweep

    spec = spec_from_args(args)
    name = args.study or f"{spec.base['model']}-{spec.base['dataset']}"
    out = Path(args.out or f"runs/sweep-{name}")
    out.mkdir(parents=True, exist_ok=True)
    storage = args.storage or f"sqlite:///{out / 'study.db'}"
    points = spec.points()
    total = args.trials or (len(points) if points else None)
    progress = None if args.no_progress else Progress("sweep", total, unit="trial")
    try:
        study = sweep.run_sweep(
            spec,
            trials=args.trials,
            storage=storage,
            study_name=name,
            heartbeat=args.heartbeat,
            progress=progress,
        )
    finally:
        if progress is not None:
            progress.close()
    result = sweep.summary(study)
    atomic_write_json(out / "sweep.json", result)
    sweep.plot_sensitivity(study, out / "sensitivity.png")
    print(f"study {name!r} in {storage}: {result['trials']['complete']} finished trials")
    print(f"{'key':<16} {'spread (pts)':>12}  mean validation accuracy per value (%)")
    for key, spread in sorted(result["sensitivity"].items(), key=lambda kv: -kv[1]):
        means = "  ".join(
            f"{value}: {sum(accs) / len(accs):.1f}"
            for value, accs in sweep.distributions(study, key).items()
            if accs
        )
        print(f"{key:<16} {spread:>12.1f}  {means}")
    top = result["best"]
    shown = ", ".join(f"{k}={v}" for k, v in top["params"].items())
    print(
        f"best: trial {top['trial']} ({shown}): validation {top['val_accuracy']:.2f} %, "
        f"test {top['test_accuracy']:.2f} %"
    )
    print(f"wrote {out / 'sweep.json'} and {out / 'sensitivity.png'}")
    return 0
