"""No bias decay (catalog 1902.04103, Zhang et al. 2019, Bag of Freebies §3; from Jia et al. 2018).

Weight decay ``λ·w`` is applied only to the weights of convolutional and fully-connected layers;
biases and the affine parameters (γ, β) of normalisation layers get decay 0. GluonCV does this by
setting ``wd_mult = 0`` on every parameter matching ``.*beta|.*gamma|.*bias``; here a parameter is
exempt when it is named ``bias`` or belongs to a normalisation module (BatchNorm*, SyncBatchNorm,
GroupNorm, LayerNorm, InstanceNorm*, RMSNorm), which covers the same parameters without relying on
names. Shared parameters are placed once.
"""

from __future__ import annotations

from typing import Any

from torch import nn

NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*, SyncBatchNorm, InstanceNorm* (affine)
    nn.GroupNorm,
    nn.LayerNorm,
    nn.RMSNorm,
)


def param_groups_no_bias_decay(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two optimizer parameter groups: ``[{"params": weights, "weight_decay": weight_decay},
    {"params": biases and normalisation parameters, "weight_decay": 0.0}]`` (both always
    present, possibly empty), together holding each trainable parameter of ``model`` once."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be ≥ 0, got {weight_decay}")
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in model.modules():
        exempt_module = isinstance(module, NORM_TYPES)
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            (no_decay if exempt_module or name == "bias" else decay).append(param)
    return [
        {"params": decay, "weight_decay": float(weight_decay)},
        {"params": no_decay, "weight_decay": 0.0},
    ]
