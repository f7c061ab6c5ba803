"""Random-shift down-sampling (catalog ijcai17-random-shift: Zhao, Wang & Zhang, "Random
Shifting for CNN: a Solution to Reduce Information Loss in Down-Sampling Layers", IJCAI 2017).

A stride-s pooling or conv only ever reads the same phase of its input grid. At train time the
feature map is shifted by a random integer offset (δy, δx) ∈ {−m, …, m}² before the strided op,
the vacated border filled with zeros (the paper's added "offset" rows/columns), so each step the
kernel centres fall on a different phase and the down-sampling sees all of the input over
training:

    shift(x)[…, i, j] = x[…, i − δy, j − δx]   (0 outside the map)

At eval the shift is the identity, so inference is deterministic and costs nothing extra.

With ``subpixel=True`` the offsets are real, δ ~ U(−m, m) per axis, and the map is resampled
bilinearly between the four integer shifts around δ (zero outside the map), so the
down-sampling grid falls between the input's pixels too:

    shift_δ(x) = Σ_{a,b ∈ {0,1}} w_a(δy) w_b(δx) · shift_(⌊δy⌋+a, ⌊δx⌋+b)(x),
    w_0(δ) = 1 − (δ − ⌊δ⌋),  w_1(δ) = δ − ⌊δ⌋

The paper draws one shift per training iteration (its Fig. 1 shows m = 1 with the map moved to
the upper-left, lower-right or kept). We draw δy and δx independently (a superset of those
three), one shift per batch by default and per sample with ``per_sample=True``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dlskills.nn._registry import register_layer


def subpixel_shift2d(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Shift each sample of x (B, C, H, W) by real ``shifts`` (B, 2) or (2,) = (δy, δx),
    bilinearly between the integer shifts around them, zero-filled (see the module doc)."""
    shifts = torch.as_tensor(shifts, dtype=x.dtype, device=x.device)
    if shifts.shape == (2,):
        shifts = shifts.expand(x.shape[0], 2)
    if shifts.shape != (x.shape[0], 2):
        raise ValueError(f"shifts must have shape (2,) or (B, 2), got {tuple(shifts.shape)}")
    base = shifts.floor()
    frac = (shifts - base).view(-1, 2, 1, 1, 1)
    out = torch.zeros_like(x)
    for a in (0, 1):
        for b in (0, 1):
            weight = (frac[:, 0] if a else 1 - frac[:, 0]) * (frac[:, 1] if b else 1 - frac[:, 1])
            out = out + weight * shift2d(x, base.long() + torch.tensor([a, b], device=x.device))
    return out


def shift2d(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Shift each sample of x (B, C, H, W) by integer ``shifts`` (B, 2) = (δy, δx), zero-filled.

    A (2,) tensor applies one shift to the whole batch.
    """
    if x.dim() != 4:
        raise ValueError(f"x must be (B, C, H, W), got shape {tuple(x.shape)}")
    shifts = torch.as_tensor(shifts, device=x.device).long()
    if shifts.shape == (2,):
        shifts = shifts.expand(x.shape[0], 2)
    if shifts.shape != (x.shape[0], 2):
        raise ValueError(f"shifts must have shape (2,) or (B, 2), got {tuple(shifts.shape)}")
    margin = int(shifts.abs().max().item()) if shifts.numel() else 0
    if margin == 0:
        return x
    height, width = x.shape[-2:]
    padded = F.pad(x, (margin, margin, margin, margin))
    rows = torch.arange(height, device=x.device) + margin - shifts[:, :1]  # (B, H)
    cols = torch.arange(width, device=x.device) + margin - shifts[:, 1:]  # (B, W)
    batch = torch.arange(x.shape[0], device=x.device)[:, None, None]
    # advanced indexing puts the (B, H, W) index dims first: (B, H, W, C)
    gathered = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return gathered.permute(0, 3, 1, 2)


@register_layer(
    "random_shift2d", catalog_id="ijcai17-random-shift", example=(dict(max_shift=1), (2, 5, 5))
)
class RandomShift2d(nn.Module):
    """Random shift at train time — integer in {−max_shift, …, max_shift}², or real in
    [−max_shift, max_shift]² with ``subpixel`` — and the identity at eval."""

    def __init__(self, max_shift: int = 1, per_sample: bool = False, subpixel: bool = False):
        super().__init__()
        if not isinstance(max_shift, int) or max_shift < 0:
            raise ValueError(f"max_shift must be a non-negative int, got {max_shift!r}")
        self.max_shift, self.per_sample, self.subpixel = max_shift, per_sample, bool(subpixel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.max_shift == 0:
            return x
        count = x.shape[0] if self.per_sample else 1
        if self.subpixel:
            shifts = (2 * torch.rand(count, 2, device=x.device) - 1) * self.max_shift
            return subpixel_shift2d(x, shifts if self.per_sample else shifts[0])
        shifts = torch.randint(-self.max_shift, self.max_shift + 1, (count, 2), device=x.device)
        return shift2d(x, shifts if self.per_sample else shifts[0])

    def extra_repr(self) -> str:
        return f"max_shift={self.max_shift}, per_sample={self.per_sample}, subpixel={self.subpixel}"


class RandomShiftDownsample(nn.Sequential):
    """``RandomShift2d`` then a down-sampling module (strided conv or pool)."""

    def __init__(
        self,
        downsample: nn.Module,
        max_shift: int = 1,
        per_sample: bool = False,
        subpixel: bool = False,
    ):
        if not isinstance(downsample, nn.Module):
            raise TypeError(f"downsample must be an nn.Module, got {type(downsample).__name__}")
        super().__init__(RandomShift2d(max_shift, per_sample, subpixel), downsample)


__all__ = ["RandomShift2d", "RandomShiftDownsample", "shift2d", "subpixel_shift2d"]
