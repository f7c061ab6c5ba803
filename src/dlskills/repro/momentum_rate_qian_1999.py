"""Reproduction of catalog qian-1999: Qian, "On the momentum term in gradient descent learning
algorithms" (Neural Networks 12(1), 1999).

Claim: near a minimum, gradient descent with a momentum term on the quadratic ½ Σᵢ kᵢxᵢ² is a
linear system per eigen-direction,

    xᵢ(t+1) = (1 + p − εkᵢ)·xᵢ(t) − p·xᵢ(t−1),

whose characteristic equation λ² − (1 + p − εkᵢ)λ + p = 0 gives the convergence rate: the error
shrinks per step by ρ = maxᵢ max(|λ₁ᵢ|, |λ₂ᵢ|) (Sec. 3–4). Two consequences: momentum widens the
range of stable learning rates from εk < 2 to εk < 2(1 + p), and in the over-damped regime of a
slow direction (εk ≪ (1 − p)²) it acts as gradient descent with the effective learning rate
ε/(1 − p) (ρ ≈ 1 − εk/(1 − p)).

Measured (``torch.optim.SGD(momentum=p)``, the package's ``momentum``; its buffer form
v ← pv + g, θ ← θ − εv is the heavy ball above), in float64 on a diagonal quadratic with
curvatures k = (1, 0.3, 0.1), from a random start (the seed):
- the rate on a grid of (ε, p) covering under-, critically near- and over-damped settings: the
  slope of log‖x_t‖ over the second half of the run (least squares, which averages out the
  oscillation of complex roots) against ρ from the roots; the largest relative error;
- stability: ε = 0.95·2(1 + p)/k_max converges and 1.05·2(1 + p)/k_max diverges, for each
  p ∈ {0.5, 0.9}, where plain gradient descent at the same ε diverges;
- the effective learning rate: with k = 0.001 (a slow direction) and p = 0.9, the measured
  per-step decay 1 − ρ against εk/(1 − p).
Deterministic given the seed; the thresholds are tight because the analysis is exact.
"""

from __future__ import annotations

import cmath
import math
from collections.abc import Iterable

import torch

from dlskills.repro import register
from dlskills.repro._support import fit_line
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "qian-1999"
CURVATURES = (1.0, 0.3, 0.1)
# (ε, p): over-damped, near-critical, under-damped, and beyond plain GD's limit (εk > 2)
GRID = (
    (0.1, 0.0),
    (0.5, 0.0),
    (1.5, 0.0),
    (0.1, 0.5),
    (0.5, 0.5),
    (1.0, 0.5),
    (2.5, 0.5),
    (0.1, 0.9),
    (1.0, 0.9),
    (3.0, 0.9),
    (0.3, 0.3),
    (2.0, 0.7),
)
CLAIM = Claim(
    text="Gradient descent with momentum on a quadratic is a second-order linear system per "
    "eigen-direction; the roots of its characteristic equation give the convergence rate, "
    "momentum extends the stable range to εk < 2(1 + p), and in the over-damped regime it "
    "acts as the effective learning rate ε/(1 − p).",
    value="rate = max |λ|, λ² − (1 + p − εk)λ + p = 0; stable iff εk < 2(1 + p)",
    source="Sec. 3–4, eqs. (15)–(25)",
)


def predicted_rate(lr: float, momentum: float, curvatures: Iterable[float]) -> float:
    """max over directions of the largest |root| of λ² − (1 + p − εk)λ + p = 0."""
    rates = []
    for k in curvatures:
        b = 1 + momentum - lr * k
        disc = cmath.sqrt(b * b - 4 * momentum)
        rates.append(max(abs((b + disc) / 2), abs((b - disc) / 2)))
    return max(rates)


def run_momentum(
    lr: float, momentum: float, curvatures: Iterable[float], x0: torch.Tensor, steps: int
) -> list[float]:
    """‖x_t‖ for t = 0..steps under torch.optim.SGD(momentum) on ½ Σ kᵢxᵢ² (float64); stops
    early once the norm leaves [1e-120, 1e120] (its square, summed, must not underflow)."""
    k = torch.tensor(list(curvatures), dtype=torch.float64)
    x = x0.clone().to(torch.float64).requires_grad_(True)
    optimizer = torch.optim.SGD([x], lr=lr, momentum=momentum)
    norms = [x.detach().norm().item()]
    for _ in range(steps):
        optimizer.zero_grad()
        (0.5 * (k * x * x).sum()).backward()
        optimizer.step()
        norms.append(x.detach().norm().item())
        if not 1e-120 < norms[-1] < 1e120:
            break
    return norms


def measured_rate(norms: list[float]) -> float:
    """exp of the least-squares slope of log‖x_t‖ over the second half of the run."""
    half = len(norms) // 2
    tail = norms[half:]
    slope, _ = fit_line(range(len(tail)), [math.log(n) for n in tail])
    return math.exp(slope)


def _start(seed: int) -> torch.Tensor:
    return torch.randn(len(CURVATURES), generator=torch.Generator().manual_seed(seed)).double()


