"""Random-shift down-sampling (catalog ijcai17-random-shift: Zhao, Wang & Zhang, "Random
Shifting for CNN: a Solution to Reduce Information Loss in Down-Sampling Layers", IJCAI 2017).

A stride-s pooling or conv only ever reads the same phase of its input grid. At train time the
feature map is shifted by a random integer offset (δy, δx) ∈ {−m, …, m}² before the strided op,
the vacated border filled with zeros (the paper's added "offset" rows/columns), so each step the
kernel centres fall on a different phase and the down-sampling sees all of the input over
training:

    shift(x)[…, i, j] = x[…, i − δy, j − δx]   (0 outside the map)

At eval the shift is the identity, so inference is deterministic and costs nothing extra.

The paper draws one shift per training iteration (its Fig. 1 shows m = 1 with the map moved to
the upper-left, lower-right or kept). We draw δy and δx independently (a superset of those
three), one shift per batch by default and per sample with ``per_sample=True``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dlskills.nn._registry import register_layer


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
    """Random integer shift in {−max_shift, …, max_shift}² at train time; identity at eval."""

    def __init__(self, max_shift: int = 1, per_sample: bool = False) -> None:
        super().__init__()
        if not isinstance(max_shift, int) or max_shift < 0:
            raise ValueError(f"max_shift must be a non-negative int, got {max_shift!r}")
        self.max_shift, self.per_sample = max_shift, per_sample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.max_shift == 0:
            return x
        count = x.shape[0] if self.per_sample else 1
        shifts = torch.randint(-self.max_shift, self.max_shift + 1, (count, 2), device=x.device)
        return shift2d(x, shifts if self.per_sample else shifts[0])

    def extra_repr(self) -> str:
        return f"max_shift={self.max_shift}, per_sample={self.per_sample}"


class RandomShiftDownsample(nn.Sequential):
    """``RandomShift2d`` then a down-sampling module (strided conv or pool)."""

    def __init__(self, downsample: nn.Module, max_shift: int = 1, per_sample: bool = False):
        if not isinstance(downsample, nn.Module):
            raise TypeError(f"downsample must be an nn.Module, got {type(downsample).__name__}")
        super().__init__(RandomShift2d(max_shift, per_sample), downsample)


__all__ = ["RandomShift2d", "RandomShiftDownsample", "shift2d"]
