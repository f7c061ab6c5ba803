"""Reproduction of catalog 1412.6980: Kingma & Ba, "Adam: A Method for Stochastic
Optimization" (ICLR 2015).

Claim (abstract, Sec. 2.1, Sec. 3): Adam's update Δ_t = −α·m̂_t/(√v̂_t + ε) is invariant to a
diagonal rescaling of the gradients, and its magnitude is approximately bounded by the stepsize
α — more exactly |Δ_t| ≤ α·(1 − β₁)/√(1 − β₂) in the most severe case of sparsity (a gradient
that was zero at every step but the current one), |Δ_t| ≤ α otherwise — so α sets a trust region
in parameter space. The bias corrections make the first step exactly α·sign(g), where the
uncorrected averages would step (1 − β₁)/√(1 − β₂) times further.

Measured (``torch.optim.Adam``, β = (0.9, 0.999), α = 1e-3, ε = 1e-8 — the paper's defaults —
the package's ``adam``), on 4,096 independent coordinates over 300 steps of synthetic gradient
streams (seeded):
- dense streams (Gaussian noise around a per-coordinate mean, scaled by 10^U(−1, 1)): the 99th
  percentile of |Δ_t|/α over all coordinates and steps ("approximately bounded by α") and the
  largest (≤ (1 − β₁)/√(1 − β₂) = 3.16 in every case);
- the severe sparse case: each coordinate's gradient zero except at one step t₀ ∈ [100, 300):
  |Δ_{t₀}|/α against the paper's analysis with its bias corrections (``sparse_step``:
  (1 − β₁)/(1 − β₁^t₀) · √(1 − β₂^t₀)/√(1 − β₂) for ε → 0, which tends to 3.16 as t₀ → ∞; 0.98–1.61
  here);
- invariance: the parameters after 300 steps with every coordinate's gradient multiplied by a
  factor drawn from 10^U(−2, 2) (a diagonal rescaling), against the unscaled run;
- the first step: |Δ₁|/α (1 with the bias corrections, up to ε/|g|).
The strict reading of Sec. 2.1, |Δ_t| ≤ α outside the sparse case, does not hold for noisy
streams (a gradient larger than its recent average steps further); the approximate one does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1412.6980"
LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8
COORDINATES, STEPS = 4096, 300
SPARSE_BOUND = (1 - BETAS[0]) / math.sqrt(1 - BETAS[1])
CLAIM = Claim(
    text="Adam's update is invariant to diagonal rescaling of the gradients and its magnitude "
    "is approximately bounded by the stepsize α: |Δ| ≤ α(1 − β₁)/√(1 − β₂) in the most severe "
    "sparse case and |Δ| ≤ α otherwise; bias correction makes the first step α.",
    value="|Δ_t| ≲ α; ≤ 3.16α (β = 0.9, 0.999) when sparse; Δ invariant to g → c·g",
    source="Abstract, Sec. 2.1, Sec. 3",
)


def adam_steps(gradients: torch.Tensor) -> torch.Tensor:
    """(steps, coordinates) updates Δ_t of torch.optim.Adam fed the rows of ``gradients``."""
    theta = torch.zeros(gradients.shape[1], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([theta], lr=LR, betas=BETAS, eps=EPS)
    updates = []
    for g in gradients:
        before = theta.detach().clone()
        theta.grad = g.clone()
        optimizer.step()
        updates.append(theta.detach() - before)
    return torch.stack(updates)


def dense_gradients(generator: torch.Generator) -> torch.Tensor:
    mean = torch.randn(COORDINATES, generator=generator, dtype=torch.float64)
    scale = 10 ** (2 * torch.rand(COORDINATES, generator=generator, dtype=torch.float64) - 1)
    noise = torch.randn(STEPS, COORDINATES, generator=generator, dtype=torch.float64)
    return scale * (mean + noise)


def sparse_gradients(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero everywhere but at one step t₀ ∈ [100, STEPS) per coordinate; (gradients, t₀)."""
    when = torch.randint(100, STEPS, (COORDINATES,), generator=generator)
    gradients = torch.zeros(STEPS, COORDINATES, dtype=torch.float64)
    values = torch.randn(COORDINATES, generator=generator, dtype=torch.float64)
    gradients[when, torch.arange(COORDINATES)] = values
    return gradients, when


