"""LeCun init (LeCun et al. 1998; the SNN paper's init, catalog 1706.02515).

Var(w) = 1/fan_in: the variance that, with Σw ≈ 0, keeps SELU networks at their (0, 1) fixed
point. Normal (the paper's) or uniform on ±√(3/fan_in).
"""

import math

from torch import nn

from dlskills.init._registry import fans, init_weights, register_initializer
from dlskills.nn.selu import lecun_normal_


@register_initializer(
    "lecun_normal", catalog_id="1706.02515", aliases=("lecun",), variance="1 / fan_in"
)
def lecun_normal(model: nn.Module) -> nn.Module:
    """N(0, 1/fan_in) on every Linear/Conv weight."""
    return init_weights(model, lecun_normal_)


@register_initializer("lecun_uniform", catalog_id="1706.02515", variance="1 / fan_in")
def lecun_uniform(model: nn.Module) -> nn.Module:
    """U(±√(3/fan_in)) on every Linear/Conv weight."""

    def fill(w):
        bound = math.sqrt(3.0 / fans(w)[0])
        w.uniform_(-bound, bound)

    return init_weights(model, fill)
