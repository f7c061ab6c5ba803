"""Small convolutional network for small images (catalog 1904.05526 §2, the CNN: local
receptive fields, weight sharing, pooling). One stage per entry of ``channels``:

    [Conv3×3(pad 1) → norm → act] × convs_per_stage → MaxPool 2×2 (while the map is ≥ 2 px)

then global average pooling → dropout → Linear(num_classes). Global pooling keeps the parameter
count independent of the image size (8×8 digits, 28×28 MNIST, 32×32 CIFAR use the same model).

Default model of ``dlskills train`` on ``digits``: channels (32, 64), batch norm, ReLU; with the
default recipe 99.33 ± 0.41 % mean test accuracy over seeds 0–4 (docs/training.md,
benchmarks/default_recipe.py; slow test in tests/models/test_cnn.py checks ≥ 98 %).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from dlskills.models._registry import (
    SequentialModel,
    check_dropout,
    check_positive_int,
    check_shape,
    finish,
    hidden_block,
    register_model,
    uses_bias,
)


@register_model("cnn", catalog_id="1904.05526", family="cnn", input="image")
class CNN(SequentialModel):
    """Conv stages with max-pooling, then global average pooling and a linear classifier."""

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (32, 64),
        convs_per_stage: int = 1,
        activation: str = "relu",
        norm: str = "batch",
        dropout: float = 0.0,
    ) -> None:
        shape = check_shape(input_shape, 3, "an image (C, H, W)")
        in_channels, height, width = shape
        check_positive_int("num_classes", num_classes)
        check_positive_int("convs_per_stage", convs_per_stage)
        if isinstance(channels, int) or not channels:
            raise ValueError(f"channels must be a non-empty sequence of ints, got {channels!r}")
        dropout = check_dropout(dropout)
        layers: list[nn.Module] = []
        size = min(height, width)
        for stage_channels in channels:
            check_positive_int("channels", stage_channels)
            for _ in range(convs_per_stage):
                conv = nn.Conv2d(in_channels, stage_channels, 3, padding=1, bias=uses_bias(norm))
                layers += hidden_block(
                    conv,
                    stage_channels,
                    activation=activation,
                    norm=norm,
                    dropout=0.0,
                    spatial=True,
                )
                in_channels = stage_channels
            if size >= 2:
                layers.append(nn.MaxPool2d(2))
                size //= 2
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(in_channels, num_classes))
        super().__init__(*layers)
        self.input_shape, self.num_classes = shape, num_classes
        finish(self, norm)
