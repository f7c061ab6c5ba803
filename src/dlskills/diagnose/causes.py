"""Cause, not symptom: combine the doctor's verdicts into root causes and their consequences.

One defect shows up in several checks. A deep tanh MLP initialised far below the Xavier scale
has tiny gradients in every layer (vanishing_gradients), learns nothing in the short fit
(underfitting) and shrinks its activations across depth (init_fm1 at the given weights); telling
the user to add capacity treats a symptom. ``find_causes(checks, details)`` walks the rules below
in order; the first rule whose trigger is not OK becomes a root cause and claims the not-OK
checks that follow from it, so a later rule does not name them again. Every check that is not OK
and not explained becomes a cause of its own.

======================  ===========================================  =============================
root cause              trigger                                      explains (when not OK)
======================  ===========================================  =============================
exploding gradients     exploding_gradients / _through_time FAIL     unstable_training,
                                                                     underfitting, saturated_units,
                                                                     dead_units, init_fm1,
                                                                     jacobian_spread
saturated units         saturated_units FAIL                         vanishing_*, dead_units,
                                                                     underfitting, jacobian_spread
dead units              dead_units FAIL                              vanishing_*, underfitting,
                                                                     jacobian_spread,
                                                                     gradient_confusion
vanishing gradients     vanishing_gradients / _through_time FAIL     underfitting, init_fm1,
                                                                     jacobian_spread,
                                                                     gradient_confusion,
                                                                     dead_units, saturated_units
learning rate too high  unstable_training not OK                     underfitting, overfitting,
                                                                     dead_units
======================  ===========================================  =============================

Qualifiers come from the measurements: "from the init" when the activations at the given weights
shrink (or grow) by at least ``DRIFT_DECADES`` across the probed layers, "through time in <rnn>"
when the through-time check triggered. A dead unit is constant over the examples and passes no
gradient (activations.py), so a small but varying tanh output never counts as one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dlskills.diagnose.verdict import VERDICTS, Check

# Activation drift at the given weights that names the weight scale ("the init") as the origin
# of vanishing / exploding gradients: two decades of the mean square, the init_fm1 FAIL level
# (He init keeps it within a few tens of percent).
DRIFT_DECADES = 2.0


@dataclass(frozen=True)
class Cause:
    """A root cause: ``text`` names it, ``evidence`` gives the numbers, ``checks`` are the
    checks it is read from and ``explains`` the other not-OK checks that follow from it."""

    name: str
    text: str
    evidence: str
    checks: tuple[str, ...]
    explains: tuple[str, ...]
    verdict: str

    def line(self) -> str:
        follows = ""
        if self.explains:
            names = ", ".join(self.explains[:-1])
            names = f"{names} and {self.explains[-1]}" if names else self.explains[0]
            follows = f"; {names} follow{'s' if len(self.explains) == 1 else ''} from it"
        return f"{self.text}{follows} ({self.evidence})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "text": self.text,
            "evidence": self.evidence,
            "checks": list(self.checks),
            "explains": list(self.explains),
            "verdict": self.verdict,
            "line": self.line(),
        }


def _activation_drift(details: Mapping[str, Any]) -> tuple[float, str] | None:
    """(log10 M_last / M_first, words) of the mean square activation at the given weights."""
    layers = details.get("activations", {}).get("layers", [])
    squares = [
        (layer["name"], float(layer.get("mean_square", math.nan)))
        for layer in layers
        if math.isfinite(float(layer.get("mean_square", math.nan)))
    ]
    if len(squares) < 2:
        return None
    (first_name, first), (last_name, last) = squares[0], squares[-1]
    if first <= 0:
        return None
    if last <= 0:
        return -math.inf, (
            f"activations reach exactly 0 by {last_name} (E[a²] {first:.3g} at {first_name})"
        )
    decades = math.log10(last / first)
    direction = "shrink" if decades < 0 else "grow"
    return decades, (
        f"activations {direction} {abs(decades):.3g} decades across depth at the given weights "
        f"(E[a²] {first:.3g} at {first_name} → {last:.3g} at {last_name})"
    )


def _through_time(details: Mapping[str, Any], key: str, worst: Any) -> tuple[str, str] | None:
    """("through time in <module>", the numbers) of the worst recurrent module."""
    modules = details.get("through_time", {}).get("modules", [])
    if not modules:
        return None
    module = worst(modules, key=lambda m: m[key])
    rate = f"|dL/dh_t| x{module['decay']:.3g} per step back over {module['steps']} steps"
    if key == "vanishing":
        amount = f"{module[key]:.3g} of the largest gradient reaches step 1"
    else:
        amount = f"it grows {module[key]:.3g}x from the last step back"
    return f"through time in {module['name']}", f"{rate}; {amount}"


def _subnormal_note(details: Mapping[str, Any]) -> str:
    flow = details.get("gradient_flow", {})
    grads, acts = flow.get("subnormal_gradients"), flow.get("subnormal_activations")
    if not grads and not acts:
        return ""
    return (
        f"; subnormal floats: {grads or 0:.1%} of gradient, {acts or 0:.1%} of activation entries"
    )


def find_causes(checks: Sequence[Check], details: Mapping[str, Any]) -> list[Cause]:
    """Root causes of the not-OK ``checks`` (worst first in rule order); see the module doc."""
    by_name = {check.name: check for check in checks}
    claimed: set[str] = set()
    causes: list[Cause] = []

    def bad(name: str, level: str = "WARN") -> bool:
        check = by_name.get(name)
        return (
            check is not None
            and name not in claimed
            and VERDICTS.index(check.verdict) >= VERDICTS.index(level)
        )

    def add(name: str, text: str, evidence: str, triggers: list[str], follows: list[str]) -> None:
        triggers = [t for t in triggers if bad(t)]
        explains = [f for f in follows if f not in triggers and bad(f)]
        verdict = max((by_name[t].verdict for t in triggers), key=VERDICTS.index)
        claimed.update(triggers, explains)
        causes.append(Cause(name, text, evidence, tuple(triggers), tuple(explains), verdict))

    drift = _activation_drift(details)
    flow = details.get("gradient_flow", {})

    # 1. exploding gradients
    if bad("exploding_gradients", "FAIL") or bad("exploding_through_time", "FAIL"):
        text, evidence = "exploding gradients", []
        if bad("exploding_gradients", "FAIL"):
            evidence.append(by_name["exploding_gradients"].message)
        if bad("exploding_through_time", "FAIL"):
            where = _through_time(details, "exploding", max)
            text += f" {where[0]}" if where else " through time"
            evidence.append(where[1] if where else by_name["exploding_through_time"].message)
        if drift is not None and drift[0] >= DRIFT_DECADES:
            text += " from the init"
            evidence.insert(0, drift[1])
        add(
            "exploding_gradients",
            text,
            "; ".join(evidence),
            ["exploding_gradients", "exploding_through_time"],
            [
                "unstable_training",
                "underfitting",
                "saturated_units",
                "dead_units",
                "init_fm1",
                "jacobian_spread",
                "vanishing_gradients",
            ],
        )
    # 2. saturation (large weights on a bounded activation)
    if bad("saturated_units", "FAIL"):
        add(
            "saturated_units",
            "saturated units: the weights are too large for the bounded activation",
            by_name["saturated_units"].message,
            ["saturated_units"],
            [
                "vanishing_gradients",
                "vanishing_through_time",
                "dead_units",
                "underfitting",
                "jacobian_spread",
            ],
        )
    # 3. dead units
    if bad("dead_units", "FAIL"):
        add(
            "dead_units",
            "dead units (constant over the examples and passing no gradient)",
            by_name["dead_units"].message,
            ["dead_units"],
            [
                "vanishing_gradients",
                "vanishing_through_time",
                "underfitting",
                "jacobian_spread",
                "gradient_confusion",
            ],
        )
    # 4. vanishing gradients
    if bad("vanishing_gradients", "FAIL") or bad("vanishing_through_time", "FAIL"):
        text, evidence = "vanishing gradients", []
        if bad("vanishing_through_time", "FAIL"):
            where = _through_time(details, "vanishing", min)
            text += f" {where[0]}" if where else " through time"
            evidence.append(where[1] if where else by_name["vanishing_through_time"].message)
        if bad("vanishing_gradients", "FAIL"):
            if drift is not None and drift[0] <= -DRIFT_DECADES:
                text += " from the init"
                evidence.append(drift[1])
            max_update = flow.get("max_update")
            if isinstance(max_update, float) and max_update < flow.get("eps", 0.0):
                evidence.append(
                    f"one SGD step at lr={flow.get('lr', math.nan):.3g} changes no layer by more "
                    f"than {max_update:.3g} of its weights, below float resolution"
                )
            else:
                evidence.append(by_name["vanishing_gradients"].message)
        add(
            "vanishing_gradients",
            text,
            "; ".join(evidence) + _subnormal_note(details),
            ["vanishing_gradients", "vanishing_through_time"],
            [
                "underfitting",
                "init_fm1",
                "jacobian_spread",
                "gradient_confusion",
                "dead_units",
                "saturated_units",
            ],
        )
    # 5. learning rate
    if bad("unstable_training"):
        fit = details.get("short_fit")
        lr = f" (lr={fit['lr']:.3g})" if fit else ""
        add(
            "learning_rate",
            f"the learning rate is too high{lr}: the training loss climbs back above its best",
            by_name["unstable_training"].message,
            ["unstable_training"],
            ["underfitting", "overfitting", "dead_units"],
        )
    # every other not-OK check is a cause of its own, FAILs first
    rest = sorted(
        (c for c in checks if bad(c.name)),
        key=lambda c: VERDICTS.index(c.verdict),
        reverse=True,
    )
    for check in rest:
        if check.name in claimed:
            continue
        add(check.name, check.name.replace("_", " "), check.message, [check.name], [])
    return causes
