"""ResNet for small images (He, Zhang, Ren & Sun 2016, §4.2 "CIFAR-10"; catalog 1904.05526's
CNN family, with norm-layers and 1803.01719's zero-init residual as options).

Depth 6n + 2: a 3×3 stem conv (width w) → three stages of n ``BasicBlock``s with widths
w, 2w, 4w (stride 2 at the first block of stages 2 and 3) → global average pool → Linear.

    BasicBlock:  y = act(norm₂(conv₂(act(norm₁(conv₁(x))))) + shortcut(x))

The shortcut is the identity, or — where the block halves the map and widens it — the paper's
option A: subsample by the stride and zero-pad the new channels (no parameters). Convs use He
init (fan_out, as torchvision). ``zero_init_residual`` zeroes each block's last norm γ (or its
last conv without a norm) so every block starts as the identity (dlskills.init's rule).
``norm`` is any name of dlskills.nn.normalization (``"none"`` for a plain deep ResNet,
``"weight"`` for weight norm).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dlskills.init.residual import zero_init_residual as zero_residual_branches
from dlskills.models._registry import (
    SequentialModel,
    check_positive_int,
    check_shape,
    finish,
    register_model,
    uses_bias,
)
from dlskills.nn.activations import get_activation
from dlskills.nn.normalization import is_weight_norm, make_norm, normalizes_outputs


class BasicBlock(nn.Module):
    """Two 3×3 conv → norm layers on the branch, a parameter-free shortcut, activation after the
    sum."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, *, activation: str, norm: str
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        if out_channels < in_channels:
            raise ValueError("out_channels must be >= in_channels for the zero-padding shortcut")
        self.stride, self.extra_channels = stride, out_channels - in_channels
        bias = uses_bias(norm)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=bias)
        self.norm1 = make_norm(norm, out_channels, spatial=True)
        self.act1 = get_activation(activation)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=bias)
        self.norm2 = make_norm(norm, out_channels, spatial=True)
        self.act2 = get_activation(activation)
        self.residual_last = self.norm2 if normalizes_outputs(norm) else self.conv2

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra_channels:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.act1(self.norm1(self.conv1(x)))
        branch = self.norm2(self.conv2(branch))
        return self.act2(branch + self.shortcut(x))


@register_model("resnet", catalog_id="1904.05526", family="resnet", input="image")
class ResNet(SequentialModel):
    """CIFAR-style ResNet-(6n+2): stem → 3 stages of BasicBlocks → global pool → Linear."""

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        num_classes: int,
        depth: int = 20,
        width: int = 16,
        activation: str = "relu",
        norm: str = "batch",
        zero_init_residual: bool = False,
    ) -> None:
        shape = check_shape(input_shape, 3, "an image (C, H, W)")
        check_positive_int("num_classes", num_classes)
        check_positive_int("width", width)
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(
                f"depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, ...), got {depth!r}"
            )
        if zero_init_residual and is_weight_norm(norm):
            raise ValueError("zero_init_residual cannot be combined with norm='weight' (‖v‖ = 0)")
        blocks_per_stage = (depth - 2) // 6
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            stem=nn.Conv2d(shape[0], width, 3, padding=1, bias=uses_bias(norm)),
            stem_norm=make_norm(norm, width, spatial=True),
            stem_act=get_activation(activation),
        )
        channels = width
        for stage in range(3):
            blocks = []
            for index in range(blocks_per_stage):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(
                    BasicBlock(channels, width * 2**stage, stride, activation=activation, norm=norm)
                )
                channels = width * 2**stage
            layers[f"stage{stage + 1}"] = nn.Sequential(*blocks)
        layers["pool"] = nn.AdaptiveAvgPool2d(1)
        layers["flatten"] = nn.Flatten()
        layers["classifier"] = nn.Linear(channels, num_classes)
        super().__init__(layers)
        self.input_shape, self.num_classes, self.depth = shape, num_classes, depth
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            zero_residual_branches(self)
        finish(self, norm)
