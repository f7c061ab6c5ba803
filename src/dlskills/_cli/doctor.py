"""``dlskills doctor``: diagnose a model (default: a small CNN on digits) or a finished run."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "diagnose a model or a finished run: init, gradients, activations, over/underfitting"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", metavar="DIR", help="a finished run folder (runs/NAME)")
    parser.add_argument(
        "--dataset", help="dataset (default digits; with --run: the run's, which it must match)"
    )
    parser.add_argument(
        "--model", help="model (default cnn; with --run: the run's, which it must match)"
    )
    parser.add_argument(
        "--out", metavar="DIR", help="report folder (default: doctor/, or RUN/doctor with --run)"
    )
    parser.add_argument(
        "--fit-steps",
        type=int,
        default=200,
        help="Adam steps of the short fit used when there are no curves (0: skip; default 200)",
    )
    parser.add_argument("--inits", type=int, default=5, help="random re-inits (default 5)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    parser.add_argument(
        "--lr",
        type=float,
        default=1e-3,
        help="learning rate of the short fit and of the no-learning floor (default 1e-3)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads for the diagnostics (default: 1 when subnormal floats are found)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar or per-check lines"
    )
    parser.add_argument("--json", action="store_true", help="print the diagnosis as JSON")


def _from_run(path: str, args: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    """The run's trained model, data, curves and report folder. --model/--dataset name what the
    run trained (a check); another one is an error, not a silent switch."""
    from dlskills.train.runs import load_run, read_run_config

    recorded = read_run_config(path)
    for key in ("model", "dataset"):
        given = getattr(args, key)
        if given is not None and given != recorded.get(key):
            raise ValueError(
                f"--{key} {given}: run {path} trained {key} {recorded.get(key)!r}; drop --{key} "
                f"to diagnose the run, or drop --run to diagnose an untrained {given}"
            )
    run = load_run(path)
    rows = [row for row in run.metrics if row.get("val_loss") not in (None, "")]
    return run.model, run.splits, rows or None, run.path / "doctor"


class CheckProgress:
    """doctor's ``progress(stage, done, total)`` on the shared progress display
    (dlskills._progress): one unit per finished check, so off a terminal one plain line each on
    stderr (``doctor: check 3/7 init_check (1.9 s)``, the time since the start) and on a terminal
    one bar, with the check under way and its steps (the short fit's) beside it."""

    def __init__(self, stages: tuple[str, ...], stream: Any = None, console: Any = None) -> None:
        from dlskills._progress import Progress

        self.stages = stages
        self.bar = Progress("doctor", len(stages), unit="check", stream=stream, console=console)

    def __call__(self, stage: str, done: int, total: int) -> None:
        if done < total:
            self.bar.status(f"{stage} {done}/{total}" if total > 1 else stage)
        else:
            self.bar(self.stages.index(stage) + 1, None, stage)

    def close(self) -> None:
        self.bar.close()


def make_progress(enabled: bool, stream: Any = None) -> CheckProgress | None:
    """The doctor's progress display (a rich bar on a terminal, plain lines otherwise, on
    stderr so that --json output stays clean); None when disabled."""
    from dlskills.diagnose.doctor import STAGES

    return CheckProgress(STAGES, stream) if enabled else None


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import torch
    from torch import nn

    from dlskills.diagnose.doctor import doctor

    for name in ("fit_steps", "inits", "batch_size"):
        value = getattr(args, name)
        if value < (0 if name == "fit_steps" else 1 if name == "batch_size" else 2):
            raise ValueError(f"--{name.replace('_', '-')} is out of range: {value}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads is out of range: {args.threads}")
    torch.manual_seed(args.seed)
    if args.run is not None:
        model, splits, history, default_out = _from_run(args.run, args)
    else:
        from dlskills import data, models

        splits = data.load(args.dataset or "digits", seed=args.seed)
        model = models.create(
            args.model or "cnn",
            input_shape=tuple(splits.input_shape),
            num_classes=splits.output_dim,
        )
        history, default_out = None, Path("doctor")
    train_loader, val_loader, _ = splits.loaders(args.batch_size, seed=args.seed)
    classification = splits.task == "classification"
    loss_fn = nn.functional.cross_entropy if classification else nn.functional.mse_loss
    out = Path(args.out) if args.out else default_out
    progress = make_progress(not args.no_progress)
    try:
        diagnosis = doctor(
            model,
            train_loader,
            loss_fn,
            val_loader=val_loader,
            history=history,
            fit_steps=args.fit_steps,
            lr=args.lr,
            n_inits=args.inits,
            num_threads=args.threads,
            seed=args.seed,
            out=out,
            progress=progress,
        )
    finally:
        if progress is not None:
            progress.close()
    if args.json:
        print(json.dumps(diagnosis.to_dict(), indent=2, default=str))
        return 0
    print(diagnosis.summary())
    for text in diagnosis.recommendations:
        print(f"  -> {text}")
    print(f"overall {diagnosis.verdict}; report: {out / 'report.md'}")
    return 0
