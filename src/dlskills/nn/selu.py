"""Self-normalizing networks kit (1706.02515, Klambauer et al., "Self-Normalizing Neural
Networks", NeurIPS 2017): SELU constants, alpha-dropout, LeCun-normal init, an SNN MLP.

SELU:  selu(x) = λ·x for x > 0, λ·α·(eˣ − 1) otherwise. The paper's (α₀₁, λ₀₁) make (μ, ν) =
(0, 1) the fixed point of the mean/variance map for weights with Σw = 0, Σw² = 1, i.e.
E[selu(z)] = 0 and E[selu(z)²] = 1 for z ~ N(0, 1). Closed forms (paper, eq. 14):

    α₀₁ = −√(2/π) / (erfc(1/√2)·e^{1/2} − 1)
    λ₀₁ = (1 − √e·erfc(1/√2))·√(2π)
          · (2·erfc(√2)·e² + π·erfc(1/√2)²·e − 2(2 + π)·erfc(1/√2)·√e + π + 2)^{−1/2}

The activation itself is ``torch.nn.SELU`` (same constants); ``selu_constants()`` evaluates the
closed forms so tests can check them.

Alpha-dropout (keep probability q = 1 − p): a dropped unit is set to α′ = −λα (SELU's negative
saturation), then y = a·x̃ + b with a = (q + q(1 − q)α′²)^{−1/2} and b = −a(1 − q)α′, which keeps
mean 0 and variance 1 for standardized inputs. Unlike ``torch.nn.AlphaDropout`` the mask here is
per element and the affine constants are exposed (``alpha_dropout_affine``); the statistics are
the same. Identity at eval.

LeCun-normal init: w ~ N(0, 1/fan_in) — the paper's init. torch's ``calculate_gain('selu')``
(= 3/4) is a different, empirical choice and is deliberately not used.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dlskills.nn._registry import register_layer

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_LAMBDA = 1.0507009873554804934193349852946
ALPHA_PRIME = -SELU_LAMBDA * SELU_ALPHA


def selu_constants() -> tuple[float, float]:
    """(α₀₁, λ₀₁) from the paper's closed form (the fixed point (μ, ν) = (0, 1))."""
    erfc_half = math.erfc(1 / math.sqrt(2))
    alpha = -math.sqrt(2 / math.pi) / (erfc_half * math.exp(0.5) - 1)
    denominator = (
        2 * math.erfc(math.sqrt(2)) * math.e**2
        + math.pi * erfc_half**2 * math.e
        - 2 * (2 + math.pi) * erfc_half * math.sqrt(math.e)
        + math.pi
        + 2
    )
    lam = (1 - math.sqrt(math.e) * erfc_half) * math.sqrt(2 * math.pi) / math.sqrt(denominator)
    return alpha, lam


def alpha_dropout_affine(p: float) -> tuple[float, float]:
    """The paper's (a, b) for drop probability ``p``: y = a·x̃ + b keeps mean 0 and variance 1."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"p must be in [0, 1), got {p!r}")
    keep = 1.0 - p
    a = (keep + keep * p * ALPHA_PRIME**2) ** -0.5
    return a, -a * p * ALPHA_PRIME


def alpha_dropout(
    input: torch.Tensor, p: float = 0.1, training: bool = True, generator=None
) -> torch.Tensor:
    """Functional alpha-dropout (see module doc); identity when not training or p = 0."""
    a, b = alpha_dropout_affine(p)
    if not training or p == 0.0:
        return input
    keep = torch.rand(input.shape, device=input.device, generator=generator) >= p
    dropped = torch.where(keep, input, torch.full_like(input, ALPHA_PRIME))
    return dropped * a + b


@register_layer("alpha_dropout", catalog_id="1706.02515", example=(dict(p=0.2), (6,)))
class AlphaDropout(nn.Module):
    """Alpha-dropout with drop probability ``p`` (1706.02515); identity in eval mode."""

    def __init__(self, p: float = 0.1) -> None:
        super().__init__()
        alpha_dropout_affine(p)  # validates p
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return alpha_dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def lecun_normal_(tensor: torch.Tensor, generator=None) -> torch.Tensor:
    """Fill ``tensor`` in place with N(0, 1/fan_in) (fan_in = input features × kernel size)."""
    if tensor.dim() < 2:
        raise ValueError(f"lecun_normal_ needs a weight with >= 2 dims, got shape {tensor.shape}")
    fan_in = tensor[0].numel()
    with torch.no_grad():
        return tensor.normal_(0.0, 1.0 / math.sqrt(fan_in), generator=generator)


@register_layer(
    "self_normalizing_mlp",
    catalog_id="1706.02515",
    example=(dict(in_features=6, width=8, depth=3, out_features=2), (6,)),
)
class SelfNormalizingMLP(nn.Sequential):
    """``depth`` hidden Linear+SELU layers of ``width`` (optionally alpha-dropout) then a Linear
    head, LeCun-normal weights and zero biases, as the paper's SNNs."""

    def __init__(
        self,
        in_features: int,
        width: int,
        depth: int,
        out_features: int,
        dropout: float = 0.0,
        activation: type[nn.Module] = nn.SELU,
    ) -> None:
        for arg, value in (
            ("in_features", in_features),
            ("width", width),
            ("depth", depth),
            ("out_features", out_features),
        ):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{arg} must be a positive int, got {value!r}")
        layers: list[nn.Module] = []
        for index in range(depth):
            layers += [nn.Linear(in_features if index == 0 else width, width), activation()]
            if dropout > 0:
                layers.append(AlphaDropout(dropout))
        layers.append(nn.Linear(width, out_features))
        super().__init__(*layers)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                lecun_normal_(module.weight)
                nn.init.zeros_(module.bias)


__all__ = [
    "ALPHA_PRIME",
    "SELU_ALPHA",
    "SELU_LAMBDA",
    "AlphaDropout",
    "SelfNormalizingMLP",
    "alpha_dropout",
    "alpha_dropout_affine",
    "lecun_normal_",
    "selu_constants",
]
