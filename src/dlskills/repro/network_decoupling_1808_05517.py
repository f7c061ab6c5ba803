"""Reproduction of catalog 1808.05517: Guo, Li, Lin, Chen & Li, "Network Decoupling: From Regular
to Depthwise Separable Convolutions" (2018).

Claim: a regular convolution is exactly a sum of r = min(C_in, k²) depthwise-separable paths (an
SVD of each filter reshaped to C_in × k²), so a trained network converts into a
MobileNet-like one without retraining; keeping fewer paths trades a small accuracy loss for a
FLOP saving.

Measured (``dlskills.nn.conv.separable``):
- exactness: the relative output error of ``decouple(conv)`` at full rank, float64, on three
  convolutions (strided, dilated, rectangular kernels);
- the error falls with rank: how many rank steps r → r + 1 do not lower the output error of a
  6→5 channel 3×3 conv (every step must);
- on digits, per seed: a small CNN (conv 1→8, conv 8→16, 3×3) trained 5 epochs with SGD, then
  ``decouple_model`` at rank 3 and at rank 2 of 8 without retraining: the test-accuracy drop and
  the MAC saving of each.

Deviation: the paper converts ImageNet VGG/ResNets; here a digits CNN (270 test images, one
image = 0.37 points).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import torch
from torch import nn

from dlskills.models._quickfit import accuracy, digits_tensors, quick_fit
from dlskills.nn.conv.separable import decouple, decouple_model, full_rank
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1808.05517"
CLAIM = Claim(
    text="A regular convolution equals a sum of depthwise-separable convolutions (exact at full "
    "rank), so a trained network is decoupled into a MobileNet-like one without retraining, and "
    "truncating the sum saves computation at a small accuracy cost.",
    value="exact at rank min(C_in, k^2); small drop at a FLOP saving",
    source="Sec. 3 (decoupling theorem), Sec. 4 (experiments without fine-tuning)",
)
EXACT_CONVS = [  # in, out, kernel, stride, padding, dilation
    (5, 7, 3, 1, 1, 1),
    (16, 4, 3, 2, 0, 1),
    (3, 6, (3, 5), 1, 2, 2),
]


def _full_rank_error(generator: torch.Generator) -> float:
    worst = 0.0
    for c_in, c_out, kernel, stride, padding, dilation in EXACT_CONVS:
        conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation).double()
        x = torch.randn(2, c_in, 11, 10, dtype=torch.float64, generator=generator)
        reference = conv(x)
        error = (decouple(conv)(x) - reference).norm() / reference.norm()
        worst = max(worst, error.item())
    return worst


def _rank_steps_not_lowering_error(generator: torch.Generator) -> int:
    conv = nn.Conv2d(6, 5, 3, padding=1, bias=False).double()
    x = torch.randn(4, 6, 9, 9, dtype=torch.float64, generator=generator)
    reference = conv(x)
    errors = [
        ((decouple(conv, rank)(x) - reference).norm() / reference.norm()).item()
        for rank in range(1, full_rank(conv) + 1)
    ]
    return sum(later >= earlier for earlier, later in itertools.pairwise(errors))


def _digits_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


def _one_seed(seed: int, epochs: int) -> dict[str, float]:
    with torch.no_grad():
        generator = torch.Generator().manual_seed(seed)
        measured = {
            "full-rank error": _full_rank_error(generator),
            "rank steps": _rank_steps_not_lowering_error(generator),
        }
    data = digits_tensors(seed=seed)
    torch.manual_seed(seed)
    model = _digits_cnn()
    trained = quick_fit(model, data, epochs=epochs, lr=0.1, seed=seed)
    measured["accuracy"] = 100 * trained
    for rank in (3, 2):
        reduced, report = decouple_model(model, input_shape=(1, 8, 8), rank=rank)
        measured[f"drop {rank}"] = 100 * (trained - accuracy(reduced, *data[2:]))
        measured[f"saving {rank}"] = 100 * report.mac_saving
    return measured


@register(CATALOG_ID)
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Exactness, error against rank, and a trained digits CNN decoupled without retraining."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0, 1, 2), "full": range(5)})
    epochs = run.pick(fast=5, full=15)
    runs = [_one_seed(seed, epochs) for seed in run.seeds]

    def row(name: str, key: str, unit: str) -> Measured:
        return Measured.over_seeds(name, unit, [r[key] for r in runs], run.seeds)

    return run.result(
        claim=CLAIM,
        measured=[
            row("full-rank relative error (worst of 3 convs)", "full-rank error", ""),
            row("rank steps that do not lower the error", "rank steps", "of 5"),
            row("trained CNN test accuracy", "accuracy", "%"),
            row("accuracy drop, rank 3 of 8", "drop 3", "points"),
            row("MAC saving, rank 3 of 8", "saving 3", "%"),
            row("accuracy drop, rank 2 of 8", "drop 2", "points"),
            row("MAC saving, rank 2 of 8", "saving 2", "%"),
        ],
        thresholds=[
            Threshold(
                "full-rank relative error (worst of 3 convs)",
                "<=",
                1e-12,
                "exact at full rank: float64 rounding only",
            ),
            Threshold(
                "rank steps that do not lower the error",
                "<=",
                0,
                "Eckart-Young: each added path lowers the error",
            ),
            Threshold("trained CNN test accuracy", ">=", 85.0, "the net learned digits"),
            Threshold(
                "accuracy drop, rank 3 of 8",
                "<=",
                1.0,
                "a quarter of the MACs for under 3 test images",
            ),
            Threshold("MAC saving, rank 3 of 8", ">=", 25.0, "what rank 3 of 8 must save"),
            Threshold(
                "accuracy drop, rank 2 of 8",
                "<=",
                3.5,
                "half the MACs for a few points, without retraining",
            ),
        ],
        config={
            "cnn": "conv 1-8-16 3x3, avgpool 2, linear",
            "epochs": epochs,
            "lr": 0.1,
            "ranks": [3, 2],
            "dataset": "digits",
        },
    )
