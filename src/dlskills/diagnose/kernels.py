"""Kernel baselines for a network: its neural tangent kernel, random ReLU features and kernel
ridge regression (catalog 1905.10337: Allen-Zhu & Li compare a ResNet trained by SGD with
kernel methods, the NTK included, on the same samples).

Neural tangent kernel of a network f(x; w) with scalar output, at its current weights w₀
(Jacot, Gabriel & Hongler 2018; the kernel of the linearised model f(x; w₀) + ∇_w f(x; w₀)·Δw):

    Θ(x, x') = ⟨∇_w f(x; w₀), ∇_w f(x'; w₀)⟩

``ntk_features`` returns the rows ∇_w f(x_i; w₀) (per-example gradients by ``torch.func``, as
``dlskills.diagnose.confusion.per_example_gradients``), ``ntk_gram`` their Gram matrix.

Random ReLU features (Rahimi & Recht 2007): W_ij ~ N(0, 1/dim), b_j ~ N(0, bias_std²),

    φ(x) = ReLU(xW + b) / √P,       k(x, x') = φ(x)·φ(x')

whose kernel tends, as P → ∞ with b = 0, to the order-1 arc-cosine kernel of Cho & Saul (2009):
k(x, x') = ‖x‖‖x'‖ (sin θ + (π − θ) cos θ) / (2π·dim), θ the angle between x and x'.

Kernel ridge regression with Gram K (n × n) on the training inputs:

    c = (K + λ·(tr K / n)·I)⁻¹ y,         ŷ(x) = Σ_i k(x, x_i) c_i

λ is relative to the mean eigenvalue tr K / n, so one grid of λ serves every kernel and n.
``kernel_ridge`` picks λ on a validation set (the kernel's best case at each n).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from dlskills.diagnose.confusion import per_example_gradients

DEFAULT_RIDGES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def _scalar_output(output: torch.Tensor, _target: torch.Tensor) -> torch.Tensor:
    if output.numel() != 1:
        raise ValueError(f"model: the NTK needs one output per example, got {output.numel()}")
    return output.reshape(())


def ntk_features(model: nn.Module, x: torch.Tensor, *, chunk: int = 512) -> torch.Tensor:
    """∇_w f(x_i) for every row of ``x``: an (N, num_parameters) tensor, ``chunk`` rows at a time
    (the model's weights are not changed)."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    dummy = torch.zeros(len(x))
    return torch.cat(
        [
            per_example_gradients(model, _scalar_output, x[i : i + chunk], dummy[i : i + chunk])
            for i in range(0, len(x), chunk)
        ]
    )


def ntk_gram(model: nn.Module, x1: torch.Tensor, x2: torch.Tensor | None = None) -> torch.Tensor:
    """Θ(x1_i, x2_j) of ``model`` at its current weights (``x2`` None: x1 against itself)."""
    left = ntk_features(model, x1)
    right = left if x2 is None else ntk_features(model, x2)
    return left @ right.T


class RandomReLUFeatures(nn.Module):
    """φ(x) = ReLU(xW + b)/√P with W ~ N(0, 1/dim), b ~ N(0, bias_std²), fixed by ``seed``
    (buffers, not parameters: random features are never trained)."""

    def __init__(self, dim: int, features: int, *, bias_std: float = 0.0, seed: int = 0) -> None:
        super().__init__()
        if dim < 1 or features < 1:
            raise ValueError(f"dim and features must be at least 1, got {dim} and {features}")
        if bias_std < 0:
            raise ValueError(f"bias_std must be non-negative, got {bias_std}")
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("weight", torch.randn(dim, features, generator=generator) / dim**0.5)
        self.register_buffer("bias", bias_std * torch.randn(features, generator=generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ self.weight + self.bias) / self.weight.shape[1] ** 0.5


@dataclass(frozen=True)
class KernelFit:
    """Kernel ridge regression fitted with the ridge ``ridge`` (chosen on the validation set);
    ``val_mse`` per ridge tried."""

    ridge: float
    coefficients: torch.Tensor
    val_mse: dict[float, float]

    def predict(self, k_eval_train: torch.Tensor) -> torch.Tensor:
        """ŷ for the rows of k(x_eval, x_train)."""
        return k_eval_train.to(self.coefficients.dtype) @ self.coefficients


def ridge_coefficients(k_train: torch.Tensor, y: torch.Tensor, ridge: float) -> torch.Tensor:
    """c = (K + λ·(tr K/n)·I)⁻¹ y in float64 (Cholesky)."""
    if ridge <= 0:
        raise ValueError(f"ridge must be positive, got {ridge}")
    gram = k_train.double()
    n = gram.shape[0]
    if gram.shape != (n, n) or y.shape[0] != n:
        raise ValueError(f"k_train must be (n, n) with n = len(y), got {tuple(gram.shape)}")
    shift = ridge * gram.diagonal().mean()
    factor = torch.linalg.cholesky(gram + shift * torch.eye(n, dtype=torch.float64))
    return torch.cholesky_solve(y.double().reshape(n, -1), factor).reshape(y.shape)


def kernel_ridge(
    k_train: torch.Tensor,
    y: torch.Tensor,
    k_val_train: torch.Tensor,
    y_val: torch.Tensor,
    ridges: Sequence[float] = DEFAULT_RIDGES,
) -> KernelFit:
    """Kernel ridge regression, λ from ``ridges`` minimising the validation MSE."""
    if not ridges:
        raise ValueError("ridges must name at least one ridge")
    fits = {}
    for ridge in ridges:
        coefficients = ridge_coefficients(k_train, y, ridge)
        error = (k_val_train.double() @ coefficients - y_val.double()).pow(2).mean().item()
        fits[ridge] = (error, coefficients)
    best = min(fits, key=lambda ridge: fits[ridge][0])
    return KernelFit(best, fits[best][1], {ridge: fit[0] for ridge, fit in fits.items()})
