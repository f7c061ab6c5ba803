"""Xavier/Glorot init (Glorot & Bengio 2010; catalog 1803.01719 "init schemes").

Var(w) = gain² · 2 / (fan_in + fan_out): uniform on ±gain·√(6/(fan_in + fan_out)) or normal.
Keeps forward and backward signal variance balanced for linear/tanh-like units.
"""

import math

import torch
from torch import nn

from dlskills.init._registry import fans, init_weights, register_initializer


def _std(weight: torch.Tensor, gain: float) -> float:
    fan_in, fan_out = fans(weight)
    return gain * math.sqrt(2.0 / (fan_in + fan_out))


@register_initializer(
    "xavier_uniform",
    catalog_id="1803.01719",
    aliases=("glorot_uniform", "xavier"),
    variance="gain² · 2/(fan_in + fan_out)",
)
def xavier_uniform(model: nn.Module, gain: float = 1.0) -> nn.Module:
    """U(−a, a) with a = gain·√(6/(fan_in + fan_out)) on every Linear/Conv weight."""

    def fill(weight: torch.Tensor) -> None:
        bound = math.sqrt(3.0) * _std(weight, gain)  # U(±b) has variance b²/3
        weight.uniform_(-bound, bound)

    return init_weights(model, fill)


@register_initializer(
    "xavier_normal",
    catalog_id="1803.01719",
    aliases=("glorot_normal",),
    variance="gain² · 2/(fan_in + fan_out)",
)
def xavier_normal(model: nn.Module, gain: float = 1.0) -> nn.Module:
    """N(0, gain² · 2/(fan_in + fan_out)) on every Linear/Conv weight."""
    return init_weights(model, lambda w: w.normal_(0.0, _std(w, gain)))
