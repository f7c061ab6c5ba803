"""Reproduction of catalog 1905.10201: Zhang, Liu & Liu (2019), "Perturbed Model Validation: A
New Framework to Validate Model Relevance".

Claim (Sec. 3–5): retraining a model on labels with injected noise and measuring how fast its
training accuracy falls with the noise rate (the PMV slope) selects the model whose capacity
fits the data, where training accuracy (always the largest model) and often validation accuracy
do not.

Measured: ``dlskills.diagnose.pmv.capacity_check`` on a task whose right capacity is known
exactly (y = [x₁x₂ > 0], x ~ N(0, I₂): one hidden layer of 4 ReLUs represents it, 1 unit cannot,
a 3×64 net memorises the noise), over named seeds (data, noise and inits follow the seed): how
often PMV, training accuracy and validation accuracy pick the right net, and PMV's relevance
margin over the runner-up. Control arms: training and validation accuracy on the same fits.
"""

from __future__ import annotations

from collections.abc import Iterable

from dlskills.diagnose.pmv import DEFAULT_NOISE_RATES, capacity_check, plot_pmv
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1905.10201"

CLAIM = Claim(
    text="The PMV slope (fall of training accuracy with injected label noise) selects the model "
    "of the right capacity, where training and validation accuracy favour over-complex models.",
    value="PMV ranks the relevant model first",
    source="Sec. 3–5",
)


@register(CATALOG_ID)
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Which capacity PMV, training accuracy and validation accuracy pick (see module doc)."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0, 1, 2), "full": range(6)})
    settings = run.pick(
        fast={"train_samples": 200, "noise_rates": (0.0, 0.2, 0.4), "steps": 300},
        full={"train_samples": 300, "noise_rates": DEFAULT_NOISE_RATES, "steps": 500},
    )
    check = capacity_check(seeds=run.seeds, **settings)
    run.figure("pmv.png", lambda path: plot_pmv(check.results[0], path))

    def rate(name: str, picks) -> Measured:
        """How often ``picks`` is the right net, each seed's pick (1 right, 0 not) as values."""
        return Measured.over_seeds(name, "", [float(p == "right") for p in picks], run.seeds)

    margins = Measured.over_seeds("PMV relevance margin", "", check.margins, run.seeds)
    return run.result(
        claim=CLAIM,
        measured=[
            rate("PMV picks the right capacity", check.pmv_picks),
            rate("training accuracy picks it", check.train_picks),
            rate("validation accuracy picks it", check.val_picks),
            margins,
        ],
        thresholds=[
            Threshold("PMV picks the right capacity", ">=", 2 / 3, "the paper's selection"),
            Threshold("validation accuracy picks it", "<=", 1 / 3, "control: it does not"),
            Threshold("PMV relevance margin", ">", 0.2, "a clear first place, not a tie"),
        ],
        config={**settings, "noise_rates": list(settings["noise_rates"]), "lr": 1e-2},
    )
