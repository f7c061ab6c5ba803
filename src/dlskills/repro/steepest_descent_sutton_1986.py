"""Reproduction of catalog sutton-1986: Sutton, "Two problems with backpropagation and other
steepest-descent learning procedures for networks" (1986).

Claim (the first problem): steepest descent is slow on error surfaces whose curvature differs
greatly between directions (ravines): the step that is stable along the steep direction crawls
along the shallow one. Momentum and second-order (Newton-like) steps fix it.

Measured (``dlskills.bench.surfaces``, ``dlskills.optim``): the rotated 2-D quadratic
½xᵀHx with condition number κ ∈ {10, 30, 100}, from its standard start; the steps to reach
‖x‖ < 1e-6 for
- steepest descent (``sgd``) at its best fixed rate 2/(λmin + λmax), which contracts by
  (κ − 1)/(κ + 1) per step: steps ∝ κ;
- heavy-ball momentum at Polyak's optimal (lr, μ), contracting by (√κ − 1)/(√κ + 1): ∝ √κ;
- the package's second-order optimizers (``natural_gradient``, here Gauss-Newton = Newton, and
  ``curveball``) at κ = 100.
The log-log slope of steps against κ, the momentum speed-up at κ = 100, and steepest descent's
steps against the contraction-rate prediction. Deterministic: no seeds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from dlskills.bench import surfaces as tf
from dlskills.repro import register
from dlskills.repro._support import fit_line
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "sutton-1986"
KAPPAS = (10.0, 30.0, 100.0)
TOLERANCE = 1e-6
CLAIM = Claim(
    text="Steepest descent is slow on ill-conditioned error surfaces (ravines); momentum and "
    "second-order methods overcome it.",
    value="steps grow with the condition number",
    source="Sec. 'The first problem'",
)


def steps_to_tolerance(path: torch.Tensor, tol: float = TOLERANCE) -> float:
    """First step whose distance to the minimum (the origin) is below ``tol``; inf if none."""
    below = (path.norm(dim=-1) < tol).nonzero()
    return int(below[0]) if len(below) else math.inf


def _runs(kappa: float) -> dict[str, float]:
    function = tf.ill_conditioned_quadratic(condition_number=kappa)
    root = math.sqrt(kappa)
    # budgets twice the predicted steps: (κ+1)/2 and (√κ+1)/2 per factor e, ln(1e6) ≈ 14 of them
    gd = tf.run_trajectory("sgd", function, int(15 * (kappa + 1)), lr=2 / (1 + kappa))
    momentum = tf.run_trajectory(
        "momentum",
        function,
        int(15 * (root + 1)),
        lr=4 / (1 + root) ** 2,
        momentum=((root - 1) / (root + 1)) ** 2,
    )
    start = torch.tensor(function.start, dtype=torch.float64).norm().item()
    predicted = math.log(start / TOLERANCE) / math.log((kappa + 1) / (kappa - 1))
    return {
        "gd": steps_to_tolerance(gd),
        "momentum": steps_to_tolerance(momentum),
        "predicted": predicted,
    }


@register(CATALOG_ID)
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Steps to 1e-6 on ill-conditioned quadratics: steepest descent, momentum, second order."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0,), "full": (0,)})
    runs = {kappa: _runs(kappa) for kappa in KAPPAS}
    logs = [math.log(k) for k in KAPPAS]
    gd_slope = fit_line(logs, [math.log(runs[k]["gd"]) for k in KAPPAS])[0]
    momentum_slope = fit_line(logs, [math.log(runs[k]["momentum"]) for k in KAPPAS])[0]
    function = tf.ill_conditioned_quadratic(condition_number=100.0)
    natural = tf.run_trajectory("natural_gradient", function, 3, damping=1e-8)
    curveball = tf.run_trajectory("curveball", function, 100)
    middle = runs[100.0]
    return run.result(
        claim=CLAIM,
        measured=[
            Measured.exact("steepest-descent steps, κ = 100", "steps", middle["gd"]),
            Measured.exact(
                "steepest descent / contraction-rate prediction, κ = 100",
                "",
                middle["gd"] / middle["predicted"],
            ),
            Measured.exact("momentum steps, κ = 100", "steps", middle["momentum"]),
            Measured.exact(
                "steepest descent / momentum steps, κ = 100", "x", middle["gd"] / middle["momentum"]
            ),
            Measured.exact("slope of log steps vs log κ, steepest descent", "", gd_slope),
            Measured.exact("slope of log steps vs log κ, momentum", "", momentum_slope),
            Measured.exact("natural-gradient steps, κ = 100", "steps", steps_to_tolerance(natural)),
            Measured.exact("CurveBall steps, κ = 100", "steps", steps_to_tolerance(curveball)),
        ],
        thresholds=[
            Threshold(
                "slope of log steps vs log κ, steepest descent",
                ">=",
                0.8,
                "slow on ravines: steps ∝ κ (slope 1)",
            ),
            Threshold(
                "steepest descent / contraction-rate prediction, κ = 100",
                "<=",
                1.2,
                "the (κ-1)/(κ+1) rate, not an unlucky start",
            ),
            Threshold(
                "steepest descent / contraction-rate prediction, κ = 100",
                ">=",
                0.8,
                "the (κ-1)/(κ+1) rate, not a lucky start",
            ),
            Threshold(
                "slope of log steps vs log κ, momentum",
                "<=",
                0.7,
                "momentum fixes it: steps ∝ √κ (slope 1/2)",
            ),
            Threshold(
                "steepest descent / momentum steps, κ = 100",
                ">=",
                5.0,
                "(√κ + 1)/2 ≈ 5.5× fewer steps by the rates",
            ),
            Threshold(
                "natural-gradient steps, κ = 100",
                "<=",
                2.0,
                "a Newton step lands on the minimum of a quadratic",
            ),
            Threshold(
                "CurveBall steps, κ = 100",
                "<=",
                60.0,
                "second-order steps: far fewer than steepest descent",
            ),
        ],
        config={
            "kappas": KAPPAS,
            "tolerance": TOLERANCE,
            "function": "ill_conditioned_quadratic",
            "gd_lr": "2/(1+κ)",
            "momentum": "Polyak optimal",
        },
    )
