"""DiCENet-small (1906.03516): the authors' DiCENet layout scaled down for small inputs.

Authors' ImageNet model (EdgeNets, model/classification/dicenet.py): stem conv → max pool →
three levels of [StridedDiCE (C → 2C, half resolution), then ShuffleDiCE blocks] → global pool
→ grouped 1×1 conv (4 groups) → dropout → 1×1 classifier. A ShuffleDiCE block splits the
channels in two halves, leaves the left half untouched, maps the right half with 1×1
conv-BN-PReLU then a DiCE unit, concatenates and shuffles in 2 groups.

Small version (for 8×8 digits up to 32×32 images): 3×3 stem conv-BN-PReLU at stride 1 (no max
pool: the inputs are already tiny) with ``width`` channels, two levels (StridedDiCE doubles the
channels, then ``blocks`` ShuffleDiCE blocks), head width 8·width. Every DiCE unit is built with
the spatial size it sees for ``input_shape`` (the paper's parameter count) and still runs at
other sizes (see ``dlskills.nn.conv.dice``). Init as the authors: He fan-out normal convs, BN
γ = 1, β = 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dlskills.models._registry import check_dropout, check_positive_int, check_shape, register_model
from dlskills.nn.conv.dice import DiCE, StridedDiCE, channel_shuffle, conv_bn_prelu


class ShuffleDiCEBlock(nn.Module):
    """Channel split: left half kept, right half → 1×1 CBR → DiCE; concat; shuffle in 2."""

    def __init__(self, channels: int, spatial_size: tuple[int, int] | None = None) -> None:
        super().__init__()
        if not isinstance(channels, int) or channels < 2 or channels % 2:
            raise ValueError(f"channels must be an even int >= 2, got {channels!r}")
        self.split = channels // 2
        right = channels - self.split
        self.right = nn.Sequential(
            conv_bn_prelu(right, right, 1), DiCE(right, right, spatial_size=spatial_size)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right = x[:, : self.split], x[:, self.split :]
        return channel_shuffle(torch.cat((left, self.right(right)), dim=1), 2)


@register_model("dicenet_small", catalog_id="1906.03516", family="cnn", input="image")
class DiCENetSmall(nn.Module):
    """Two-level DiCENet for small images; ``input_shape`` = (C, H, W)."""

    def __init__(
        self,
        *,
        input_shape: Sequence[int] = (1, 8, 8),
        num_classes: int = 10,
        width: int = 16,
        blocks: int = 1,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        input_shape = check_shape(input_shape, 3, "an image (C, H, W)")
        for arg, value in (("num_classes", num_classes), ("width", width), ("blocks", blocks)):
            check_positive_int(arg, value)
        dropout = check_dropout(dropout)
        in_channels, height, image_width = input_shape
        self.stem = conv_bn_prelu(in_channels, width, 3)
        levels: list[nn.Module] = []
        channels = width
        for _ in range(2):
            # stride-2 k=3 pad-1 conv and pool both give ceil(n / 2)
            height, image_width = (height + 1) // 2, (image_width + 1) // 2
            size = (height, image_width)
            levels.append(StridedDiCE(channels, spatial_size=size))
            channels *= 2
            levels.extend(ShuffleDiCEBlock(channels, size) for _ in range(blocks))
        self.levels = nn.Sequential(*levels)
        head = 8 * width
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Conv2d(channels, head, 1, groups=4 if channels % 4 == 0 else 1, bias=False),
            nn.Dropout(dropout),
            nn.Conv2d(head, num_classes, 1),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.pool(self.levels(self.stem(x)))
        return self.classifier(features).flatten(1)
