"""Fixup building blocks (1901.09321, Zhang, Dauphin & Ma, "Fixup Initialization: Residual
Learning Without Normalization", ICLR 2019).

A residual network of L branches, each of m weighted layers, trains without normalisation when

1. the classifier and the last layer of every residual branch are initialised to 0;
2. the other layers of a branch get a standard (He) init scaled by L^(−1/(2m−2));
3. a scalar bias (init 0) is added before each conv, linear and activation, and one scalar
   multiplier (init 1) scales each branch's output.

For the basic block (m = 2):

    h = relu(conv1(x + b1a) + b1b)
    y = relu(scale · conv2(h + b2a) + b2b + shortcut(x + b1a))

The He init follows the authors' code: N(0, 2 / (C_out·k²)) (fan-out). The shortcut of a block
that changes shape is the authors' CIFAR one: stride-s subsampling and zero channels appended
(parameter-free, so the branch count L is the only depth that matters). The authors train the
scalar biases and multipliers at lr/10: ``fixup_param_groups(model, lr)`` builds those groups.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dlskills.nn._registry import register_layer


class ScalarBias(nn.Module):
    """x + b with one learned scalar b (init 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias


class ScalarScale(nn.Module):
    """s·x with one learned scalar s (init 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def he_fan_out_normal_(weight: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """N(0, scale² · 2 / (C_out·∏kernel)), the authors' He init for Fixup convs."""
    fan_out = weight.shape[0] * math.prod(weight.shape[2:])
    with torch.no_grad():
        return weight.normal_(0.0, scale * math.sqrt(2.0 / fan_out))


@register_layer(
    "fixup_basic_block",
    catalog_id="1901.09321",
    example=(dict(in_channels=4, out_channels=4), (4, 5, 5)),
)
class FixupBasicBlock(nn.Module):
    """Two 3×3 convs without normalisation, scalar biases and a branch multiplier (m = 2)."""

    layers_per_branch = 2

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                f"out_channels ({out_channels}) must be >= in_channels ({in_channels}) for the "
                "zero-padding shortcut"
            )
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.bias1a = ScalarBias()
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.bias1b = ScalarBias()
        self.bias2a = ScalarBias()
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.scale = ScalarScale()
        self.bias2b = ScalarBias()
        self.reset_parameters(num_branches=1)

    def reset_parameters(self, num_branches: int) -> None:
        """Fixup init for a network of ``num_branches`` residual branches."""
        if not isinstance(num_branches, int) or num_branches <= 0:
            raise ValueError(f"num_branches must be a positive int, got {num_branches!r}")
        exponent = -1.0 / (2 * self.layers_per_branch - 2)
        he_fan_out_normal_(self.conv1.weight, scale=num_branches**exponent)
        nn.init.zeros_(self.conv2.weight)
        for module in (self.bias1a, self.bias1b, self.bias2a, self.bias2b):
            nn.init.zeros_(module.bias)
        nn.init.ones_(self.scale.scale)

    @property
    def residual_last(self) -> nn.Module:
        """The branch's last layer (zero at init), for ``dlskills.init`` zero-init residual."""
        return self.conv2

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_channels - self.in_channels
        return F.pad(x, (0, 0, 0, 0, 0, extra)) if extra else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bias1a(x)
        out = F.relu(self.bias1b(self.conv1(x)))
        out = self.scale(self.conv2(self.bias2a(out)))
        return F.relu(self.bias2b(out) + self._shortcut(x))


def fixup_initialize(model: nn.Module) -> nn.Module:
    """Apply Fixup to every ``FixupBasicBlock`` of ``model`` (L = their number) and zero the
    last ``nn.Linear`` (the classifier). Returns ``model``."""
    blocks = [m for m in model.modules() if isinstance(m, FixupBasicBlock)]
    if not blocks:
        raise ValueError("model has no FixupBasicBlock: Fixup needs its scalar biases/multipliers")
    for block in blocks:
        block.reset_parameters(num_branches=len(blocks))
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if linears:
        nn.init.zeros_(linears[-1].weight)
        if linears[-1].bias is not None:
            nn.init.zeros_(linears[-1].bias)
    return model


def fixup_param_groups(model: nn.Module, lr: float) -> list[dict]:
    """Param groups for any torch optimizer: Fixup's scalar biases and multipliers at ``lr``/10
    (the authors' practice), every other parameter at ``lr``. Empty groups are left out."""
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    scalar_ids = {
        id(p)
        for m in model.modules()
        if isinstance(m, (ScalarBias, ScalarScale))
        for p in m.parameters()
    }
    parameters = list(model.parameters())
    groups = [
        {"params": [p for p in parameters if id(p) not in scalar_ids], "lr": lr},
        {"params": [p for p in parameters if id(p) in scalar_ids], "lr": lr / 10},
    ]
    return [group for group in groups if group["params"]]


__all__ = [
    "FixupBasicBlock",
    "ScalarBias",
    "ScalarScale",
    "fixup_initialize",
    "fixup_param_groups",
    "he_fan_out_normal_",
]
