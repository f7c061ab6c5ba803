"""Deformable convolution (catalog 1703.06211: Dai et al., "Deformable Convolutional Networks",
ICCV 2017), with the modulated variant of DCNv2 (Zhu et al. 2019, arXiv 1811.11168).

Rule. A regular convolution samples the input on the fixed grid R = {p_k} of kernel taps:
``y(p0) = Σ_k w_k · x(p0 + p_k)``. A deformable convolution adds a learned fractional offset per
output position and tap, and DCNv2 a modulation scalar m_k ∈ (0, 1)::

    y(p0) = Σ_k w_k · m_k(p0) · x(p0 + p_k + Δp_k(p0)),   x(p) = Σ_q G(q, p) · x(q)

where G(q, p) = max(0, 1 − |q_y − p_y|) · max(0, 1 − |q_x − p_x|) is bilinear interpolation over
the four integer neighbours q of p. The offsets Δp (and the mask m, through a sigmoid) are
predicted from the same input by a regular convolution with the same kernel size, stride,
padding and dilation, whose weights and bias start at zero, so at initialisation Δp = 0: the
module is exactly a regular convolution (modulated: m = sigmoid(0) = 0.5, i.e. a regular
convolution with half the weight, as DCNv2 initialises it).

Offsets come in ``offset_groups`` groups; each group of ``in_channels / offset_groups`` input
channels has its own (Δy, Δx) per tap (the paper's "deformable group").

Boundary rule (torchvision's; mmcv's backward differs at edge cases): a sample at (y, x)
contributes only its corners that lie inside the image, and nothing at all when y ≤ −1,
y ≥ H, x ≤ −1 or x ≥ W. The functional form is :func:`dlskills.nn.functional.deform_conv2d`.

Deviations: the authors train the offset layers with a learning-rate multiplier (0.1 in some
configurations); here the offset convolution is an ordinary submodule (``offset_conv``) that a
user can put in its own parameter group.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dlskills.nn._registry import register_layer
from dlskills.nn.functional import _pair, deform_conv2d

__all__ = ["DeformConv2d"]


@register_layer(
    "deform_conv2d",
    catalog_id="1703.06211",
    example=(
        dict(in_channels=3, out_channels=4, kernel_size=3, padding=1, modulated=True),
        (3, 5, 5),
    ),
)
class DeformConv2d(nn.Module):
    """A 2-D deformable convolution whose offsets (and DCNv2 mask) are learned from its input.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size, stride, padding, dilation: as ``nn.Conv2d`` (int or pair).
        groups: weight groups, as ``nn.Conv2d``.
        offset_groups: groups of input channels that share one offset field.
        bias: learn an additive bias.
        modulated: predict a per-sample modulation mask too (DCNv2).

    Shapes: input ``[B, in_channels, H, W]`` → output ``[B, out_channels, H_out, W_out]`` with
    the ``nn.Conv2d`` output size.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        offset_groups: int = 1,
        bias: bool = True,
        modulated: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("groups", groups),
            ("offset_groups", offset_groups),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels ({in_channels}) and out_channels ({out_channels}) must be "
                f"divisible by groups ({groups})"
            )
        if in_channels % offset_groups:
            raise ValueError(
                f"in_channels ({in_channels}) must be divisible by offset_groups ({offset_groups})"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = _pair(stride, "stride", 1)
        self.padding = _pair(padding, "padding", 0)
        self.dilation = _pair(dilation, "dilation", 1)
        self.groups = groups
        self.offset_groups = offset_groups
        self.modulated = bool(modulated)

        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels // groups, *self.kernel_size)
        )
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        taps = self.kernel_size[0] * self.kernel_size[1]
        fields = 3 if self.modulated else 2  # (Δy, Δx) per tap, plus the mask logit for DCNv2
        self.offset_conv = nn.Conv2d(
            in_channels,
            fields * offset_groups * taps,
            self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            bias=True,
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The main weight as ``nn.Conv2d``; the offset/mask predictor at zero."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)
        nn.init.zeros_(self.offset_conv.weight)
        nn.init.zeros_(self.offset_conv.bias)

    def offsets_and_mask(self, input: Tensor) -> tuple[Tensor, Tensor | None]:
        """The predicted offset field ``[B, 2·G·kh·kw, H_out, W_out]`` and mask (or None)."""
        predicted = self.offset_conv(input)
        if not self.modulated:
            return predicted, None
        split = 2 * self.offset_groups * self.kernel_size[0] * self.kernel_size[1]
        return predicted[:, :split], torch.sigmoid(predicted[:, split:])

    def forward(self, input: Tensor) -> Tensor:
        offset, mask = self.offsets_and_mask(input)
        return deform_conv2d(
            input,
            offset,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            mask=mask,
        )

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}"
        )
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.offset_groups != 1:
            text += f", offset_groups={self.offset_groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.modulated:
            text += ", modulated=True"
        return text
