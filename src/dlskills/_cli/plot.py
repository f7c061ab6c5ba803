"""``dlskills plot optimizers``: optimizer paths on a 2-D test function (catalog 1609.04747).

    dlskills plot optimizers --function beale --optimizers sgd,momentum,adam,adabound \\
        --steps 300 --out beale.png

Each optimizer may carry options after a colon: ``sgd:lr=0.01,adam:lr=0.1:betas=0.9;0.99``
(``;`` separates the items of a tuple). ``--lr`` sets the learning rate of every optimizer that
does not name its own.
"""

from __future__ import annotations

import argparse
from typing import Any

HELP = "plot optimizer trajectories on a 2-D test function (Beale, Rosenbrock, saddle, ...)"

_FUNCTIONS = ("rosenbrock", "beale", "ill_conditioned_quadratic", "noisy_quadratic", "saddle")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["optimizers"], help="what to plot")
    parser.add_argument("--function", default="beale", choices=_FUNCTIONS, help="test function")
    parser.add_argument(
        "--optimizers",
        default="sgd,momentum,adam",
        help="comma-separated optimizer names, each optionally name:key=value:key=value",
    )
    parser.add_argument("--steps", type=int, default=300, help="steps per optimizer")
    parser.add_argument("--lr", type=float, default=None, help="learning rate for all")
    parser.add_argument("--out", required=True, help="PNG file to write")


def _parse_value(text: str) -> Any:
    if ";" in text:
        return tuple(_parse_value(part) for part in text.split(";"))
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_optimizers(spec: str, lr: float | None = None) -> dict[str, dict[str, Any]]:
    """``"sgd:lr=0.01,adam"`` -> ``{"sgd": {"lr": 0.01}, "adam": {}}`` (``lr`` fills gaps)."""
    optimizers: dict[str, dict[str, Any]] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, *options = item.split(":")
        kwargs: dict[str, Any] = {}
        for option in options:
            key, sep, value = option.partition("=")
            if not sep or not key:
                raise ValueError(f"--optimizers: option {option!r} of {name!r} is not key=value")
            kwargs[key.strip()] = _parse_value(value.strip())
        if lr is not None:
            kwargs.setdefault("lr", lr)
        optimizers[name.strip()] = kwargs
    if not optimizers:
        raise ValueError("--optimizers must name at least one optimizer")
    return optimizers


def run(args: argparse.Namespace) -> int:
    from dlskills.optim import OPTIMIZERS
    from dlskills.optim.test_functions import plot_trajectories

    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    optimizers = parse_optimizers(args.optimizers, args.lr)
    for name in optimizers:
        OPTIMIZERS.entry(name)  # unknown names fail here with a did-you-mean hint
    path = plot_trajectories(args.function, optimizers, args.steps, args.out)
    print(f"wrote {path}")
    return 0
