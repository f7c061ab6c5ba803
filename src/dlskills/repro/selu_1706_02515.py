"""Reproduction of catalog 1706.02515: Klambauer, Unterthiner, Mayr & Hochreiter,
"Self-Normalizing Neural Networks" (NIPS 2017).

Claim: with SELU activations and LeCun-normal weights (N(0, 1/fan_in)), activations are driven
to zero mean and unit variance layer after layer (a stable fixed point, Theorem 1), so very deep
fully connected networks train without normalisation layers, where ReLU networks without
batch norm do not.

Measured (``dlskills.nn.selu``):
- forward statistics: a 64-layer, width-256 ``SelfNormalizingMLP`` on standardized inputs — the
  largest |mean| and |variance − 1| of any SELU layer's output; the control is the same network
  with ReLU (same LeCun init), whose last-layer variance collapses;
- training: 32 hidden layers of 64 on digits, SGD (lr 0.005, momentum 0.9), SELU + LeCun init
  against ReLU with PyTorch's default init and no normalisation (the paper's comparison): test
  accuracy per seed.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from dlskills.models._quickfit import digits_tensors, quick_fit
from dlskills.nn.selu import SelfNormalizingMLP
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1706.02515"
CLAIM = Claim(
    text="SELU networks with LeCun-normal initialisation are self-normalizing: activations "
    "converge to zero mean and unit variance through many layers, so deep feed-forward "
    "networks train without batch normalisation, unlike ReLU networks.",
    value="mean -> 0, variance -> 1 (fixed point); deep SNNs train",
    source="Theorem 1, Fig. 1, Sec. 4",
)


def layer_statistics(model: nn.Sequential, x: torch.Tensor, kind: type) -> list[tuple]:
    """(mean, variance) of the output of every ``kind`` layer of ``model`` on ``x``."""
    stats = []
    with torch.no_grad():
        for layer in model:
            x = layer(x)
            if isinstance(layer, kind):
                stats.append((x.mean().item(), x.var().item()))
    return stats


def _forward(seed: int, samples: int) -> dict[str, float]:
    x = torch.randn(samples, 256, generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(seed)
    selu = layer_statistics(SelfNormalizingMLP(256, 256, 64, 10), x, nn.SELU)
    torch.manual_seed(seed)
    relu = layer_statistics(SelfNormalizingMLP(256, 256, 64, 10, activation=nn.ReLU), x, nn.ReLU)
    return {
        "mean": max(abs(mean) for mean, _ in selu),
        "variance": max(abs(var - 1) for _, var in selu),
        "relu variance": relu[-1][1],
    }


def _train(seed: int, activation: str, epochs: int) -> float:
    torch.manual_seed(seed)
    model = SelfNormalizingMLP(
        64, 64, 32, 10, activation=nn.SELU if activation == "selu" else nn.ReLU
    )
    if activation == "relu":  # PyTorch's default init, as a user would build it
        for layer in model:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()
    data = digits_tensors(seed=seed, image=False)
    return 100 * quick_fit(model, data, epochs=epochs, lr=0.005, seed=seed)


@register(CATALOG_ID)
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Self-normalisation through 64 layers, and a 32-layer SNN against ReLU on digits."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0, 1), "full": (0, 1, 2)})
    samples, epochs = run.pick(fast=(1000, 10), full=(2000, 30))
    forward = [_forward(seed, samples) for seed in run.seeds]
    selu = [_train(seed, "selu", epochs) for seed in run.seeds]
    relu = [_train(seed, "relu", epochs) for seed in run.seeds]

    def row(name: str, values: list[float], unit: str = "") -> Measured:
        return Measured.over_seeds(name, unit, values, run.seeds)

    return run.result(
        claim=CLAIM,
        measured=[
            row("largest |mean| over 64 SELU layers", [f["mean"] for f in forward]),
            row("largest |variance - 1| over 64 SELU layers", [f["variance"] for f in forward]),
            row("last-layer variance, ReLU control", [f["relu variance"] for f in forward]),
            row("test accuracy, 32-layer SNN", selu, "%"),
            row("test accuracy, 32-layer ReLU, no BN", relu, "%"),
        ],
        thresholds=[
            Threshold("largest |mean| over 64 SELU layers", "<=", 0.1, "fixed point mean 0"),
            Threshold(
                "largest |variance - 1| over 64 SELU layers", "<=", 0.15, "fixed point variance 1"
            ),
            Threshold(
                "last-layer variance, ReLU control",
                "<=",
                1e-6,
                "without self-normalisation the signal vanishes with depth",
            ),
            Threshold("test accuracy, 32-layer SNN", ">=", 85.0, "the deep SNN trains"),
            Threshold(
                "test accuracy, 32-layer ReLU, no BN",
                "<=",
                25.0,
                "the ReLU net without BN does not (chance is 10 %)",
            ),
        ],
        config={
            "forward": {"depth": 64, "width": 256, "samples": samples},
            "training": {
                "depth": 32,
                "width": 64,
                "epochs": epochs,
                "lr": 0.005,
                "momentum": 0.9,
                "dataset": "digits",
            },
        },
    )
