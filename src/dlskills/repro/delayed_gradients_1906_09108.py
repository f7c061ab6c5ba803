"""Reproduction of catalog 1906.09108: Zhuang, Wang, Liu, Zhang & Lin, "Fully Decoupled Neural
Network Learning Using Delayed Gradients" (FDG, 2019).

Claim: splitting a network into K modules that update from delayed gradients (module k uses a
gradient 2(K − k − 1) steps old), shrunk by β, breaks backprop's forward/backward/update locks
without losing accuracy: ResNet-20 on CIFAR-10 reaches 7.23 % error with K = 2, β = 0.2,
against 7.78 % for backprop.

Measured (``dlskills.train.techniques.decoupled``): a 64-128-128-128-10 ReLU MLP on digits cut
into K = 2 and K = 3 modules (after the first and second hidden layer) with β = 0.5, against
plain backprop (the control): SGD lr 0.05, momentum 0.9, batches of 32, every arm of a seed from
the same weights and batch order; the test accuracy after the last epoch per seed, and the
backprop − FDG gap per seed (paired).

Deviation: digits and an MLP instead of CIFAR-10 ResNets; β = 0.5 (the paper's 0.2 was tuned
for its ResNets); one process runs the modules in turn (the pipeline's timing and staleness are
exact, the parallel speed-up is not measured).
"""

from __future__ import annotations

from collections.abc import Iterable

from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold
from dlskills.train.techniques.decoupled import decoupled_check, plot_decoupled

CATALOG_ID = "1906.09108"
CLAIM = Claim(
    text="Fully decoupled training with delayed, shrunk gradients reaches the accuracy of "
    "backpropagation while the modules update in parallel.",
    value="ResNet-20/CIFAR-10: 7.23 % error (K = 2, β = 0.2) vs 7.78 % backprop",
    source="Table 2",
)
ARMS = {"backprop": ((), 1.0), "K = 2": ((3,), 0.5), "K = 3": ((3, 5), 0.5)}
TOLERANCE = 1.5  # points: 4 of the 270 digits test images


@register(CATALOG_ID)
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """FDG with K = 2 and 3 modules against backprop on digits (see the module doc)."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0, 1, 2), "full": range(5)})
    epochs = run.pick(fast=15, full=30)
    arms = decoupled_check(list(ARMS.values()), seeds=run.seeds, epochs=epochs)
    run.figure("accuracy.png", lambda path: plot_decoupled(arms, path))
    final = {name: [100 * curve[-1] for curve in arm.accuracy] for name, arm in zip(ARMS, arms)}

    def gap(name: str) -> list[float]:
        return [b - f for b, f in zip(final["backprop"], final[name])]

    def row(name: str, values: list[float], unit: str = "%") -> Measured:
        return Measured.over_seeds(name, unit, values, run.seeds)

    return run.result(
        claim=CLAIM,
        measured=[
            row("test accuracy, backprop", final["backprop"]),
            row("test accuracy, FDG K = 2, β = 0.5", final["K = 2"]),
            row("test accuracy, FDG K = 3, β = 0.5", final["K = 3"]),
            row("backprop − FDG K = 2", gap("K = 2"), "points"),
            row("backprop − FDG K = 3", gap("K = 3"), "points"),
        ],
        thresholds=[
            Threshold("test accuracy, backprop", ">=", 95.0, "the control learns digits"),
            Threshold(
                "backprop − FDG K = 2",
                "<=",
                TOLERANCE,
                "paper: FDG matches backprop (0.55 points better); 4 test images",
            ),
            Threshold(
                "backprop − FDG K = 3",
                "<=",
                TOLERANCE,
                "paper: FDG matches backprop; 4 test images",
            ),
        ],
        config={
            "model": "MLP 64-128-128-128-10",
            "arms": {k: [*v[0], v[1]] for k, v in ARMS.items()},
            "epochs": epochs,
            "lr": 0.05,
            "momentum": 0.9,
            "batch_size": 32,
            "dataset": "digits",
        },
    )
