"""Reproduction of catalog dropout-2014: Srivastava, Hinton, Krizhevsky, Sutskever &
Salakhutdinov, "Dropout: A Simple Way to Prevent Neural Networks from Overfitting" (JMLR 2014).

Claim: dropping units at random during training (p = 0.2 on the inputs, 0.5 on the hidden units)
reduces overfitting and improves test accuracy: on MNIST a ReLU net's test error falls from
1.60 % to 1.35 % (Table 2), and the gap between training and test error shrinks.

Measured (``torch.nn.Dropout``, registered in ``dlskills.nn.dropout``; the ``dlskills.models``
MLP with its ``dropout`` option): a 2×512 ReLU MLP on the first 300 training digits (a regime
that overfits: 100 % training accuracy), SGD with momentum 0.9, lr 0.01, batches of 32, trained
without dropout (the control) and with the paper's rates, from the same initial weights (dropout
has no parameters) and the same batches. Per seed: the test accuracy of each arm (eval mode) and
its gain, the generalisation gap (training − test accuracy) of each and its reduction, and the
smallest reduction over the seeds.

Deviation: digits (300 training images, 270 test images: one image = 0.37 points) instead of
MNIST; no max-norm constraint. The gain is small at this size, as in the paper's MNIST table
(0.25 points of error).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from dlskills.models import create
from dlskills.models._quickfit import accuracy, digits_tensors, quick_fit
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "dropout-2014"
TRAIN, WIDTH, LR, P_INPUT, P_HIDDEN = 300, 512, 0.01, 0.2, 0.5
CLAIM = Claim(
    text="Dropout prevents overfitting: networks trained with dropout have a smaller gap "
    "between training and test error and a lower test error.",
    value="MNIST test error 1.60 % -> 1.35 % (ReLU nets)",
    source="Table 2, Sec. 6.1.1, Fig. 4",
)


def _model(dropout: bool) -> nn.Module:
    """The MLP, with input dropout P_INPUT and hidden dropout P_HIDDEN when ``dropout``."""
    mlp = create(
        "mlp", input_shape=(64,), num_classes=10, width=WIDTH, dropout=P_HIDDEN if dropout else 0.0
    )
    return nn.Sequential(nn.Dropout(P_INPUT), mlp) if dropout else mlp


def _one_seed(seed: int, epochs: int) -> dict[str, float]:
    x_train, y_train, x_test, y_test = digits_tensors(seed, image=False)
    data = (x_train[:TRAIN], y_train[:TRAIN], x_test, y_test)
    measured = {}
    for arm, dropout in (("plain", False), ("dropout", True)):
        torch.manual_seed(seed)  # the same initial weights in both arms
        model = _model(dropout)
        test = quick_fit(model, data, epochs=epochs, lr=LR, seed=seed, batch_size=32)
        measured[f"test {arm}"] = 100 * test
        measured[f"gap {arm}"] = 100 * (accuracy(model, *data[:2]) - test)
    return measured


@register(CATALOG_ID)
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """MLP on 300 digits with and without dropout: test accuracy and generalisation gap."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0, 1, 2), "full": range(5)})
    epochs = run.pick(fast=100, full=300)
    runs = [_one_seed(seed, epochs) for seed in run.seeds]

    def row(name: str, values: list[float], unit: str = "%") -> Measured:
        return Measured.over_seeds(name, unit, values, run.seeds)

    reductions = [r["gap plain"] - r["gap dropout"] for r in runs]
    return run.result(
        claim=CLAIM,
        measured=[
            row("test accuracy, no dropout", [r["test plain"] for r in runs]),
            row("test accuracy, dropout", [r["test dropout"] for r in runs]),
            row(
                "test accuracy gain from dropout",
                [r["test dropout"] - r["test plain"] for r in runs],
                "points",
            ),
            row("train − test gap, no dropout", [r["gap plain"] for r in runs], "points"),
            row("train − test gap, dropout", [r["gap dropout"] for r in runs], "points"),
            row("gap reduction from dropout", reductions, "points"),
            Measured.exact("smallest gap reduction over the seeds", "points", min(reductions)),
        ],
        thresholds=[
            Threshold(
                "test accuracy gain from dropout",
                ">",
                0.0,
                "paper: lower test error with dropout (1.60 -> 1.35 % on MNIST)",
            ),
            Threshold("gap reduction from dropout", ">", 0.0, "paper: less overfitting"),
            Threshold(
                "smallest gap reduction over the seeds",
                ">",
                0.0,
                "less overfitting on every seed, not on average only",
            ),
        ],
        config={
            "train_images": TRAIN,
            "width": WIDTH,
            "depth": 2,
            "epochs": epochs,
            "lr": LR,
            "momentum": 0.9,
            "batch_size": 32,
            "p_input": P_INPUT,
            "p_hidden": P_HIDDEN,
        },
    )
