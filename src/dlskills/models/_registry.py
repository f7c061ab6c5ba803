"""The model registry and the argument checks and layer blocks the builders share.

A model is registered as a callable ``(*, input_shape, num_classes, **kw) -> nn.Module``, where
``input_shape`` is one sample's shape without the batch dimension and ``num_classes`` the number
of outputs (classes, or the regression target's width). Metadata: ``family`` ("mlp", "cnn",
"resnet", "rnn", "generative"), ``input`` ("any", "image" (C, H, W), "sequence" (T, D)).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from torch import nn

from dlskills._registry import Registry
from dlskills.nn.activations import get_activation
from dlskills.nn.normalization import (
    apply_weight_norm,
    is_weight_norm,
    make_norm,
    normalizes_outputs,
)

MODELS = Registry("model", discover="dlskills.models")
register_model = MODELS.register


class SequentialModel(nn.Sequential):
    """``nn.Sequential`` base of the zoo's feed-forward models. Slicing returns a plain
    ``nn.Sequential`` of the same (shared) modules, e.g. ``model[:3]`` for the first layers or to
    split a model into stages (torch's own slicing would call the subclass's constructor)."""

    def __getitem__(self, index: int | slice) -> nn.Module:
        if isinstance(index, slice):
            return nn.Sequential(OrderedDict(list(self._modules.items())[index]))
        return super().__getitem__(index)


def check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def check_shape(input_shape: Any, ndim: int | None = None, what: str = "") -> tuple[int, ...]:
    """``input_shape`` as a tuple of positive ints (``ndim`` of them when given)."""
    if not isinstance(input_shape, Sequence) or isinstance(input_shape, str):
        raise TypeError(f"input_shape must be a tuple of ints, got {input_shape!r}")
    shape = tuple(input_shape)
    if not shape or not all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape
    ):
        raise ValueError(f"input_shape must hold positive ints, got {input_shape!r}")
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"input_shape must be {what} ({ndim} dims), got {shape}")
    return shape


def check_dropout(dropout: Any) -> float:
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
    return float(dropout)


def hidden_block(
    layer: nn.Module, width: int, *, activation: str, norm: str, dropout: float, spatial: bool
) -> list[nn.Module]:
    """``layer`` (a Linear/Conv) → norm → activation → dropout, skipping the identity parts."""
    modules = [layer]
    if normalizes_outputs(norm):
        modules.append(make_norm(norm, width, spatial=spatial))
    modules.append(get_activation(activation))
    if dropout > 0:
        modules.append(nn.Dropout(dropout))
    return modules


def uses_bias(norm: str, bias: bool = True) -> bool:
    """A layer followed by a normalisation with its own shift β needs no bias."""
    return bias and not normalizes_outputs(norm)


def finish(model: nn.Module, norm: str) -> nn.Module:
    """Apply weight normalisation when ``norm`` selects it (after the weights are initialised)."""
    return apply_weight_norm(model) if is_weight_norm(norm) else model
