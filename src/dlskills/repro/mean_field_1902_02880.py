"""Reproduction of catalog 1902.02880: Nguyen & Pham, "A Rigorous Framework for the Mean Field
Limit of Multilayer Neural Networks" (2019).

Claim (Sec. 2–3): under the mean-field scaling (each layer averages over its inputs, learning
rates scaled by the widths), SGD training of a multilayer network tends to a width-independent
limit as every hidden width N grows: the training curves of wide networks coincide.

Measured: ``dlskills.models.mean_field.width_convergence`` trains two-hidden-layer mean-field
MLPs of several widths on digits with the same minibatches; the gap of a width is the largest
distance between its training-loss curve and the widest net's (mean over the seeds). The claim
holds when the gap shrinks at every step up in width, by a factor near the 1/√N fluctuation rate.

Deviation: the widest net stands in for the limit (fast: 512; full: 1024), so gaps are
measured against a finite-width curve.
"""

from __future__ import annotations

from collections.abc import Iterable

from dlskills.models.mean_field import plot_width_convergence, width_convergence
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1902.02880"

CLAIM = Claim(
    text="As the widths grow, the SGD dynamics of a mean-field-scaled multilayer network converge "
    "to a width-independent limit: training curves of wider networks coincide.",
    value="gap to the limit → 0 as N → ∞ (fluctuations O(1/√N))",
    source="Sec. 2–3 (Theorem 3)",
)


@register(CATALOG_ID)
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Training-curve gap to the widest mean-field MLP, per width (see module doc)."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0, 1), "full": (0, 1, 2)})
    widths = run.pick(fast=(8, 32, 128, 512), full=(16, 64, 256, 1024))
    steps = run.pick(fast=300, full=400)
    result = width_convergence(widths, seeds=run.seeds, steps=steps)
    run.figure("width_convergence.png", lambda path: plot_width_convergence(result, path))
    gaps = result.distance_to_widest()
    narrow, middle, wide = sorted(gaps)
    widest = max(widths)
    final_loss = float(result.curves[widest].mean(0)[-1])
    # √(wide/narrow) is the 1/√N rate's factor; half of it leaves room for seed noise
    rate = (wide / narrow) ** 0.5 / 2
    return run.result(
        claim=CLAIM,
        measured=[
            Measured.exact(f"gap, width {narrow}", "nats", gaps[narrow]),
            Measured.exact(f"gap, width {middle}", "nats", gaps[middle]),
            Measured.exact(f"gap, width {wide}", "nats", gaps[wide]),
            Measured.exact(f"gap ratio {narrow}/{wide}", "", gaps[narrow] / gaps[wide]),
            Measured.exact(f"final loss, width {widest}", "nats", final_loss),
        ],
        thresholds=[
            Threshold(f"gap, width {middle}", "<", gaps[narrow], f"shrinks from width {narrow}"),
            Threshold(f"gap, width {wide}", "<", gaps[middle], f"shrinks from width {middle}"),
            Threshold(
                f"gap ratio {narrow}/{wide}", ">=", rate, "half the 1/√N rate over this range"
            ),
            Threshold(
                f"final loss, width {widest}", "<", 0.5, "the limit trains (from ln 10 = 2.3)"
            ),
        ],
        config={"widths": list(widths), "steps": steps, "lr": 0.3, "batch_size": 128},
    )
