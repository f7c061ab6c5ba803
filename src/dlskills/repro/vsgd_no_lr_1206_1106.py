"""Reproduction of catalog 1206.1106: Schaul, Zhang & LeCun, "No More Pesky Learning Rates"
(ICML 2013).

Claim: vSGD sets every parameter's learning rate from running estimates of the gradient's mean,
its variance and the diagonal curvature, η* = (ḡ²/v̄)/h̄, with adaptive memory; with no learning
rate to tune it reaches the performance of SGD with the best learning rate found by a search
(Sec. 6, Fig. 5–6, Table 3: training and test error on MNIST-style networks).

Measured (``dlskills.optim.VSGD`` with its defaults, no tuning — the curvature from finite
differences on the same batch — against ``torch.optim.SGD`` at each learning rate of a grid,
the best chosen by final training loss), a 64-32-10 MLP on digits, batches of 32, the same
batches for every optimizer: the final loss on the whole training set (ratio to the tuned SGD's)
and the final test accuracy (gap to the tuned SGD's), and vSGD's loss against the median of
the grid (what an untuned guess gets).
Deviation: plain SGD with a constant rate per grid point (the paper also tunes an annealing
schedule for its baseline).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable

import torch

from dlskills.optim.vsgd import VSGD
from dlskills.repro import _digits_training as digits
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1206.1106"
BATCH = 32
CLAIM = Claim(
    text="vSGD, which adapts per-parameter learning rates from local gradient statistics and "
    "curvature, needs no learning rate and matches SGD with the best tuned learning rate.",
    value="vSGD ≈ best tuned SGD in training and test error",
    source="Sec. 6, Fig. 5–6, Table 3",
)


def _train(make, seed: int, steps: int) -> digits.Curves:
    model = digits.mlp(seed)
    return digits.train(
        model,
        make(model.parameters()),
        digits.data(seed),
        steps=steps,
        batch_size=BATCH,
        seed=seed,
        eval_every=max(steps // 20, 1),
    )


def _figure(path, runs: dict[str, digits.Curves]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for label, curves in runs.items():
        style = "-" if label.startswith("vSGD") else ":"
        ax.semilogy(curves.eval_steps, curves.train_loss, style, label=label)
    ax.set_xlabel("step (batches of 32)")
    ax.set_ylabel("training loss (cross-entropy, whole set)")
    ax.set_title("vSGD (no learning rate) vs SGD over a learning-rate grid (digits MLP)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


@register(CATALOG_ID, fast="partial")
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Untuned vSGD against SGD at the best learning rate of a grid."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0,), "full": (0, 1, 2)})
    steps, grid = run.pick(
        fast=(1500, (0.1, 0.3, 1.0, 3.0)), full=(6000, (0.03, 0.1, 0.3, 1.0, 3.0))
    )
    rows: dict[str, list[float]] = {}
    figure_runs: dict[str, digits.Curves] = {}
    for seed in run.seeds:
        sgd = {lr: _train(lambda p, lr=lr: torch.optim.SGD(p, lr=lr), seed, steps) for lr in grid}
        vsgd = _train(VSGD, seed, steps)
        best = min(sgd, key=lambda lr: sgd[lr].final_train_loss)
        median_loss = statistics.median(c.final_train_loss for c in sgd.values())
        for key, value in (
            ("best lr", best),
            ("sgd loss", sgd[best].final_train_loss),
            ("vsgd loss", vsgd.final_train_loss),
            ("ratio", vsgd.final_train_loss / sgd[best].final_train_loss),
            ("median ratio", vsgd.final_train_loss / median_loss),
            ("sgd accuracy", 100 * sgd[best].final_accuracy),
            ("vsgd accuracy", 100 * vsgd.final_accuracy),
            ("gap", 100 * (vsgd.final_accuracy - sgd[best].final_accuracy)),
        ):
            rows.setdefault(key, []).append(value)
        if not figure_runs:
            figure_runs = {"vSGD (no learning rate)": vsgd}
            figure_runs |= {f"SGD lr {lr:g}": c for lr, c in sgd.items()}
    run.figure("vsgd_no_lr.png", lambda p: _figure(p, figure_runs))

    def row(name: str, key: str, unit: str = "") -> Measured:
        return Measured.over_seeds(name, unit, rows[key], run.seeds)

    return run.result(
        claim=CLAIM,
        measured=[
            row("tuned SGD learning rate", "best lr"),
            row("final training loss, tuned SGD", "sgd loss"),
            row("final training loss, vSGD", "vsgd loss"),
            row("training loss ratio vSGD / tuned SGD", "ratio", "×"),
            row("training loss ratio vSGD / median of the grid", "median ratio", "×"),
            row("test accuracy, tuned SGD", "sgd accuracy", "%"),
            row("test accuracy, vSGD", "vsgd accuracy", "%"),
            row("test accuracy gap, vSGD − tuned SGD", "gap", "points"),
        ],
        thresholds=[
            Threshold(
                "training loss ratio vSGD / tuned SGD",
                "<=",
                1.5,
                "matches the best tuned SGD's training loss (within 1.5×)",
            ),
            Threshold(
                "test accuracy gap, vSGD − tuned SGD",
                ">=",
                -1.0,
                "matches its test accuracy within a point (one of 270 test digits: 0.37)",
            ),
        ],
        config={
            "model": "64-32-10 MLP",
            "dataset": "digits",
            "batch_size": BATCH,
            "steps": steps,
            "sgd_grid": list(grid),
            "vsgd": "defaults",
        },
    )
