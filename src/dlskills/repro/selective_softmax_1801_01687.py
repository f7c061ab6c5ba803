"""Reproduction of catalog 1801.01687: Zhang, Yang, Yan & Lin, "Accelerated Training for Massive
Classification via Dynamic Class Selection" (AAAI 2018).

Claim: training the softmax over a small, dynamically selected set of active classes per
minibatch (the true classes plus those most likely confused with them) instead of all C classes
makes each training step much cheaper at a small cost in accuracy.

Measured (``dlskills.nn.selective_softmax.selective_softmax_check``; the task and the class
hierarchy are in its docstring): a linear classifier over many synthetic classes (prototype +
noise, 6 training samples per class), trained with the full softmax (the control) and with class
budgets, the arms stepping in turn on the same minibatches. Per seed: held-out accuracy of each,
the accuracy cost (full − selective), the median step time of the full softmax over that of
the selective one (same process, interleaved, so machine load hits both), and the mean active
set as a fraction of the classes.

Fast scale: 3,000 classes, a budget of 600, 600 steps. Full: 10,000 classes, budgets 2,048 and
512, 1,500 steps (measured there: 2.1 and 4.4 points, 3.5× and 5.8× faster per step).
Deviation: a k-means class hierarchy stands in for the paper's hashing forest (module doc).
"""

from __future__ import annotations

from collections.abc import Iterable

from dlskills.nn.selective_softmax import selective_softmax_check
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1801.01687"
CLAIM = Claim(
    text="Selecting a small set of active classes per minibatch with a dynamically rebuilt "
    "class hierarchy accelerates the training of massive classifiers at a small cost in "
    "accuracy.",
    value="several-fold faster softmax steps, accuracy close to the full softmax",
    source="Sec. 4-5",
)


@register(CATALOG_ID)
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Selective vs full softmax on a many-class synthetic task: accuracy and step time."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0,), "full": (0, 1, 2)})
    settings = run.pick(
        fast={"num_classes": 3000, "active": (600,), "steps": 600},
        full={"num_classes": 10_000, "active": (2048, 512), "steps": 1500},
    )
    runs = [selective_softmax_check(seed=seed, **settings) for seed in run.seeds]
    classes = settings["num_classes"]
    measured = [
        Measured.over_seeds(
            "test accuracy, full softmax", "%", [100 * r[0].accuracy for r in runs], run.seeds
        )
    ]
    thresholds = [Threshold("test accuracy, full softmax", ">=", 60.0, "the control learns")]
    # budget → the accuracy it may cost: 4 points at a fifth of the classes or more, 7 below
    for index, budget in enumerate(settings["active"], start=1):
        tag = f"budget {budget}"
        cost = [100 * (r[0].accuracy - r[index].accuracy) for r in runs]
        speed = [r[0].step_ms / r[index].step_ms for r in runs]
        share = [r[index].mean_active / classes for r in runs]
        measured += [
            Measured.over_seeds(f"accuracy cost, {tag}", "points", cost, run.seeds),
            Measured.over_seeds(f"step speed-up, {tag}", "x", speed, run.seeds),
            Measured.over_seeds(f"active classes / all, {tag}", "", share, run.seeds),
        ]
        allowed = 4.0 if budget >= classes / 5 else 7.0
        thresholds += [
            Threshold(f"accuracy cost, {tag}", "<=", allowed, "a small accuracy cost"),
            Threshold(
                f"step speed-up, {tag}",
                ">=",
                1.5 if run.fast else 2.0,
                "faster per step than the full softmax (measured in the same process)",
            ),
        ]
    return run.result(
        claim=CLAIM,
        measured=measured,
        thresholds=thresholds,
        config={
            **settings,
            "features": 64,
            "per_class": 6,
            "noise": 1.3,
            "batch_size": 256,
            "lr": 0.5,
        },
    )
