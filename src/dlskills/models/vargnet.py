"""VarGNet-small (1907.05653): variable group convolution blocks for small images.

Stem 3×3 conv-BN-PReLU (``width`` channels, stride 1 since the inputs are tiny) → two stages of
[``VarGDownBlock`` (C → 2C, stride 2), ``blocks`` × ``VarGNormalBlock``] → 1×1 conv-BN-PReLU to
8·width → global average pool → linear. Every grouped conv has ``channels_per_group`` (S = 8 in
the paper) input channels per group, so ``width`` must be a multiple of S.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dlskills.models._registry import check_positive_int, check_shape, register_model
from dlskills.nn.conv.vargroup import VarGDownBlock, VarGNormalBlock


@register_model("vargnet_small", catalog_id="1907.05653", family="cnn", input="image")
class VarGNetSmall(nn.Module):
    """Two-stage VarGNet; ``input_shape`` = (C, H, W) (any H, W work)."""

    def __init__(
        self,
        *,
        input_shape: Sequence[int] = (1, 8, 8),
        num_classes: int = 10,
        width: int = 16,
        blocks: int = 1,
        channels_per_group: int = 8,
    ) -> None:
        super().__init__()
        input_shape = check_shape(input_shape, 3, "an image (C, H, W)")
        for arg, value in (("num_classes", num_classes), ("width", width), ("blocks", blocks)):
            check_positive_int(arg, value)
        if width % channels_per_group:
            raise ValueError(
                f"width ({width}) must be a multiple of channels_per_group ({channels_per_group})"
            )
        self.stem = nn.Sequential(
            nn.Conv2d(input_shape[0], width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.PReLU(width),
        )
        stages: list[nn.Module] = []
        channels = width
        for _ in range(2):
            stages.append(VarGDownBlock(channels, channels_per_group))
            channels *= 2
            stages.extend(VarGNormalBlock(channels, channels_per_group) for _ in range(blocks))
        self.stages = nn.Sequential(*stages)
        head = 8 * width
        self.head = nn.Sequential(
            nn.Conv2d(channels, head, 1, bias=False), nn.BatchNorm2d(head), nn.PReLU(head)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(head, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.pool(self.head(self.stages(self.stem(x)))).flatten(1)
        return self.classifier(features)
