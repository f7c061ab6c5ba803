"""Normalisation layers by name (catalog norm-layers: batch norm, Ioffe & Szegedy 2015; layer
norm, Ba, Kiros & Hinton 2016; group norm, Wu & He 2018; weight norm, Salimans & Kingma 2016).

``make_norm(name, num_features, *, spatial)`` builds the layer that follows a Linear
(``spatial=False``, input (N, C)) or a Conv (``spatial=True``, input (N, C, H, W)). With μ, σ² the
mean and (biased) variance over the set S and γ, β learned per channel::

    y = γ·(x − μ_S)/√(σ²_S + ε) + β

    batch     S = the batch (and H, W) per channel; running averages at eval
    layer     S = all features of one sample (C, and H, W when spatial)
    group     S = one sample's channels of a group of C/G (and H, W); G = num_groups
    instance  S = one sample's one channel over H, W (spatial only)
    none      identity

``weight`` is weight normalisation: no layer, instead each Linear/Conv weight is
reparametrised as w = g·v/‖v‖ (norm over all dims but the output one), applied with
``apply_weight_norm(model)`` through ``torch.nn.utils.parametrizations.weight_norm``; model
builders do so for ``norm="weight"`` (``make_norm("weight", ...)`` is the identity).

Deviations: spatial layer norm is ``GroupNorm(1, C)`` — the statistics of LayerNorm over
(C, H, W) with a per-channel (not per-element) affine, so it works at any image size. The group
count defaults to the largest divisor of C that is ≤ 32 (Wu & He's G = 32 where C allows).
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from dlskills._registry import Registry

NORMS = Registry("normalization")

_WEIGHT_LAYERS = (nn.Linear, nn.modules.conv._ConvNd)


def default_num_groups(num_channels: int, max_groups: int = 32) -> int:
    """The largest divisor of ``num_channels`` that is at most ``max_groups``."""
    return next(g for g in range(min(max_groups, num_channels), 0, -1) if num_channels % g == 0)


@NORMS.register("batch", catalog_id="norm-layers", aliases=("bn", "batchnorm"))
def batch_norm(num_features: int, *, spatial: bool, **kwargs) -> nn.Module:
    return (nn.BatchNorm2d if spatial else nn.BatchNorm1d)(num_features, **kwargs)


@NORMS.register("layer", catalog_id="norm-layers", aliases=("ln", "layernorm"))
def layer_norm(num_features: int, *, spatial: bool, **kwargs) -> nn.Module:
    if spatial:
        return nn.GroupNorm(1, num_features, **kwargs)
    return nn.LayerNorm(num_features, **kwargs)


@NORMS.register("group", catalog_id="norm-layers", aliases=("gn", "groupnorm"))
def group_norm(
    num_features: int, *, spatial: bool, num_groups: int | None = None, **kwargs
) -> nn.Module:
    groups = default_num_groups(num_features) if num_groups is None else num_groups
    if not isinstance(groups, int) or groups <= 0 or num_features % groups:
        raise ValueError(f"num_groups must be a positive divisor of {num_features}, got {groups!r}")
    return nn.GroupNorm(groups, num_features, **kwargs)


@NORMS.register("instance", catalog_id="norm-layers", aliases=("in", "instancenorm"))
def instance_norm(num_features: int, *, spatial: bool, **kwargs) -> nn.Module:
    if not spatial:
        raise ValueError("norm 'instance' needs spatial inputs (N, C, H, W); use 'layer' on (N, C)")
    kwargs.setdefault("affine", True)
    return nn.InstanceNorm2d(num_features, **kwargs)


@NORMS.register("none", aliases=("identity",))
def no_norm(num_features: int, *, spatial: bool) -> nn.Module:
    return nn.Identity()


@NORMS.register("weight", catalog_id="norm-layers", aliases=("wn", "weightnorm"), reparam=True)
def weight_norm_placeholder(num_features: int, *, spatial: bool) -> nn.Module:
    """Weight norm has no layer between Linear/Conv and activation: identity here, and the
    model builder calls :func:`apply_weight_norm`."""
    return nn.Identity()


def make_norm(name: str, num_features: int, *, spatial: bool, **kwargs) -> nn.Module:
    """The normalisation layer ``name`` for ``num_features`` channels (see module doc)."""
    if not isinstance(num_features, int) or num_features <= 0:
        raise ValueError(f"num_features must be a positive int, got {num_features!r}")
    if not isinstance(spatial, bool):
        raise TypeError(f"spatial must be a bool, got {type(spatial).__name__}")
    return NORMS.create(name, num_features, spatial=spatial, **kwargs)


def is_weight_norm(name: str) -> bool:
    """True if ``name`` selects weight normalisation (applied to weights, not a layer)."""
    return bool(NORMS.entry(name).meta.get("reparam", False))


def normalizes_outputs(name: str) -> bool:
    """True if ``name`` puts a layer with its own shift β after Linear/Conv (their bias is then
    redundant)."""
    return NORMS.entry(name).name in ("batch", "layer", "group", "instance")


def apply_weight_norm(module: nn.Module) -> nn.Module:
    """Weight-normalise every Linear/Conv in ``module`` (the module itself included) in place:
    w = g·v/‖v‖ with g initialised to ‖w‖, so outputs are unchanged at the call. Returns
    ``module``."""
    layers = [m for m in module.modules() if isinstance(m, _WEIGHT_LAYERS)]
    if not layers:
        raise ValueError("module has no Linear/Conv layer to weight-normalise")
    for layer in layers:
        if not nn.utils.parametrize.is_parametrized(layer, "weight"):
            weight_norm(layer, name="weight", dim=0)
    return module


__all__ = [
    "NORMS",
    "apply_weight_norm",
    "default_num_groups",
    "is_weight_norm",
    "make_norm",
    "normalizes_outputs",
]