def _one_seed(seed: int) -> dict[str, float]:
    generator = torch.Generator().manual_seed(seed)
    dense = dense_gradients(generator)
    plain = adam_steps(dense)
    steps = plain.abs() / LR
    factors = 10 ** (4 * torch.rand(COORDINATES, generator=generator, dtype=torch.float64) - 2)
    rescaled = adam_steps(dense * factors)
    invariance = (rescaled.sum(0) - plain.sum(0)).abs().max().item() / LR
    sparse, when = sparse_gradients(generator)
    sparse_steps = adam_steps(sparse).abs() / LR
    at_spike = sparse_steps[when, torch.arange(COORDINATES)]
    values = sparse[when, torch.arange(COORDINATES)]
    predicted = sparse_step(when.double() + 1, values)  # t₀ counted from 1
    return {
        "dense max": steps.max().item(),
        "dense p99": steps.flatten().quantile(0.99).item(),
        "sparse max": at_spike.max().item(),
        "sparse error": ((at_spike - predicted).abs() / predicted).max().item(),
        "invariance": invariance,
        "first step": (steps[0] - 1).abs().max().item(),
    }


def sparse_step(t: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """|Δ_t|/α when the gradient was zero before step t and is g at t: |m̂|/(√v̂ + ε) with
    m̂ = (1 − β₁)g/(1 − β₁ᵗ), v̂ = (1 − β₂)g²/(1 − β₂ᵗ); for ε → 0 it is
    (1 − β₁)/(1 − β₁ᵗ)·√(1 − β₂ᵗ)/√(1 − β₂), which tends to (1 − β₁)/√(1 − β₂)."""
    b1, b2 = BETAS
    m_hat = (1 - b1) * g.abs() / (1 - b1**t)
    v_hat = (1 - b2) * g * g / (1 - b2**t)
    return m_hat / (v_hat.sqrt() + EPS)


def _figure(path, seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    generator = torch.Generator().manual_seed(seed)
    dense = adam_steps(dense_gradients(generator)).abs() / LR
    sparse, when = sparse_gradients(generator)
    spikes = (adam_steps(sparse).abs() / LR)[when, torch.arange(COORDINATES)]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    bins = torch.logspace(-4, 1, 80).numpy()
    ax.hist(
        dense.flatten().clamp_min(1e-4).numpy(),
        bins=bins,
        alpha=0.6,
        label="dense streams, every step",
    )
    ax.hist(
        spikes.numpy(), bins=bins, alpha=0.8, label="sparse: the step at the one non-zero gradient"
    )
    ax.axvline(1.0, color="k", lw=1, label="α")
    ax.axvline(SPARSE_BOUND, color="C3", ls="--", lw=1, label="α(1 − β₁)/√(1 − β₂) = 3.16α")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("|Δ_t| / α  (update magnitude per coordinate, in units of the stepsize)")
    ax.set_ylabel("count (coordinates × steps)")
    ax.set_title("Adam's steps are bounded by the stepsize (β = 0.9, 0.999)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


@register(CATALOG_ID, fast="reproduced")
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Adam's step-size bound, its sparse worst case, scale invariance and the first step."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0,), "full": (0, 1, 2, 3, 4)})
    rows = [_one_seed(seed) for seed in run.seeds]
    run.figure("adam_step_bound.png", lambda p: _figure(p, run.seeds[0]))

    def row(name: str, key: str, unit: str = "") -> Measured:
        return Measured.over_seeds(name, unit, [r[key] for r in rows], run.seeds)

    return run.result(
        claim=CLAIM,
        measured=[
            row("99th percentile |Δ|/α, dense streams", "dense p99"),
            row("largest |Δ|/α, dense streams", "dense max"),
            row("largest |Δ|/α at a sparse spike", "sparse max"),
            row("sparse spike |Δ|/α, relative error vs the analysis", "sparse error"),
            row("largest |θ(rescaled) − θ|/α after 300 steps", "invariance"),
            row("largest ||Δ₁|/α − 1|, first step", "first step"),
        ],
        thresholds=[
            Threshold(
                "99th percentile |Δ|/α, dense streams", "<=", 1.1, "approximately bounded by α"
            ),
            Threshold(
                "largest |Δ|/α, dense streams",
                "<=",
                SPARSE_BOUND,
                "never beyond α(1 − β₁)/√(1 − β₂)",
            ),
            Threshold(
                "largest |Δ|/α at a sparse spike",
                "<=",
                SPARSE_BOUND,
                "the severe sparse case: ≤ α(1 − β₁)/√(1 − β₂)",
            ),
            Threshold(
                "sparse spike |Δ|/α, relative error vs the analysis",
                "<=",
                1e-6,
                "the sparse-case step follows from the bias-corrected averages",
            ),
            Threshold(
                "largest |θ(rescaled) − θ|/α after 300 steps",
                "<=",
                0.03,
                "invariant to diagonal rescaling up to ε: ε/√v̂ ≤ 1e-4 for |g| ≳ 1e-4, so "
                "≤ 300 × 1e-4 α",
            ),
            Threshold(
                "largest ||Δ₁|/α − 1|, first step", "<=", 1e-3, "bias-corrected first step α"
            ),
        ],
        config={
            "lr": LR,
            "betas": list(BETAS),
            "eps": EPS,
            "coordinates": COORDINATES,
            "steps": STEPS,
        },
    )