def _rate_errors(seed: int, steps: int) -> tuple[float, list[tuple[float, float, float, float]]]:
    rows = []
    for lr, momentum in GRID:
        predicted = predicted_rate(lr, momentum, CURVATURES)
        measured = measured_rate(run_momentum(lr, momentum, CURVATURES, _start(seed), steps))
        rows.append((lr, momentum, predicted, measured))
    worst = max(abs(m - p) / p for _, _, p, m in rows)
    return worst, rows


def _stability(seed: int, steps: int) -> tuple[int, int]:
    """(settings that behave as εk < 2(1 + p) predicts, settings tried): for p ∈ {0.5, 0.9}
    momentum converges at 0.95× the bound and diverges at 1.05×, and plain GD (p = 0) diverges
    at the 0.95× learning rate."""
    k_max = max(CURVATURES)
    right = tried = 0
    for momentum in (0.5, 0.9):
        bound = 2 * (1 + momentum) / k_max
        for factor, p, converges in ((0.95, momentum, True), (1.05, momentum, False)):
            norms = run_momentum(factor * bound, p, CURVATURES, _start(seed), steps)
            right += (norms[-1] < norms[0]) == converges
            tried += 1
        plain = run_momentum(0.95 * bound, 0.0, CURVATURES, _start(seed), steps)
        right += plain[-1] > plain[0]
        tried += 1
    return right, tried


def _effective_lr(seed: int, steps: int) -> float:
    """Measured per-step decay 1 − ρ of a slow direction (k = 1e-3, ε = 0.1, p = 0.9) divided by
    Qian's over-damped prediction εk/(1 − p)."""
    lr, momentum, k = 0.1, 0.9, 1e-3
    x0 = _start(seed)[:1].abs() + 0.5
    rate = measured_rate(run_momentum(lr, momentum, (k,), x0, steps))
    return (1 - rate) / (lr * k / (1 - momentum))


def _figure(path, rows, seed: int, steps: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    predicted = [p for _, _, p, _ in rows]
    measured = [m for _, _, _, m in rows]
    left.plot([0.65, 1.0], [0.65, 1.0], color="0.6", lw=1, label="measured = predicted")
    left.scatter(predicted, measured, c=[mo for _, mo, _, _ in rows], cmap="viridis", zorder=3)
    sm = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(0, 0.9))
    fig.colorbar(sm, ax=left, label="momentum p")
    left.set_xlabel("predicted rate max|λ| (per step)")
    left.set_ylabel("measured rate (per step)")
    left.set_title(f"{len(rows)} (ε, p) settings, k = {CURVATURES}")
    left.legend(loc="upper left")
    for lr, momentum in ((1.0, 0.0), (1.0, 0.5), (1.0, 0.9), (0.1, 0.9)):
        norms = run_momentum(lr, momentum, CURVATURES, _start(seed), min(steps, 300))
        rho = predicted_rate(lr, momentum, CURVATURES)
        line = right.semilogy(norms, label=f"ε = {lr}, p = {momentum}")[0]
        t = torch.arange(len(norms)).double()
        right.semilogy(t, norms[0] * rho**t, ls="--", color=line.get_color(), lw=0.8)
    right.set_xlabel("step t")
    right.set_ylabel("distance to the minimum ‖x_t‖")
    right.set_title("runs (solid) and ρ^t from the roots (dashed)")
    right.legend()
    fig.suptitle(
        "Qian (1999): momentum's rate on a quadratic is max |λ| of its characteristic roots"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


@register(CATALOG_ID, fast="reproduced")
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Momentum's measured rate against the characteristic roots, its stable range, and its
    effective learning rate in the over-damped regime."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0,), "full": (0, 1, 2)})
    steps = run.pick(fast=600, full=3000)
    errors, stable, effective, all_rows = [], [], [], []
    for seed in run.seeds:
        worst, rows = _rate_errors(seed, steps)
        right, tried = _stability(seed, steps)
        errors.append(worst)
        stable.append(right / tried)
        effective.append(_effective_lr(seed, steps))
        all_rows.append(rows)
    run.figure("qian_momentum_rate.png", lambda p: _figure(p, all_rows[0], run.seeds[0], steps))

    def row(name: str, values: list[float], unit: str = "") -> Measured:
        return Measured.over_seeds(name, unit, values, run.seeds)

    return run.result(
        claim=CLAIM,
        measured=[
            row("largest relative error, measured vs predicted rate", errors),
            row("stability settings as predicted", stable),
            row("slow-direction decay / (εk/(1-p))", effective),
        ],
        thresholds=[
            Threshold(
                "largest relative error, measured vs predicted rate",
                "<=",
                0.01,
                "the analysis is exact: only the fit over a finite run errs",
            ),
            Threshold(
                "stability settings as predicted",
                ">=",
                1.0,
                "converges below εk = 2(1 + p), diverges above, plain GD diverges at 1.9(1+p)",
            ),
            Threshold(
                "slow-direction decay / (εk/(1-p))",
                ">=",
                0.95,
                "over-damped: momentum multiplies the learning rate by 1/(1 − p)",
            ),
            Threshold(
                "slow-direction decay / (εk/(1-p))",
                "<=",
                1.05,
                "over-damped: momentum multiplies the learning rate by 1/(1 − p)",
            ),
        ],
        config={"curvatures": list(CURVATURES), "grid": [list(g) for g in GRID], "steps": steps},
    )
