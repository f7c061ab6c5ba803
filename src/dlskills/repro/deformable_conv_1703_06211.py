"""Reproduction of catalog 1703.06211: Dai et al., "Deformable Convolutional Networks" (ICCV 2017).

Claim: adding learned 2-D offsets to the sampling grid, sampled by bilinear interpolation and
trained by back-propagation through it, lets a convolution adapt its receptive field to the
input's geometry — which a regular convolution of the same kernel cannot; with zero offsets it is
the regular convolution.

Measured (``dlskills.nn.functional.deform_conv2d``, ``dlskills.nn.conv.DeformConv2d``), float64,
per seed (random weights and a smooth random image, 3 → 4 channels):
- the relative error of zero offsets against ``F.conv2d`` (3×3, padding 1) and of an integer
  offset (+1, −2) against ``F.conv2d`` of the input shifted by it;
- learning a geometric transformation: the target is the image sampled 0.6 px lower and 0.3 px
  left (fractional: no integer shift reproduces it) through a fixed 1×1 conv. A DeformConv2d
  whose only trainable part is its offset predictor, and as the control arm a regular 1×1 conv
  trained on all its weights, each take 100 Adam steps (lr 0.02); their final MSE relative to
  the start, and the deformable layer's error in the learned offset.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from dlskills.nn.conv.deform import DeformConv2d
from dlskills.nn.functional import deform_conv2d
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1703.06211"
SHIFT = (0.6, -0.3)
CLAIM = Claim(
    text="Deformable convolution augments the sampling grid with offsets learned by "
    "back-propagation through bilinear sampling, so the convolution adapts to geometric "
    "transformations of its input; with zero offsets it is the regular convolution.",
    value="offsets learned end to end; regular conv at Δp = 0",
    source="Sec. 2.1 (Eq. 2-4), Sec. 2.3",
)


def _relative(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got - want).norm() / want.norm()).item()


def _shifted_conv(x: torch.Tensor, weight: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """The 3×3, padding-1 conv of x sampled at (y + dy, x + dx), zero outside the image: a
    regular conv over a wide zero border, read at the shifted positions."""
    border = 1 + max(abs(dy), abs(dx))
    height, width = x.shape[-2:]
    full = F.conv2d(F.pad(x, (border,) * 4), weight)
    top, left = border - 1 + dy, border - 1 + dx
    return full[..., top : top + height, left : left + width]


def _fit(module: nn.Module, params, x: torch.Tensor, target: torch.Tensor, steps: int) -> float:
    optimizer = torch.optim.Adam(params, lr=0.02)
    first = F.mse_loss(module(x), target).item()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.mse_loss(module(x), target)
        loss.backward()
        optimizer.step()
    return F.mse_loss(module(x), target).item() / first


def _one_seed(seed: int, steps: int) -> dict[str, float]:
    torch.manual_seed(seed)
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    zero = torch.zeros(2, 2 * 9, 9, 8, dtype=torch.float64)
    integer = torch.tensor([1.0, -2.0], dtype=torch.float64).repeat(9).view(1, 18, 1, 1)
    measured = {
        "zero": _relative(
            deform_conv2d(x, zero, weight, padding=(1, 1)), F.conv2d(x, weight, padding=1)
        ),
        "integer": _relative(
            deform_conv2d(x, integer.expand(2, 18, 9, 8), weight, padding=(1, 1)),
            _shifted_conv(x, weight, 1, -2),
        ),
    }
    coarse = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    image = F.interpolate(coarse, size=(16, 16), mode="bilinear", align_corners=True)
    layer = DeformConv2d(3, 4, 1).double()
    layer.weight.requires_grad_(False)
    layer.bias.requires_grad_(False)
    shift = torch.tensor(SHIFT, dtype=torch.float64).view(1, 2, 1, 1).expand(4, 2, 16, 16)
    with torch.no_grad():
        target = deform_conv2d(image, shift, layer.weight, layer.bias)
    measured["deformable"] = _fit(layer, layer.offset_conv.parameters(), image, target, steps)
    learned = layer.offset_conv.bias.detach() - torch.tensor(SHIFT, dtype=torch.float64)
    measured["offset error"] = learned.abs().max().item()
    regular = nn.Conv2d(3, 4, 1).double()
    measured["regular"] = _fit(regular, regular.parameters(), image, target, steps)
    measured["ratio"] = measured["regular"] / measured["deformable"]
    return measured


@register(CATALOG_ID)
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Regular conv at zero offsets, shifted conv at integer ones, a fractional shift learned."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0,), "full": range(5)})
    steps = run.pick(fast=100, full=300)
    runs = [_one_seed(seed, steps) for seed in run.seeds]

    def row(name: str, key: str, unit: str = "") -> Measured:
        return Measured.over_seeds(name, unit, [r[key] for r in runs], run.seeds)

    return run.result(
        claim=CLAIM,
        measured=[
            row("zero offsets vs conv2d, relative error", "zero"),
            row("integer offset vs shifted conv2d, relative error", "integer"),
            row("final / initial MSE, deformable (offsets only)", "deformable"),
            row("final / initial MSE, regular 1x1 conv (control)", "regular"),
            row("control / deformable final MSE", "ratio"),
            row("learned offset error", "offset error", "px"),
        ],
        thresholds=[
            Threshold(
                "zero offsets vs conv2d, relative error",
                "<=",
                1e-12,
                "Δp = 0 is the regular convolution (float64 rounding)",
            ),
            Threshold(
                "integer offset vs shifted conv2d, relative error",
                "<=",
                1e-12,
                "integer offsets sample grid points exactly",
            ),
            Threshold(
                "final / initial MSE, deformable (offsets only)",
                "<=",
                1e-3,
                "the offsets learn the geometric transformation",
            ),
            Threshold(
                "control / deformable final MSE",
                ">=",
                100.0,
                "a regular conv of the same kernel only approximates a sub-pixel shift",
            ),
            Threshold("learned offset error", "<=", 0.02, "recovers (0.6, -0.3) px"),
        ],
        config={
            "shift": SHIFT,
            "steps": steps,
            "optimizer": "Adam",
            "lr": 0.02,
            "image": [16, 16],
            "dtype": "float64",
        },
    )
