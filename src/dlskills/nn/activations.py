"""Activation zoo by name (catalog 1905.08618: Wang & Chen, "Neurons Activation Visualization and
Information Theoretic Analysis", 2019 — the doctor's per-layer activation statistics, entropy and
heat maps read the modules built here).

``get_activation(name, **kw)`` returns a fresh ``nn.Module`` (models need one instance per layer so
that forward hooks see each layer separately). Every entry is torch's own module; the registry adds
names, aliases and the rule as text (``meta["formula"]``)::

    relu        max(0, x)                      leaky_relu  max(0, x) + a·min(0, x), a = 0.01
    prelu       as leaky_relu with learned a   elu         x > 0 ? x : α(eˣ − 1), α = 1
    selu        λ·elu_α(x), α ≈ 1.6733, λ ≈ 1.0507 (1706.02515)
    celu        max(0, x) + min(0, α(e^{x/α} − 1))
    gelu        x·Φ(x)                         silu/swish  x·σ(x)
    mish        x·tanh(softplus(x))            softplus    log(1 + e^{βx})/β, β = 1
    tanh, sigmoid σ(x) = 1/(1 + e⁻ˣ)           hardtanh    clamp(x, −1, 1)
    hardswish   x·relu6(x + 3)/6               hardsigmoid relu6(x + 3)/6
    relu6       min(max(0, x), 6)              softsign    x/(1 + |x|)
    identity    x

Deviation: none — the paper studies activations through their entropy, not new functions; the
zoo is the set of standard ones so the doctor can compare them.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from dlskills._registry import Registry

ACTIVATIONS = Registry("activation")

_ZOO: tuple[tuple[str, type[nn.Module], tuple[str, ...], str], ...] = (
    ("relu", nn.ReLU, (), "max(0, x)"),
    ("leaky_relu", nn.LeakyReLU, ("lrelu",), "max(0, x) + negative_slope·min(0, x)"),
    ("prelu", nn.PReLU, (), "max(0, x) + a·min(0, x), a learned"),
    ("elu", nn.ELU, (), "x if x > 0 else α(exp(x) − 1)"),
    ("selu", nn.SELU, (), "λ·(x if x > 0 else α(exp(x) − 1)), α≈1.6733, λ≈1.0507"),
    ("celu", nn.CELU, (), "max(0, x) + min(0, α(exp(x/α) − 1))"),
    ("gelu", nn.GELU, (), "x·Φ(x)"),
    ("silu", nn.SiLU, ("swish",), "x·σ(x)"),
    ("mish", nn.Mish, (), "x·tanh(softplus(x))"),
    ("softplus", nn.Softplus, (), "log(1 + exp(βx))/β"),
    ("tanh", nn.Tanh, (), "tanh(x)"),
    ("sigmoid", nn.Sigmoid, (), "1/(1 + exp(−x))"),
    ("hardtanh", nn.Hardtanh, (), "clamp(x, min_val, max_val)"),
    ("hardswish", nn.Hardswish, (), "x·relu6(x + 3)/6"),
    ("hardsigmoid", nn.Hardsigmoid, (), "relu6(x + 3)/6"),
    ("relu6", nn.ReLU6, (), "min(max(0, x), 6)"),
    ("softsign", nn.Softsign, (), "x/(1 + |x|)"),
    ("identity", nn.Identity, ("linear", "none"), "x"),
)

for _name, _module, _aliases, _formula in _ZOO:
    ACTIVATIONS.add(_name, _module, catalog_id="1905.08618", aliases=_aliases, formula=_formula)


def get_activation(name: str, **kwargs: Any) -> nn.Module:
    """A fresh instance of the activation registered as ``name`` (``kwargs`` go to its
    constructor, e.g. ``get_activation("leaky_relu", negative_slope=0.2)``)."""
    try:
        return ACTIVATIONS.create(name, **kwargs)
    except TypeError as exc:
        raise TypeError(f"activation {name!r}: {exc}") from None


__all__ = ["ACTIVATIONS", "get_activation"]
