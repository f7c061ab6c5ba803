"""Fixup ResNet (1901.09321): the CIFAR ResNet of depth 6n + 2 with no normalisation layer,
trained thanks to Fixup init (see ``dlskills.nn.fixup`` for the rule).

Layout (authors' CIFAR model): 3×3 stem conv → scalar bias → ReLU → three stages of n
``FixupBasicBlock`` (widths w, 2w, 4w; stride 2 at the start of stages 2 and 3) → global average
pool → scalar bias → linear classifier. L = 3n residual branches, so the first conv of every
branch is scaled by L^(−1/2) and the classifier is zero-initialised.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dlskills.models._registry import check_positive_int, check_shape, register_model
from dlskills.nn.fixup import FixupBasicBlock, ScalarBias, fixup_initialize, he_fan_out_normal_


@register_model("fixup_resnet", catalog_id="1901.09321", family="resnet", input="image")
class FixupResNet(nn.Module):
    """ResNet-(6n+2) with Fixup and no normalisation; ``input_shape`` = (C, H, W)."""

    def __init__(
        self,
        *,
        input_shape: Sequence[int] = (3, 32, 32),
        num_classes: int = 10,
        depth: int = 32,
        width: int = 16,
    ) -> None:
        super().__init__()
        in_channels = check_shape(input_shape, 3, "an image (C, H, W)")[0]
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(
                f"depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, ...), got {depth!r}"
            )
        check_positive_int("num_classes", num_classes)
        check_positive_int("width", width)
        blocks_per_stage = (depth - 2) // 6
        self.depth = depth
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.stem_bias = ScalarBias()
        blocks: list[nn.Module] = []
        channels = width
        for stage in range(3):
            stage_width = width * 2**stage
            for index in range(blocks_per_stage):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(FixupBasicBlock(channels, stage_width, stride))
                channels = stage_width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head_bias = ScalarBias()
        self.classifier = nn.Linear(channels, num_classes)
        self.reset_parameters()

    @property
    def num_branches(self) -> int:
        return len(self.blocks)

    def reset_parameters(self) -> None:
        he_fan_out_normal_(self.stem.weight)
        nn.init.zeros_(self.stem_bias.bias)
        nn.init.zeros_(self.head_bias.bias)
        fixup_initialize(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem_bias(self.stem(x)))
        x = self.pool(self.blocks(x)).flatten(1)
        return self.classifier(self.head_bias(x))
