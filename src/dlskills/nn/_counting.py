"""Parameter and multiply-accumulate (MAC) counting by forward hooks (support for 1808.05517,
1906.03516, 1907.05653, whose claims are about these counts).

One forward pass of a single sample records, per Conv/Linear module,

    conv:   MACs = N_out · (C_in / groups) · ∏ kernel      (N_out = elements of the output)
    linear: MACs = N_out · in_features

A module that computes weighted ops functionally (invisible to those hooks) declares them with
a method ``functional_macs(input, output) -> int``, which the counter adds.

Element-wise work (norms, activations, additions, pooling) is not counted, as in the papers'
FLOP tables, which report multiply-adds of the weighted layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

_COUNTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@dataclass(frozen=True)
class Counts:
    """Multiply-accumulates and parameters of one forward pass of a single sample."""

    macs: int
    params: int
    per_module: dict[str, int] = field(default_factory=dict)


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _module_macs(module: nn.Module, output: torch.Tensor) -> int:
    per_sample_outputs = output[0].numel()
    if isinstance(module, nn.Linear):
        return per_sample_outputs * module.in_features
    kernel = math.prod(module.kernel_size)
    return per_sample_outputs * (module.in_channels // module.groups) * kernel


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> Counts:
    """MACs of ``model`` on one input of ``input_shape`` (without the batch dimension).

    The model runs once in eval mode under ``torch.no_grad``; its training flag is restored.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not input_shape or any(int(s) <= 0 for s in input_shape):
        raise ValueError(f"input_shape must be non-empty positive sizes, got {input_shape!r}")
    per_module: dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, _COUNTED):

            def hook(mod, _inputs, output, name=name):
                per_module[name] = per_module.get(name, 0) + _module_macs(mod, output)

            handles.append(module.register_forward_hook(hook))
        elif callable(getattr(module, "functional_macs", None)):

            def functional_hook(mod, inputs, output, name=name):
                per_module[name] = per_module.get(name, 0) + int(
                    mod.functional_macs(inputs[0], output)
                )

            handles.append(module.register_forward_hook(functional_hook))
    reference = next(model.parameters(), None)
    device = reference.device if reference is not None else torch.device("cpu")
    dtype = reference.dtype if reference is not None else torch.get_default_dtype()
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device, dtype=dtype))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return Counts(macs=sum(per_module.values()), params=count_params(model), per_module=per_module)
