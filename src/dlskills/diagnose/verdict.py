"""The doctor's verdict types: ``Check`` (one graded measurement) and ``grade``.

They live in this small module so that every check module (init_check, gradient_flow,
activations, fitting, ...) imports them from below, and ``doctor`` — which runs the checks —
imports the checks, never the reverse (DESIGN.md: verdict types below the checks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

VERDICTS: tuple[str, ...] = ("OK", "WARN", "FAIL")


@dataclass(frozen=True)
class Check:
    """One graded measurement: ``value`` compared with ``threshold`` gives ``verdict``."""

    name: str
    verdict: str
    value: float
    threshold: float
    message: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def line(self) -> str:
        return f"{self.verdict:<4} {self.name}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict,
            "value": json_number(self.value),
            "threshold": json_number(self.threshold),
            "message": self.message,
        }


def json_number(value: float) -> float | str:
    """``value`` itself when finite, else its string ("nan", "inf"): JSON has no non-finite."""
    return value if math.isfinite(value) else str(value)


def grade(
    name: str,
    value: float,
    *,
    warn: float,
    fail: float,
    what: str,
    lower_is_worse: bool = False,
) -> Check:
    """Grade ``value`` against two thresholds; a non-finite value is a FAIL. ``threshold`` is
    the FAIL limit when failing, else the WARN limit."""
    value = float(value)
    worse = (lambda v, t: v < t) if lower_is_worse else (lambda v, t: v > t)
    if not math.isfinite(value) or worse(value, fail):
        verdict, threshold = "FAIL", fail
    elif worse(value, warn):
        verdict, threshold = "WARN", warn
    else:
        verdict, threshold = "OK", warn
    sign = "<" if lower_is_worse else ">"
    message = f"{what} = {value:.3g} (WARN {sign} {warn:.3g}, FAIL {sign} {fail:.3g})"
    return Check(name, verdict, value, threshold, message)


def worst(verdicts: Any) -> str:
    """The worst of an iterable of verdicts ("OK" when empty)."""
    return max(verdicts, key=VERDICTS.index, default="OK")
