"""The model zoo (catalog 1904.05526, Fan, Ma & Zhong, "A Selective Overview of Deep Learning":
the families it discusses — MLP, CNN, RNN and a small GAN/VAE — at laptop scale).

``create(name, *, input_shape, num_classes, **kw)`` builds a registered model for samples of
``input_shape`` (no batch dim) and ``num_classes`` outputs::

    mlp               flatten → [Linear → norm → act → dropout] × depth → Linear
    cnn               [Conv3×3 → norm → act] per stage + max-pool 2 → global avg pool → Linear
    resnet            CIFAR ResNet-(6n+2), BasicBlock, widths w/2w/4w, norm/activation by name
    rnn               GRU / LSTM / vanilla RNN over (B, T, D) → Linear on the last state
    generator         latent z → MLP → image (1, 8, 8) by default (input_shape = image shape)
    gan_discriminator image → MLP → one real/fake logit
    vae               MLP encoder → (μ, log σ²) → z → MLP decoder; ``.loss(x)`` = −ELBO

Normalisation (``norm=``) and activation (``activation=``) are names from
``dlskills.nn.normalization.NORMS`` and ``dlskills.nn.activations.ACTIVATIONS``. Every model
keeps its layers in forward order as modules (one activation instance per layer), so the
diagnostics can hook them. A model file registers itself with ``@register_model(name, ...)``
(``from dlskills.models._registry import register_model``); the registered callable must accept
``input_shape=`` and ``num_classes=`` keywords.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from dlskills.models._registry import MODELS, register_model


def create(
    name: str, *, input_shape: Sequence[int], num_classes: int | None = None, **kwargs: Any
) -> nn.Module:
    """Build the model registered as ``name`` (``kwargs`` are its own options)."""
    return MODELS.get(name)(input_shape=input_shape, num_classes=num_classes, **kwargs)


def __getattr__(attribute: str) -> Any:
    try:
        return MODELS.find_object(attribute)
    except AttributeError:
        raise AttributeError(f"module 'dlskills.models' has no attribute {attribute!r}") from None


__all__ = ["MODELS", "create", "register_model"]
