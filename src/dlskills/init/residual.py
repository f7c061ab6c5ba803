"""Zero-init of residual branches (Goyal et al. 2017, He et al. "Bag of tricks"; catalog
1803.01719 "zero-init residual" — Hanin & Rolnick's FM2 concerns the sum of residual scales).

Each residual block's last normalisation γ (or, without a norm, its last conv) is set to 0, so
every block starts as the identity and the effective depth at init is 0.

A block names its last branch layer by a ``residual_last`` attribute (a module); blocks without
it are recognised by torchvision's naming: ``bn3`` (bottleneck) or ``bn2`` next to ``conv2``
(basic block).
"""

from __future__ import annotations

from torch import nn

from dlskills.init._registry import register_initializer


def residual_last_layers(model: nn.Module) -> list[nn.Module]:
    """The last layer of every residual branch of ``model`` (see module doc for the rule)."""
    found = []
    for module in model.modules():
        last = getattr(module, "residual_last", None)
        if isinstance(last, nn.Module):
            found.append(last)
        elif isinstance(getattr(module, "bn3", None), nn.Module) and hasattr(module, "conv3"):
            found.append(module.bn3)
        elif isinstance(getattr(module, "bn2", None), nn.Module) and hasattr(module, "conv2"):
            found.append(module.bn2)
    return found


@register_initializer("zero_init_residual", catalog_id="1803.01719", variance="0 (last layer)")
def zero_init_residual(model: nn.Module) -> nn.Module:
    """Zero the weight (γ for a norm) of the last layer of every residual branch."""
    layers = residual_last_layers(model)
    if not layers:
        raise ValueError("no residual branch found: give blocks a `residual_last` module attribute")
    for layer in layers:
        weight = getattr(layer, "weight", None)
        if weight is None:
            raise ValueError(f"residual_last layer {type(layer).__name__} has no weight to zero")
        nn.init.zeros_(weight)
    return model
