"""The initializer registry and the helpers every scheme shares.

An initializer is a function ``(model, **kw) -> model`` that works in place. Metadata keys:
``variance`` (the rule as text), ``needs_data`` (bool: LSUV needs a batch).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn

from dlskills._registry import Registry

INITIALIZERS = Registry("initializer", discover="dlskills.init")
register_initializer = INITIALIZERS.register

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def weight_layers(model: nn.Module) -> Iterator[nn.Module]:
    """Every Linear/Conv module of ``model`` (in ``modules()`` order)."""
    return (m for m in model.modules() if isinstance(m, _WEIGHTED))


def fans(weight: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a Linear/Conv weight: channels × receptive field size.

    For grouped convs the weight already holds C_in/groups input channels, so fan_in is the
    number of inputs each output actually sees.
    """
    if weight.dim() < 2:
        raise ValueError(f"fans need a weight with >= 2 dims, got shape {tuple(weight.shape)}")
    receptive = weight[0, 0].numel()
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def fan(weight: torch.Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fans(weight)
    return fan_in if mode == "fan_in" else fan_out


def init_weights(
    model: nn.Module, fill: Callable[[torch.Tensor], object], zero_bias: bool = True
) -> nn.Module:
    """Call ``fill(weight)`` on every Linear/Conv weight under no_grad; zero the biases."""
    layers = list(weight_layers(model))
    if not layers:
        raise ValueError("model has no Linear/Conv layer to initialise")
    with torch.no_grad():
        for layer in layers:
            fill(layer.weight)
            if zero_bias and layer.bias is not None:
                layer.bias.zero_()
    return model
