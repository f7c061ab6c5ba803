"""Reproduction of catalog 1906.03516: Mehta, Hajishirzi & Rastegari, "DiCENet: Dimension-wise
Convolutions for Efficient Networks" (2019).

Claim: the DiCE unit — depth-, height- and width-wise 3×3 convolutions (DimConv: k²(C + H + W)
weights, 3k²CHW MACs) fused by the dimension-wise fusion (DimFuse) — is a cheap replacement for
a regular convolution, and networks built from it (DiCENet) learn.

Measured (``dlskills.nn.conv.dice``, ``dlskills.models.DiCENetSmall``,
``dlskills.nn._counting.count_macs``):
- for two unit sizes, how far the counted parameters and MACs are from the paper's closed forms
  (DimConv above; DimFuse: grouped 1×1 over the 3C concatenation, squeeze-style gate C·C/4 +
  C/4·C_out, grouped projection k²·C·C_out/g; BN + PReLU per channel);
- the MACs of a DiCE unit over those of the regular 3×3 convolution with the same channels
  (C = C_out = 64 on a 16×16 map);
- DiCENet-small trained on digits (SGD, momentum 0.9, weight decay 5e-4, batches of 32): test
  accuracy per seed.

Deviation: digits (8×8) instead of ImageNet; DiCENet-small is the authors' layout scaled down
(see ``dlskills.models.dicenet``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from dlskills.models._quickfit import digits_tensors, quick_fit
from dlskills.models.dicenet import DiCENetSmall
from dlskills.nn._counting import count_macs
from dlskills.nn.conv.dice import DiCE
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1906.03516"
CLAIM = Claim(
    text="Dimension-wise convolutions (DimConv: k^2(C + H + W) parameters, 3k^2CHW operations) "
    "with dimension-wise fusion make a cheap unit in place of a regular convolution; DiCENet, "
    "built from it, learns at a fraction of the cost.",
    value="DimConv k^2(C+H+W) params, 3k^2CHW MACs",
    source="Sec. 3.1-3.2 (DiCE unit), Sec. 4 (DiCENet)",
)
UNIT_SIZES = [(8, 16, 6, 6), (12, 12, 5, 7)]  # C_in, C_out, H, W


def closed_form(c_in: int, c_out: int, h: int, w: int) -> tuple[int, int]:
    """(parameters, MACs) of a DiCE unit by the paper's formulas (k = 3, gate reduction 4)."""
    k, r, g = 3, 4, math.gcd(c_in, c_out)
    params = k * k * (c_in + h + w) + 3 * c_in + k * k * c_in * c_out // g
    params += c_in * (c_in // r) + (c_in // r) * c_out
    params += 3 * (3 * c_in) + 3 * c_in + 3 * c_out  # BN (γ, β) and PReLU per channel
    macs = 3 * k * k * c_in * h * w + 3 * c_in * h * w + h * w * k * k * c_in * c_out // g
    macs += c_in * (c_in // r) + (c_in // r) * c_out
    return params, macs


def _count_errors() -> tuple[int, int]:
    params_off = macs_off = 0
    for c_in, c_out, h, w in UNIT_SIZES:
        counts = count_macs(DiCE(c_in, c_out, spatial_size=(h, w)), (c_in, h, w))
        params, macs = closed_form(c_in, c_out, h, w)
        params_off += abs(counts.params - params)
        macs_off += abs(counts.macs - macs)
    return params_off, macs_off


def _mac_ratio(channels: int = 64, size: int = 16) -> float:
    unit = count_macs(DiCE(channels, channels, spatial_size=(size, size)), (channels, size, size))
    regular = count_macs(nn.Conv2d(channels, channels, 3, padding=1), (channels, size, size))
    return unit.macs / regular.macs


@register(CATALOG_ID)
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Counts against the paper's formulas, cost against a regular conv, DiCENet on digits."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0, 1), "full": (0, 1, 2)})
    width, epochs = run.pick(fast=(8, 3), full=(16, 10))
    params_off, macs_off = _count_errors()
    accuracies = []
    for seed in run.seeds:
        torch.manual_seed(seed)
        model = DiCENetSmall(input_shape=(1, 8, 8), num_classes=10, width=width)
        data = digits_tensors(seed=seed)
        accuracies.append(
            100
            * quick_fit(
                model, data, epochs=epochs, lr=0.05, seed=seed, batch_size=32, weight_decay=5e-4
            )
        )
    floor = run.pick(fast=80.0, full=95.0)
    return run.result(
        claim=CLAIM,
        measured=[
            Measured.exact("parameters off the closed form", "(2 unit sizes)", params_off),
            Measured.exact("MACs off the closed form", "(2 unit sizes)", macs_off),
            Measured.exact("DiCE unit MACs / regular 3x3 conv MACs", "", _mac_ratio()),
            Measured.over_seeds("DiCENet-small test accuracy", "%", accuracies, run.seeds),
        ],
        thresholds=[
            Threshold("parameters off the closed form", "<=", 0, "the paper's formulas"),
            Threshold("MACs off the closed form", "<=", 0, "the paper's formulas"),
            Threshold(
                "DiCE unit MACs / regular 3x3 conv MACs",
                "<=",
                0.5,
                "a cheap replacement: at most half a regular conv's cost",
            ),
            Threshold(
                "DiCENet-small test accuracy",
                ">=",
                floor,
                f"learns digits in {epochs} epochs (chance is 10 %)",
            ),
        ],
        config={
            "width": width,
            "epochs": epochs,
            "lr": 0.05,
            "momentum": 0.9,
            "weight_decay": 5e-4,
            "batch_size": 32,
            "unit_sizes": UNIT_SIZES,
            "dataset": "digits",
        },
    )
