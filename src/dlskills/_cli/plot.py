"""``dlskills plot WHAT``: the figures of the docs, drawn where the user says (``--out``; default
``figures/WHAT.png`` under the current folder, never into the repository's docs/).

    dlskills plot optimizers --function beale --optimizers sgd,momentum,adam,adabound \\
        --steps 300 --out beale.png
    dlskills plot mean-field --out docs/figures/mean_field_widths.png

``optimizers``: optimizer paths on a 2-D test function (catalog 1609.04747). Each optimizer may
carry options after a colon, with the syntax of ``dlskills train --opt``:
``sgd:lr=0.01,adam:lr=0.1:betas=0.9,0.99`` (a tuple is written with commas). ``--lr`` sets the
learning rate of every optimizer that does not name its own. The other figures are the checks
of docs/doctor.md, docs/data_and_models.md and docs/training.md; they train for 10 s to a few
minutes and show their progress (a bar on a terminal, one line per unit otherwise).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

HELP = "draw a figure of the docs: optimizer trajectories, mean-field widths, filter recovery, ..."

_FUNCTIONS = ("rosenbrock", "beale", "ill_conditioned_quadratic", "noisy_quadratic", "saddle")

#: the unit of work each figure's progress counts
_UNITS = {
    "mean-field": "run",
    "filter-recovery": "step",
    "latent-recovery": "step",
    "decoupled": "epoch",
    "large-batch": "seed",
}

#: figure -> what it shows (the --help text)
FIGURES: dict[str, str] = {
    "optimizers": "optimizer trajectories on a 2-D test function (1609.04747)",
    "mean-field": "mean-field MLP training curves converge as the width grows (1902.02880)",
    "filter-recovery": "a student CNN recovers a teacher's filters (docs/doctor.md)",
    "latent-recovery": "latent recovery of training vs held-out images by a VAE (docs/doctor.md)",
    "through-time": "gradient flow through time of three tanh RNNs (1211.5063)",
    "decoupled": "delayed-gradient modules vs backprop on digits (1906.09108)",
    "large-batch": "large-batch SGD: linear scaling and warm-up on digits (1706.02677)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "what",
        choices=list(FIGURES),
        metavar="WHAT",
        help="the figure: " + "; ".join(f"{name}: {text}" for name, text in FIGURES.items()),
    )
    parser.add_argument("--out", default=None, help="PNG file to write (default: figures/WHAT.png)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: reproducible numbers)"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar or per-unit lines"
    )
    optimizers = parser.add_argument_group("optimizers")
    optimizers.add_argument("--function", default="beale", choices=_FUNCTIONS, help="test function")
    optimizers.add_argument(
        "--optimizers",
        default="sgd,momentum,adam",
        help="comma-separated optimizer names, each optionally name:key=value:key=value",
    )
    optimizers.add_argument("--steps", type=int, default=300, help="steps per optimizer")
    optimizers.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate of every optimizer (None: each its own)",
    )


def parse_optimizers(spec: str, lr: float | None = None) -> dict[str, dict[str, Any]]:
    """``"sgd:lr=0.01,adam"`` -> ``{"sgd": {"lr": 0.01}, "adam": {}}`` (``lr`` fills gaps)."""
    from dlskills._cli._specs import parse_item, split_items

    optimizers: dict[str, dict[str, Any]] = {}
    for item in split_items(spec):
        name, kwargs = parse_item(item, "--optimizers")
        if lr is not None:
            kwargs.setdefault("lr", lr)
        optimizers[name] = kwargs
    if not optimizers:
        raise ValueError("--optimizers must name at least one optimizer")
    return optimizers


def _study(what: str, progress: Any) -> Callable[[str], Any]:
    """Run the check behind figure ``what`` (reporting to ``progress``); returns its plotter."""
    if what == "mean-field":
        from dlskills.models.mean_field import plot_width_convergence, width_convergence

        result = width_convergence(progress=progress)
        return lambda path: plot_width_convergence(result, path)
    if what == "filter-recovery":
        from dlskills.diagnose.filter_recovery import plot_filter_recovery, teacher_student

        recovery = teacher_student(progress=progress)
        return lambda path: plot_filter_recovery(recovery, path)
    if what == "latent-recovery":
        from dlskills.diagnose.latent_recovery import memorization_check, plot_latent_recovery

        recovered = memorization_check(progress=progress)
        return lambda path: plot_latent_recovery(recovered, path)
    if what == "through-time":
        from dlskills.diagnose import through_time_demo

        return through_time_demo().plot
    if what == "decoupled":
        from dlskills.train.techniques.decoupled import decoupled_check, plot_decoupled

        arms = decoupled_check(progress=progress)
        return lambda path: plot_decoupled(arms, path)
    from dlskills.train.techniques.large_batch import large_batch_study, plot_large_batch

    study = large_batch_study(range(5), progress=progress)
    print(study.table())
    return lambda path: plot_large_batch(study, path)


def run(args: argparse.Namespace) -> int:
    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    out = args.out or f"figures/{args.what}.png"
    if args.what == "optimizers":
        optimizers = parse_optimizers(args.optimizers, args.lr)
        from dlskills.bench.surfaces import plot_trajectories
        from dlskills.optim import OPTIMIZERS

        for name in optimizers:
            OPTIMIZERS.entry(name)  # unknown names fail here with a did-you-mean hint
        print(f"wrote {plot_trajectories(args.function, optimizers, args.steps, out)}")
        return 0

    import torch

    from dlskills._progress import Progress

    torch.set_num_threads(args.threads)
    progress = None
    if not args.no_progress and args.what in _UNITS:
        progress = Progress(f"plot {args.what}", None, unit=_UNITS[args.what], lines=20)
    try:
        plotter = _study(args.what, progress)
    finally:
        if progress is not None:
            progress.close()
    print(f"wrote {plotter(out)}")
    return 0
