"""Orthogonal init (Saxe et al. 2014; catalog 1803.01719 "init schemes").

The weight, flattened to rows = output units and columns = fan_in, is gain × a (semi-)orthogonal
matrix: W Wᵀ = gain²·I when rows ≤ columns, WᵀW = gain²·I otherwise (QR of a Gaussian matrix
with the sign of R's diagonal folded in, so the result is Haar-distributed). Var(w) = gain²/max
(rows, columns).
"""

from torch import nn

from dlskills.init._registry import init_weights, register_initializer


@register_initializer(
    "orthogonal", catalog_id="1803.01719", variance="gain² / max(fan_out_units, fan_in)"
)
def orthogonal(model: nn.Module, gain: float = 1.0) -> nn.Module:
    """(Semi-)orthogonal weights × ``gain`` on every Linear/Conv layer."""
    return init_weights(model, lambda w: nn.init.orthogonal_(w, gain=gain))
