"""Variable group convolution and the VarGNet blocks (1907.05653, Zhang et al., "VarGNet:
Variable Group Convolutional Neural Network for Efficient Embedded Computing", 2019).

Variable group conv: instead of fixing the number of groups g, fix the channels per group S
(g = C_in / S varies with the layer's width). For output H×W, kernel k:

    params = k²·S·C_out        MACs = k²·S·C_out·H·W

so the ratio MACs / params (= H·W) and the per-group work k²·S are the same in every layer,
which is the paper's argument for an even computational intensity on embedded hardware
(depthwise conv is the case S = 1, a regular conv S = C_in).

Separable unit (the paper's "variable group separable conv", as in the authors' VarGFaceNet
code): 3×3 variable group conv C_in → factor·C_in (stride s) → BN → PReLU → 1×1 conv
factor·C_in → C_out → BN [→ PReLU]; factor = 2.

Normal block (stride 1, C → C):
    y = PReLU( sep(PReLU(sep(x)), last activation off) + x )
Down-sampling block (C → 2C, stride 2):
    b = PReLU( sep₁(x; C→2C, s=2) + sep₂(x; C→2C, s=2) )
    y = PReLU( sep₃(b; 2C→2C, act off) + shortcut(x) ),  shortcut = sep(x; C→2C, s=2, act off)
"""

from __future__ import annotations

import torch
from torch import nn

from dlskills.nn._registry import register_layer


@register_layer(
    "var_group_conv2d",
    catalog_id="1907.05653",
    example=(
        dict(in_channels=8, out_channels=8, kernel_size=3, channels_per_group=4, padding=1),
        (8, 4, 4),
    ),
)
class VarGroupConv2d(nn.Conv2d):
    """``nn.Conv2d`` with a fixed number of input channels per group (groups = C_in / S)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        channels_per_group: int = 8,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str | None = None,
        dilation: int | tuple[int, int] = 1,
        bias: bool = False,
    ) -> None:
        if not isinstance(channels_per_group, int) or channels_per_group <= 0:
            raise ValueError(
                f"channels_per_group must be a positive int, got {channels_per_group!r}"
            )
        if in_channels % channels_per_group:
            raise ValueError(
                f"in_channels ({in_channels}) must be divisible by channels_per_group "
                f"({channels_per_group})"
            )
        groups = in_channels // channels_per_group
        if out_channels % groups:
            raise ValueError(
                f"out_channels ({out_channels}) must be divisible by the group count ({groups})"
            )
        if padding is None:
            size = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
            padding = dilation * (size - 1) // 2 if isinstance(dilation, int) else size // 2
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.channels_per_group = channels_per_group


class VarGSeparableConv2d(nn.Sequential):
    """3×3 variable group conv (×``factor`` channels) → BN → PReLU → 1×1 conv → BN [→ PReLU]."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        channels_per_group: int = 8,
        stride: int = 1,
        factor: int = 2,
        activation: bool = True,
    ) -> None:
        if not isinstance(factor, int) or factor <= 0:
            raise ValueError(f"factor must be a positive int, got {factor!r}")
        expanded = factor * in_channels
        layers: list[nn.Module] = [
            VarGroupConv2d(in_channels, expanded, 3, channels_per_group, stride=stride),
            nn.BatchNorm2d(expanded),
            nn.PReLU(expanded),
            nn.Conv2d(expanded, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        if activation:
            layers.append(nn.PReLU(out_channels))
        super().__init__(*layers)


@register_layer(
    "varg_normal_block",
    catalog_id="1907.05653",
    example=(dict(channels=4, channels_per_group=2), (4, 3, 3)),
)
class VarGNormalBlock(nn.Module):
    """Two separable units with an identity shortcut (stride 1, C → C)."""

    def __init__(self, channels: int, channels_per_group: int = 8, factor: int = 2) -> None:
        super().__init__()
        self.body = nn.Sequential(
            VarGSeparableConv2d(channels, channels, channels_per_group, factor=factor),
            VarGSeparableConv2d(
                channels, channels, channels_per_group, factor=factor, activation=False
            ),
        )
        self.activation = nn.PReLU(channels)

    @property
    def residual_last(self) -> nn.Module:
        """The branch's last BatchNorm (for zero-init of residual branches)."""
        return self.body[-1][-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.body(x) + x)


class VarGDownBlock(nn.Module):
    """Two strided separable branches summed, one more unit, plus a strided separable
    shortcut (C → 2C, stride 2)."""

    def __init__(self, channels: int, channels_per_group: int = 8, factor: int = 2) -> None:
        super().__init__()
        doubled = 2 * channels

        def unit(c_in: int, stride: int, activation: bool) -> VarGSeparableConv2d:
            return VarGSeparableConv2d(
                c_in, doubled, channels_per_group, stride, factor, activation=activation
            )

        self.branch1 = unit(channels, 2, True)
        self.branch2 = unit(channels, 2, True)
        self.merge_activation = nn.PReLU(doubled)
        self.fuse = unit(doubled, 1, False)
        self.shortcut = unit(channels, 2, False)
        self.activation = nn.PReLU(doubled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        merged = self.merge_activation(self.branch1(x) + self.branch2(x))
        return self.activation(self.fuse(merged) + self.shortcut(x))


__all__ = ["VarGDownBlock", "VarGNormalBlock", "VarGSeparableConv2d", "VarGroupConv2d"]
