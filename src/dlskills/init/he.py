"""He/Kaiming init (He et al. 2015; catalog 1803.01719 "init schemes").

Var(w) = gain² / fan with gain² = 2 for ReLU (2/(1 + a²) for leaky ReLU of slope a) and fan the
fan-in (preserves forward variance) or fan-out (preserves backward variance). Normal or uniform
on ±√(3·Var). Hanin & Rolnick (1803.01719) show Var = 2/fan_in avoids their failure mode FM1
(exploding/vanishing mean activation length) in ReLU nets.
"""

import math

from torch import nn

from dlskills.init._registry import fan, init_weights, register_initializer


def _std(weight, mode: str, negative_slope: float) -> float:
    return math.sqrt(2.0 / (1.0 + negative_slope**2) / fan(weight, mode))


@register_initializer(
    "he_normal",
    catalog_id="1803.01719",
    aliases=("kaiming_normal", "he", "kaiming"),
    variance="2 / ((1 + a²) · fan)",
)
def he_normal(model: nn.Module, mode: str = "fan_in", negative_slope: float = 0.0) -> nn.Module:
    """N(0, 2/((1 + a²)·fan)) with fan = fan_in or fan_out (``mode``)."""
    return init_weights(model, lambda w: w.normal_(0.0, _std(w, mode, negative_slope)))


@register_initializer(
    "he_uniform",
    catalog_id="1803.01719",
    aliases=("kaiming_uniform",),
    variance="2 / ((1 + a²) · fan)",
)
def he_uniform(model: nn.Module, mode: str = "fan_in", negative_slope: float = 0.0) -> nn.Module:
    """U(±√(3·Var)) with Var = 2/((1 + a²)·fan)."""

    def fill(w):
        bound = math.sqrt(3.0) * _std(w, mode, negative_slope)
        w.uniform_(-bound, bound)

    return init_weights(model, fill)
