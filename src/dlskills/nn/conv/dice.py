"""DiCE unit: dimension-wise convolution + dimension-wise fusion (1906.03516, Mehta et al.,
"DiCENet: Dimension-wise Convolutions for Efficient Networks", TPAMI 2020).

For X ∈ R^{C×H×W} (kernel k, default 3):

DimConv   Y_D = depth-wise k×k conv over (H, W) for each channel      (C kernels)
          Y_H = height-wise k×k conv over (C, W) for each row h         (H kernels)
          Y_W = width-wise  k×k conv over (H, C) for each column w      (W kernels)
          params k²(C + H + W), MACs 3·k²·C·H·W
DimFuse   Z = PReLU(BN([Y_D, Y_H, Y_W]))  (3C channels), channel shuffle in 3 groups so the three
          responses of channel c are adjacent, then local fusion: a 1×1 conv with groups = C
          (3 → 1 per channel) + BN + PReLU           params 3C, MACs 3·C·H·W
          global fusion: P = PReLU(BN(conv_k×k(Z, groups = g))), g = gcd(C, C_out)
                                                     params k²·C·C_out/g, MACs H·W·k²·C·C_out/g
          gate  s = σ(W₂ ReLU(W₁ avgpool(Z)))        params C·C/r + (C/r)·C_out (r = 4)
          out = P ⊙ s
(counts exclude BN/PReLU parameters, whose number is 2·3C + 3C + 2C + C + 2C_out + C_out.)

This follows the authors' ``DICE`` module (EdgeNets, nn_layers/dice.py): height-/width-wise
convs are the input transposed so that H (or W) becomes the channel axis, then a depthwise conv.

Deviation (REFERENCES.md): the authors' layer holds one kernel per row/column of a size fixed at
construction and resizes the *activations* (bilinear up / average-pool down) when the input size
differs. Ours resamples the *kernel bank* instead: with ``spatial_size=(H₀, W₀)`` it holds H₀
height kernels and W₀ width kernels (the paper's parameter count) and, for an input of another
size, linearly interpolates the bank along the position axis (align_corners) to H (or W)
kernels, so the unit runs at any input size and reproduces the authors' layer exactly at
(H₀, W₀). With ``spatial_size=None`` one kernel per axis is shared by all positions
(params k²(C + 2)), which is translation-equivariant along H and W.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dlskills.nn._registry import register_layer


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: (g, C/g) channel layout → (C/g, g)."""
    batch, channels, *spatial = x.shape
    if channels % groups:
        raise ValueError(f"channels ({channels}) must be divisible by groups ({groups})")
    grouped = x.reshape(batch, groups, channels // groups, *spatial)
    return grouped.transpose(1, 2).reshape(batch, channels, *spatial)


def _resample_bank(bank: torch.Tensor, positions: int) -> torch.Tensor:
    """Kernel bank (P, 1, k, k) → (positions, 1, k, k) by linear interpolation over P."""
    stored = bank.shape[0]
    if stored == positions:
        return bank
    if stored == 1:
        return bank.expand(positions, *bank.shape[1:])
    flat = bank.reshape(stored, -1).t().unsqueeze(0)  # (1, k², P)
    resized = F.interpolate(flat, size=positions, mode="linear", align_corners=True)
    return resized[0].t().reshape(positions, *bank.shape[1:])


def _along_axis(x: torch.Tensor, bank: torch.Tensor, axis: int, padding: int) -> torch.Tensor:
    """Depthwise conv with one kernel per position of ``axis`` (2 = H, 3 = W) of (B, C, H, W)."""
    moved = x.transpose(1, axis)
    weight = _resample_bank(bank, moved.shape[1])
    return F.conv2d(moved, weight, padding=padding, groups=moved.shape[1]).transpose(1, axis)


class DimensionWiseConv2d(nn.Module):
    """DimConv: depth-, height- and width-wise k×k convs, concatenated to 3C channels."""

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        spatial_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(channels, int) or channels <= 0:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        if not isinstance(kernel_size, int) or kernel_size <= 0 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size!r}")
        if spatial_size is None:
            height, width = 1, 1
        else:
            height, width = spatial_size
            if height <= 0 or width <= 0:
                raise ValueError(f"spatial_size must be positive, got {spatial_size!r}")
        self.channels, self.kernel_size, self.spatial_size = channels, kernel_size, spatial_size
        self.depth_conv = nn.Conv2d(
            channels, channels, kernel_size, padding=kernel_size // 2, groups=channels, bias=False
        )
        self.height_weight = nn.Parameter(torch.empty(height, 1, kernel_size, kernel_size))
        self.width_weight = nn.Parameter(torch.empty(width, 1, kernel_size, kernel_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.depth_conv.reset_parameters()
        for bank in (self.height_weight, self.width_weight):
            nn.init.kaiming_uniform_(bank, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.kernel_size // 2
        return torch.cat(
            (
                self.depth_conv(x),
                _along_axis(x, self.height_weight, 2, pad),
                _along_axis(x, self.width_weight, 3, pad),
            ),
            dim=1,
        )

    def functional_macs(self, input: torch.Tensor, output: torch.Tensor) -> int:
        """MACs of the height- and width-wise convs per sample, 2·k²·C·H·W (the depth-wise one
        is an nn.Conv2d, counted by ``dlskills.nn._counting`` itself)."""
        return 2 * self.kernel_size**2 * input[0].numel()

    def extra_repr(self) -> str:
        return f"{self.channels}, kernel_size={self.kernel_size}, spatial_size={self.spatial_size}"


def conv_bn_prelu(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    """conv (no bias, "same" padding) → BatchNorm → PReLU, the authors' CBR unit."""
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
        nn.PReLU(out_channels),
    )


@register_layer(
    "dice", catalog_id="1906.03516", example=(dict(in_channels=6, out_channels=6), (6, 5, 5))
)
class DiCE(nn.Module):
    """The DiCE unit: DimConv then DimFuse (see module doc); stride 1, C_in → C_out."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        spatial_size: tuple[int, int] | None = None,
        reduction: int = 4,
    ) -> None:
        super().__init__()
        if not isinstance(out_channels, int) or out_channels <= 0:
            raise ValueError(f"out_channels must be a positive int, got {out_channels!r}")
        if not isinstance(reduction, int) or not 1 <= reduction <= in_channels:
            raise ValueError(f"reduction must be an int in [1, in_channels], got {reduction!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.dim_conv = DimensionWiseConv2d(in_channels, kernel_size, spatial_size)
        self.dim_norm_act = nn.Sequential(
            nn.BatchNorm2d(3 * in_channels), nn.PReLU(3 * in_channels)
        )
        self.local_fusion = conv_bn_prelu(3 * in_channels, in_channels, 1, groups=in_channels)
        self.projection_groups = math.gcd(in_channels, out_channels)
        self.projection = conv_bn_prelu(
            in_channels, out_channels, kernel_size, groups=self.projection_groups
        )
        squeezed = in_channels // reduction
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, squeezed, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(squeezed, out_channels, 1, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused = self.dim_norm_act(self.dim_conv(x))
        fused = self.local_fusion(channel_shuffle(fused, 3))
        return self.projection(fused) * self.gate(fused)


class StridedDiCE(nn.Module):
    """The authors' down-sampling unit: C → 2C at half resolution.

    left:  depthwise k×k stride-2 conv-BN-PReLU → 1×1 conv-BN-PReLU
    right: 3×3 stride-2 average pool → DiCE(C, C) → 1×1 conv-BN-PReLU
    out:   channel_shuffle(concat(left, right), 2)
    ``spatial_size`` is the size *after* down-sampling (that is where the DiCE unit runs).
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        spatial_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.left = nn.Sequential(
            conv_bn_prelu(channels, channels, kernel_size, stride=2, groups=channels),
            conv_bn_prelu(channels, channels, 1),
        )
        self.right = nn.Sequential(
            nn.AvgPool2d(3, stride=2, padding=1),
            DiCE(channels, channels, kernel_size, spatial_size),
            conv_bn_prelu(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(torch.cat((self.left(x), self.right(x)), dim=1), 2)


__all__ = ["DiCE", "DimensionWiseConv2d", "StridedDiCE", "channel_shuffle", "conv_bn_prelu"]
