"""Reproduction of catalog 1905.09054: Ozay, "Fine-grained Optimization of Deep Neural Networks"
(NeurIPS 2019).

Claim: training a CNN with SGD on a product of weight manifolds — each kernel renormalised onto
its unit sphere and moved along it by the exponential map, with the step rescaled by the
component's bound (FG-SGD) — improves the classification accuracy of the network over plain
SGD, with the same architecture and budget (abstract, Sec. 5, Tables 1–3: ResNets on CIFAR and
ImageNet).

Measured (``dlskills.optim.FGSGD`` with the paper's PO strategy, a sphere per output-channel
kernel, against ``torch.optim.SGD``): the default ``dlskills`` CNN on digits images (conv →
batch norm → ReLU stages, so every kernel feeds a batch norm and its scale is free, the paper's
setting), minibatches of 32, the same batches for both, each optimizer at the best learning
rate of its own grid (chosen by final test accuracy, as the paper tunes each method):
- test accuracy of each at its best rate, and the FG-SGD − SGD gain per seed.
Thresholds: a positive mean gain, and no seed where FG-SGD ends below SGD. Deviation: digits
and a two-stage CNN instead of CIFAR/ImageNet ResNets, a few hundred steps, spheres only (the
paper also uses oblique and Stiefel components).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from dlskills.models import create as create_model
from dlskills.models._quickfit import digits_tensors
from dlskills.optim.fg_sgd import FGSGD
from dlskills.repro import _digits_training as digits
from dlskills.repro import register
from dlskills.repro._support import one_thread
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1905.09054"
RATES = {"SGD": (0.01, 0.03, 0.1, 0.3), "FG-SGD": (0.01, 0.03, 0.1, 0.3)}
CLAIM = Claim(
    text="SGD on a product of weight manifolds (FG-SGD: each kernel on its unit sphere, moved "
    "by the exponential map) improves the classification accuracy of CNNs over plain SGD.",
    value="higher test accuracy than SGD, same network and budget",
    source="abstract, Sec. 5, Tables 1–3",
)


def cnn(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("cnn", input_shape=(1, 8, 8), num_classes=10)


def accuracy_at(name: str, lr: float, data, seed: int, steps: int) -> float:
    """Test accuracy (%) after ``steps`` steps of ``name`` at ``lr``."""
    model = cnn(seed)
    make = {"SGD": torch.optim.SGD, "FG-SGD": FGSGD}[name]
    curves = digits.train(
        model, make(model.parameters(), lr=lr), data, steps=steps, batch_size=32, seed=seed
    )
    return 100.0 * curves.final_accuracy


def _figure(path, per_seed: list[dict[str, dict[float, float]]], seeds) -> None:
    from dlskills._plot import label_axes, new_figure, save_figure

    fig, ax = new_figure(size=(6.0, 4.0))
    for name, marker in (("SGD", "o"), ("FG-SGD", "s")):
        rates = sorted(per_seed[0][name])
        for index, runs in enumerate(per_seed):
            ax.semilogx(
                rates,
                [runs[name][lr] for lr in rates],
                marker=marker,
                color="tab:blue" if name == "SGD" else "tab:orange",
                alpha=0.8,
                label=name if index == 0 else None,
            )
    label_axes(
        ax,
        "learning rate",
        "test accuracy (%)",
        title=f"digits CNN (batch norm), seeds {', '.join(map(str, seeds))}",
    )
    ax.legend()
    save_figure(fig, path)


@register(CATALOG_ID, fast="not reproduced")
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """FG-SGD against SGD on a batch-normalised CNN, each at its best learning rate."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0, 1, 2), "full": range(5)})
    steps = run.pick(fast=200, full=1000)
    per_seed = []
    with one_thread():  # the same numbers on every machine
        for seed in run.seeds:
            data = digits_tensors(seed=seed, image=True)
            per_seed.append(
                {
                    name: {lr: accuracy_at(name, lr, data, seed, steps) for lr in rates}
                    for name, rates in RATES.items()
                }
            )
    run.figure("fg_sgd_accuracy.png", lambda p: _figure(p, per_seed, run.seeds))
    best = {name: [max(runs[name].values()) for runs in per_seed] for name in RATES}
    gains = [f - s for f, s in zip(best["FG-SGD"], best["SGD"], strict=True)]

    def row(name: str, values: list[float], unit: str = "%") -> Measured:
        return Measured.over_seeds(name, unit, values, run.seeds)

    return run.result(
        claim=CLAIM,
        measured=[
            row("SGD test accuracy, best learning rate", best["SGD"]),
            row("FG-SGD test accuracy, best learning rate", best["FG-SGD"]),
            row("gain FG-SGD − SGD", gains, "points"),
            Measured.exact("worst-seed gain FG-SGD − SGD", "points", min(gains)),
        ],
        thresholds=[
            Threshold("gain FG-SGD − SGD", ">", 0.0, "the paper's claim: higher accuracy"),
            Threshold(
                "worst-seed gain FG-SGD − SGD",
                ">=",
                0.0,
                "not a seed's luck: FG-SGD never ends below SGD",
            ),
        ],
        config={"steps": steps, "batch_size": 32, "rates": RATES, "model": "cnn (batch norm)"},
    )
