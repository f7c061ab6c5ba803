"""The dropout family (catalog dropout-2014: Srivastava, Hinton, Krizhevsky, Sutskever &
Salakhutdinov, "Dropout: a simple way to prevent neural networks from overfitting", JMLR 2014;
DropConnect: Wan, Zeiler, Zhang, LeCun & Fergus, ICML 2013). All use *inverted* scaling: the
train-time output is divided by the keep probability q = 1 − p, so eval mode is the identity
(or the mean weight) and needs no rescaling.

standard     y = m ⊙ x / q,  m_i ~ Bernoulli(q) per element — ``torch.nn.Dropout`` itself,
             registered here as "dropout" (the paper's rule; the paper scales weights by q at
             test time instead, which is the same network).
spatial      y = m ⊙ x / q with one m_{n,c} per sample and channel, broadcast over every
             spatial position of an (N, C, *spatial) input (Tompson et al. 2015; the semantics of
             ``torch.nn.Dropout2d``, here for any number of spatial dims): neighbouring
             activations are correlated, so per-element masks barely regularise conv maps.
alpha        in ``dlskills.nn.selu`` (``AlphaDropout``, catalog 1706.02515), re-exported here.
DropConnect  a Linear layer whose WEIGHTS are dropped: y = ((M ⊙ W) x + m_b ⊙ b) / q with
             M_{oi}, m_{b,o} ~ Bernoulli(q) (the paper masks the bias with the weights). Then
             E_M[y] = W x + b, the dense output. Eval: y = W x + b (the mean weight).

Deviations from Wan et al.: (1) by default one mask is drawn per forward call and shared by the
batch (``per_example=False``): same expectation, O(out·in) memory instead of O(B·out·in); set
``per_example=True`` for the paper's independent mask per sample. (2) Inference uses the mean
weight, not the paper's Gaussian moment-matching sampler: deterministic and as cheap as Linear.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn import Dropout

from dlskills.nn._registry import LAYERS, register_layer
from dlskills.nn.selu import AlphaDropout, alpha_dropout

LAYERS.add("dropout", Dropout, catalog_id="dropout-2014", example=(dict(p=0.5), (6,)))


def _check_p(p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p < 1.0:
        raise ValueError(f"p must be a number in [0, 1), got {p!r}")
    return float(p)


def _keep_mask(
    shape: tuple[int, ...], p: float, like: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Bernoulli(1 − p) mask already divided by 1 − p, in ``like``'s dtype and device."""
    keep = torch.rand(shape, device=like.device, generator=generator) >= p
    return keep.to(like.dtype) / (1.0 - p)


def spatial_dropout(
    input: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Drop whole channels of an (N, C, *spatial) input with probability ``p`` (inverted
    scaling); identity when not training or p = 0."""
    _check_p(p)
    if input.dim() < 3:
        raise ValueError(
            f"spatial_dropout expects (N, C, *spatial), got shape {tuple(input.shape)}"
        )
    if not training or p == 0.0:
        return input
    channel_shape = (*input.shape[:2], *([1] * (input.dim() - 2)))
    return input * _keep_mask(channel_shape, p, input, generator)


def drop_connect(
    weight: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``weight`` with each entry zeroed with probability ``p`` and the rest divided by 1 − p
    (unbiased: E = weight); ``weight`` itself when not training or p = 0."""
    _check_p(p)
    if not training or p == 0.0:
        return weight
    return weight * _keep_mask(tuple(weight.shape), p, weight, generator)


@register_layer(
    "spatial_dropout",
    catalog_id="dropout-2014",
    aliases=("dropout2d",),
    example=(dict(p=0.3), (3, 4, 4)),
)
class SpatialDropout(nn.Module):
    """Channel-wise dropout for (N, C, *spatial) inputs (``spatial_dropout``)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = _check_p(p)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return spatial_dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


@register_layer(
    "dropconnect_linear",
    catalog_id="dropout-2014",
    aliases=("dropconnect",),
    example=(dict(in_features=5, out_features=3, p=0.4), (5,)),
)
class DropConnectLinear(nn.Linear):
    """``nn.Linear`` with DropConnect on its weight and bias at train time (module doc); the
    plain dense layer in eval mode. Initialisation is ``nn.Linear``'s."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        p: float = 0.5,
        bias: bool = True,
        *,
        per_example: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.p = _check_p(p)
        self.per_example = bool(per_example)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return F.linear(input, self.weight, self.bias)
        if not self.per_example:
            bias = None if self.bias is None else drop_connect(self.bias, self.p)
            return F.linear(input, drop_connect(self.weight, self.p), bias)
        # one mask per sample over all leading dims: (S, out, in) with S = prod(batch dims)
        batch_shape = input.shape[:-1]
        flat = input.reshape(-1, self.in_features)
        samples = flat.shape[0]
        weight_mask = _keep_mask((samples, *self.weight.shape), self.p, self.weight, None)
        output = torch.einsum("soi,si->so", weight_mask * self.weight, flat)
        if self.bias is not None:
            bias_mask = _keep_mask((samples, self.out_features), self.p, self.bias, None)
            output = output + bias_mask * self.bias
        return output.reshape(*batch_shape, self.out_features)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}, per_example={self.per_example}"


__all__ = [
    "AlphaDropout",
    "DropConnectLinear",
    "Dropout",
    "SpatialDropout",
    "alpha_dropout",
    "drop_connect",
    "spatial_dropout",
]
