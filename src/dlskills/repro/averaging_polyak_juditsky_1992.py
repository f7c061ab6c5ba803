"""Reproduction of catalog polyak-juditsky-1992: Polyak & Juditsky, "Acceleration of stochastic
approximation by averaging" (SIAM J. Control Optim. 30(4), 1992).

Claim (Theorem 2, linear case): for stochastic gradient iterations θ_t = θ_{t−1} − γ_t(Hθ_{t−1}
+ ξ_t) with slowly decreasing steps γ_t = γ₀t^(−α), 1/2 < α < 1, and noise of covariance S, the
average θ̄_n = (1/n)Σθ_t is asymptotically normal with the optimal covariance:

    n·E‖θ̄_n − θ*‖² → tr(H⁻¹SH⁻¹)        (the Cramér–Rao bound; error ∝ 1/n),

whereas the last iterate only reaches its stationary spread under the step γ_n,

    E‖θ_n − θ*‖² ≈ γ_n·tr(S)/(2h) per direction of curvature h   (error ∝ n^(−α)).

Measured (``dlskills.optim.AveragedParameters(mode="polyak")`` attached to
``torch.optim.SGD`` with ``LambdaLR`` giving γ_t = γ₀t^(−α)), float64: 2000 independent chains
(one row each of a (2000, 2) parameter) on ½θᵀHθ with H = diag(1, 0.5), additive Gaussian
gradient noise S = σ²I (σ = 1), θ₀ ~ N(0, I), γ₀ = 1, α = 0.6:
- the log-log slope of the averaged iterate's mean squared error over n ∈ [n/8, n]: −1
  predicted; of the last iterate's: −α;
- n·MSE(θ̄_n) / tr(H⁻¹SH⁻¹) at the last n (1 predicted), and MSE(θ_n) / (γ_n σ² Σ 1/(2hᵢ));
- the gain MSE(θ_n)/MSE(θ̄_n) at the last n.
Each seed is a fresh set of chains (noise and starts).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from dlskills.optim.averaging import AveragedParameters
from dlskills.repro import register
from dlskills.repro._support import fit_line
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "polyak-juditsky-1992"
CURVATURES = (1.0, 0.5)
SIGMA = 1.0
LR0 = 1.0
ALPHA = 0.6
CLAIM = Claim(
    text="Averaging the iterates of stochastic approximation with slowly decreasing steps "
    "attains the optimal rate: n·E‖θ̄_n − θ*‖² tends to tr(H⁻¹SH⁻¹), while the last iterate "
    "converges only as fast as its step size decreases.",
    value="averaged error ∝ 1/n with constant tr(H⁻¹SH⁻¹); last iterate ∝ γ_n ∝ n^(−α)",
    source="Theorem 2 (linear case), Sec. 3–4",
)


def optimal_constant(curvatures: Iterable[float], sigma: float) -> float:
    """tr(H⁻¹SH⁻¹) for H = diag(curvatures), S = σ²I."""
    return sum(sigma**2 / h**2 for h in curvatures)


def stationary_last_iterate(curvatures: Iterable[float], sigma: float, lr: float) -> float:
    """E‖θ − θ*‖² of SGD at a small constant step lr: Σ lr·σ²/(2h) (per direction, the variance
    of θ ← (1 − lr·h)θ − lr·ξ to first order in lr)."""
    return sum(lr * sigma**2 / (2 * h) for h in curvatures)


def run_chains(
    seed: int, chains: int, steps: int, checkpoints: Iterable[int]
) -> dict[int, tuple[float, float]]:
    """{n: (MSE of the last iterate, MSE of the Polyak average)} at each checkpoint n."""
    generator = torch.Generator().manual_seed(seed)
    h = torch.tensor(CURVATURES, dtype=torch.float64)
    theta = torch.randn(chains, len(CURVATURES), generator=generator, dtype=torch.float64)
    theta.requires_grad_(True)
    optimizer = torch.optim.SGD([theta], lr=LR0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: (t + 1) ** -ALPHA)
    averaged = AveragedParameters([theta], mode="polyak")
    averaged.attach(optimizer)
    wanted = set(checkpoints)
    errors = {}
    for n in range(1, steps + 1):
        noise = torch.randn(theta.shape, generator=generator, dtype=torch.float64)
        theta.grad = h * theta.detach() + SIGMA * noise
        optimizer.step()
        schedule.step()
        if n in wanted:
            last = theta.detach().pow(2).sum(1).mean().item()
            mean = averaged.averages[0].pow(2).sum(1).mean().item()
            errors[n] = (last, mean)
    return errors


def _checkpoints(steps: int) -> list[int]:
    return sorted({round(steps / 2 ** (k / 2)) for k in range(0, 13)})


def _figure(path, curves: list[dict[int, tuple[float, float]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = sorted(curves[0])
    last = [sum(c[n][0] for c in curves) / len(curves) for n in ns]
    mean = [sum(c[n][1] for c in curves) / len(curves) for n in ns]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.loglog(ns, last, "o-", label="last iterate θ_n (SGD, γ_t = t^−0.6)")
    ax.loglog(ns, mean, "s-", label="Polyak average θ̄_n")
    c = optimal_constant(CURVATURES, SIGMA)
    ax.loglog(ns, [c / n for n in ns], "k--", lw=1, label="tr(H⁻¹SH⁻¹)/n (optimal)")
    ax.loglog(
        ns,
        [stationary_last_iterate(CURVATURES, SIGMA, LR0 * n**-ALPHA) for n in ns],
        ":",
        color="C0",
        label="γ_n·Σσ²/(2h) (last-iterate spread)",
    )
    ax.set_xlabel("iterations n")
    ax.set_ylabel("mean squared error E‖θ − θ*‖²")
    ax.set_title("Polyak–Juditsky: the average reaches the 1/n bound, H = diag(1, 0.5)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


@register(CATALOG_ID, fast="reproduced")
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Averaged vs last SGD iterate on a noisy quadratic, against Theorem 2's constants."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0,), "full": (0, 1, 2)})
    chains, steps = run.pick(fast=(2000, 4000), full=(4000, 32000))
    checkpoints = _checkpoints(steps)
    curves = [run_chains(seed, chains, steps, checkpoints) for seed in run.seeds]
    window = [n for n in checkpoints if n >= steps / 8]

    def slope(errors: dict[int, tuple[float, float]], which: int) -> float:
        return fit_line(
            [math.log(n) for n in window], [math.log(errors[n][which]) for n in window]
        )[0]

    constant = optimal_constant(CURVATURES, SIGMA)
    spread = stationary_last_iterate(CURVATURES, SIGMA, LR0 * steps**-ALPHA)
    run.figure("polyak_juditsky_averaging.png", lambda p: _figure(p, curves))

    def row(name: str, values: list[float], unit: str = "") -> Measured:
        return Measured.over_seeds(name, unit, values, run.seeds)

    return run.result(
        claim=CLAIM,
        measured=[
            row("log-log slope, averaged iterate", [slope(c, 1) for c in curves]),
            row("log-log slope, last iterate", [slope(c, 0) for c in curves]),
            row("n·MSE(average) / tr(H⁻¹SH⁻¹)", [steps * c[steps][1] / constant for c in curves]),
            row("MSE(last) / (γ_n·Σσ²/(2h))", [c[steps][0] / spread for c in curves]),
            row("MSE(last) / MSE(average)", [c[steps][0] / c[steps][1] for c in curves]),
        ],
        thresholds=[
            Threshold("log-log slope, averaged iterate", "<=", -0.9, "1/n: slope −1"),
            Threshold("log-log slope, averaged iterate", ">=", -1.1, "1/n: slope −1"),
            Threshold("log-log slope, last iterate", ">=", -ALPHA - 0.1, "γ_n ∝ n^−α"),
            Threshold("log-log slope, last iterate", "<=", -ALPHA + 0.1, "γ_n ∝ n^−α"),
            Threshold("n·MSE(average) / tr(H⁻¹SH⁻¹)", "<=", 1.25, "Theorem 2's optimal constant"),
            Threshold("n·MSE(average) / tr(H⁻¹SH⁻¹)", ">=", 0.8, "Theorem 2's optimal constant"),
            Threshold("MSE(last) / MSE(average)", ">=", 5.0, "the average beats the last iterate"),
        ],
        config={
            "curvatures": list(CURVATURES),
            "sigma": SIGMA,
            "lr0": LR0,
            "alpha": ALPHA,
            "chains": chains,
            "steps": steps,
        },
    )
