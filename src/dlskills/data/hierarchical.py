"""A hierarchical concept: a target a ResNet learns from few samples and a kernel does not
(catalog 1905.10337: Allen-Zhu & Li, "What Can ResNet Learn Efficiently, Going Beyond Kernels?",
NeurIPS 2019: concepts H(x) = F(x) + α·G(F(x)) of three-layer residual networks).

x ~ N(0, I_dim). ``k`` orthonormal directions u_1 … u_k (rows of Q, the QR factor of a Gaussian
matrix drawn from ``concept_seed``) define the base features, quadratic neurons normalised to
zero mean and unit variance (the second Hermite polynomial):

    f_r(x) = ((u_r·x)² − 1) / √2,                     r = 1 … k
    F(x)   = (1/√k) Σ_r f_r(x)
    G(F)   = (1/√P) Σ_{r<s} f_r f_s                    (all P = k(k−1)/2 pairs)
    y      = F(x) + α·G(F) + noise·N(0, 1)

F is a degree-2 polynomial of x and G∘F a degree-4 one; for orthonormal u_r the f_r are
independent, so Var F = Var G = 1 and the two parts are uncorrelated: G∘F is orthogonal to every
polynomial of degree ≤ 3. A kernel that treats all directions alike (random features, the NTK)
needs about dim² samples to learn F and about dim⁴ to learn G∘F, so its test MSE stays near α²
in between; a network that first learns the k directions (the lower layer, F) can then build G
from them (the residual layer) with far fewer samples.

Deviations: the paper's F and G are vector-valued two-layer networks with general smooth
activations; here they are scalar sums of quadratic (Hermite) neurons, so that the split of the
target into what a kernel learns early and late is exact.
"""

from __future__ import annotations

import math

import torch

from dlskills.data._registry import DataSplits, register_dataset
from dlskills.data.synthetic import _check_count, _check_non_negative, _splits


def concept_directions(dim: int, k: int, concept_seed: int = 0) -> torch.Tensor:
    """The k orthonormal directions u_r (a (k, dim) float64 tensor) of the concept."""
    _check_count("dim", dim, 2)
    _check_count("k", k, 2)
    if k > dim:
        raise ValueError(f"k must be at most dim ({dim}), got {k}")
    generator = torch.Generator().manual_seed(concept_seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    return q[:, :k].T.contiguous()


def concept_parts(x: torch.Tensor, directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(F(x), G(F(x))) for inputs ``x`` (N, dim), each of shape (N,)."""
    features = ((x @ directions.T) ** 2 - 1) / math.sqrt(2)
    k = features.shape[1]
    rows, cols = torch.triu_indices(k, k, offset=1)
    base = features.sum(1) / math.sqrt(k)
    composed = (features[:, rows] * features[:, cols]).sum(1) / math.sqrt(len(rows))
    return base, composed


def sample_concept(
    n: int,
    *,
    dim: int = 16,
    k: int = 4,
    alpha: float = 1.0,
    noise: float = 0.0,
    seed: int = 0,
    concept_seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples (x float32 (n, dim), y float32 (n,)) of the concept fixed by
    ``concept_seed``; the inputs and noise come from ``seed``."""
    _check_count("n", n)
    _check_non_negative("alpha", alpha)
    _check_non_negative("noise", noise)
    directions = concept_directions(dim, k, concept_seed)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    base, composed = concept_parts(x, directions)
    y = base + alpha * composed + noise * torch.randn(n, generator=generator, dtype=torch.float64)
    return x.float(), y.float()


@register_dataset("hierarchical", catalog_id="1905.10337", task="regression", source="synthetic")
def hierarchical(
    *,
    seed: int = 0,
    n: int = 2000,
    dim: int = 16,
    k: int = 4,
    alpha: float = 1.0,
    noise: float = 0.0,
    concept_seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> DataSplits:
    _check_count("n", n, 20)
    x, y = sample_concept(
        n, dim=dim, k=k, alpha=alpha, noise=noise, seed=seed, concept_seed=concept_seed
    )
    return _splits(
        "hierarchical", x.numpy(), y[:, None].numpy(), task="regression", num_classes=None,
        seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
        info={"n": n, "dim": dim, "k": k, "alpha": alpha, "noise": noise,
              "concept_seed": concept_seed},
    )  # fmt: skip
