"""The doctor: run every diagnostic on a short budget and grade each with a verdict.

``doctor(model, loader, loss_fn, **budget)`` returns a ``Diagnosis``: one ``Check(name, verdict,
value, threshold, message)`` per measurement (verdict "OK" / "WARN" / "FAIL", the measured value
and the threshold it was compared with), recommendations drawn from the tuning tricks of the
reading list (catalog zhihu-12-tricks, underfitting), and figures. ``write_report(folder)``
writes ``report.md`` and the PNGs atomically.

Checks and their sources (thresholds are named constants in each module, with the reasoning):

=====================  ===========================================  ==================
check                  measured                                     module
=====================  ===========================================  ==================
init_fm1, init_fm2     drift / variance of activation lengths       init_check (1803.01719)
vanishing_gradients    min/max relative gradient across layers      gradient_flow (1211.5063)
exploding_gradients    max relative gradient |g|/|W|                gradient_flow
jacobian_spread        Var of ln‖J u‖² over random directions       jacobian (1812.05994)
gradient_confusion     5% quantile of per-example grad cosines      confusion (1904.06963)
dead_units             worst layer's fraction of constant units     activations (1905.08618)
saturated_units        worst layer's fraction at the bounds         activations
overfitting            train - val accuracy gap (and loss trend)    fitting
underfitting           train loss / constant-predictor loss         fitting (underfitting)
=====================  ===========================================  ==================

Budget (defaults; all on copies of the model, never the user's weights): ``n_inits=5`` random
re-inits for the init and Jacobian checks, ``num_batches=2`` loader batches for gradient flow
and activations, ``confusion_examples=32`` per-example gradients (of a re-initialised copy),
``jacobian_examples=16``, and
— only when no ``history`` of per-epoch metrics is given — a short fit of a deep copy for
``fit_steps=200`` Adam steps at ``lr=1e-3``, evaluated at 8 points on training batches and on
``val_loader`` (or, without one, on every 5th batch of ``loader`` held out of training).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlskills.diagnose.verdict import VERDICTS, Check, grade, worst

__all__ = ["Check", "Diagnosis", "doctor", "grade", "recommendations_for"]

# What to try when a check is not OK (the "12 tricks" tuning advice of catalog zhihu-12-tricks,
# plus the underfitting section): data and preprocessing, initialisation, activation choice,
# normalisation, learning rate and schedule, batch size, optimiser, regularisation (dropout,
# weight decay, early stopping, augmentation), gradient clipping, capacity, ensembles.
RECOMMENDATIONS: dict[str, tuple[str, ...]] = {
    "init_fm1": (
        "Initialise with the activation's critical variance: He (kaiming_normal_, Var[W] = "
        "2/fan_in) for ReLU nets, Xavier for tanh/sigmoid, or LSUV (dlskills.init).",
    ),
    "init_fm2": (
        "Avoid narrow layers: the length variance grows like exp(5 Σ 1/width); widen the narrowest"
        " layers or keep the width constant, or add residual connections / normalisation.",
    ),
    "vanishing_gradients": (
        "Replace saturating activations (sigmoid/tanh) with ReLU-family ones.",
        "Use He/Xavier initialisation and add normalisation layers (BatchNorm) or residual "
        "connections so gradients reach the first layers.",
    ),
    "exploding_gradients": (
        "Clip the gradient norm (Pascanu et al. 2012; dlskills.train clipping callback).",
        "Lower the learning rate or add warm-up; rescale the initialisation (He, not larger).",
    ),
    "jacobian_spread": (
        "The input-output Jacobian is badly conditioned: make the net wider or shallower, or add"
        " normalisation / residual connections (Σ 1/width sets the spread).",
    ),
    "gradient_confusion": (
        "Per-example gradients point in conflicting directions: widen the layers, use a smaller "
        "learning rate or larger batches, or add normalisation.",
    ),
    "dead_units": (
        "Many units never activate: lower the learning rate, use LeakyReLU/ELU, check the bias "
        "initialisation and input normalisation (zero-centre, unit variance).",
    ),
    "saturated_units": (
        "Units sit at their activation bounds: normalise inputs, use smaller initial weights or "
        "non-saturating activations, add BatchNorm.",
    ),
    "overfitting": (
        "Regularise: dropout, weight decay (L2), data augmentation, early stopping on the "
        "validation loss; or reduce capacity; an ensemble also narrows the gap.",
        "Get more (or cleaner) training data and shuffle every epoch.",
    ),
    "underfitting": (
        "Increase capacity (wider/deeper model) or train longer; remove excess regularisation "
        "(dropout, weight decay).",
        "Tune the learning rate (try 3-10x either way with a schedule: warm-up, then decay) and "
        "use Adam or SGD with momentum; normalise the inputs.",
    ),
}


def recommendations_for(checks: Sequence[Check]) -> list[str]:
    """Recommendations of every WARN/FAIL check (FAILs first), without duplicates."""
    ordered = sorted(
        (c for c in checks if c.verdict != "OK"),
        key=lambda c: VERDICTS.index(c.verdict),
        reverse=True,
    )
    advice: list[str] = []
    for check in ordered:
        for text in RECOMMENDATIONS.get(check.name, ()):
            line = f"[{check.name}] {text}"
            if line not in advice:
                advice.append(line)
    return advice


@dataclass
class Diagnosis:
    """The doctor's findings. ``figures`` lists the PNGs written by ``write_report``."""

    checks: list[Check]
    recommendations: list[str]
    details: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    plotters: dict[str, Callable[[Path], Path]] = field(default_factory=dict, repr=False)

    def check(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"no check named {name!r}; have {[c.name for c in self.checks]}")

    @property
    def verdict(self) -> str:
        """The worst verdict of all checks."""
        return worst(c.verdict for c in self.checks)

    def summary(self) -> str:
        lines = [check.line() for check in self.checks]
        lines += [f"SKIP {name}: {reason}" for name, reason in self.skipped.items()]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "checks": [check.to_dict() for check in self.checks],
            "recommendations": list(self.recommendations),
            "skipped": dict(self.skipped),
            "figures": [str(path) for path in self.figures],
            "details": self.details,
        }

    def write_report(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``folder/report.md``, ``folder/diagnosis.json`` and one PNG per diagnostic."""
        from dlskills._io import atomic_write_json, atomic_write_text

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.figures = [plot(folder / filename) for filename, plot in self.plotters.items()]
        atomic_write_json(folder / "diagnosis.json", self.to_dict())
        return atomic_write_text(folder / "report.md", self._markdown(folder))

    def _markdown(self, folder: Path) -> str:
        counts = {v: sum(c.verdict == v for c in self.checks) for v in VERDICTS}
        out = [
            "# dlskills doctor report",
            "",
            f"Overall: **{self.verdict}** ({counts['OK']} OK, {counts['WARN']} WARN, "
            f"{counts['FAIL']} FAIL)",
            "",
            "## Verdicts",
            "",
            *(f"- `{check.line()}`" for check in self.checks),
            *(f"- `SKIP {name}: {reason}`" for name, reason in self.skipped.items()),
            "",
            "| check | verdict | value | threshold |",
            "|---|---|---|---|",
            *(
                f"| {c.name} | {c.verdict} | {c.value:.4g} | {c.threshold:.4g} |"
                for c in self.checks
            ),
            "",
            "## Recommendations",
            "",
            *([f"- {text}" for text in self.recommendations] or ["- none: every check is OK"]),
            "",
            "## Figures",
            "",
            *(f"![{path.stem}]({path.relative_to(folder)})" for path in self.figures),
            "",
        ]
        return "\n".join(out)


def _class_targets(loader: Iterable[Any], num_batches: int) -> Any:
    from dlskills.diagnose._hooks import concat_batches, take_batches

    return concat_batches(take_batches(loader, num_batches))[1]


def doctor(
    model: Any,
    loader: Iterable[Any],
    loss_fn: Callable[[Any, Any], Any],
    *,
    val_loader: Iterable[Any] | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    fit_steps: int = 200,
    lr: float = 1e-3,
    n_inits: int = 5,
    num_batches: int = 2,
    confusion_examples: int = 32,
    jacobian_examples: int = 16,
    init_fn: Callable[[Any], Any] | None = None,
    layers: Sequence[str] | None = None,
    seed: int = 0,
    out: str | os.PathLike[str] | None = None,
) -> Diagnosis:
    """Diagnose ``model`` (any nn.Module) on ``loader`` batches of (inputs, targets) with
    ``loss_fn(outputs, targets)``; every measurement runs on a copy of the model.

    The over/underfitting checks read ``history`` (per-epoch rows with train/val loss and
    accuracy) when given, else a ``short_fit`` of ``fit_steps`` Adam steps at ``lr`` on a deep
    copy (``fit_steps=0`` skips them). ``layers``: module names to probe for the init and
    activation checks (default: the activation modules; choose main-path modules for residual
    nets whose branches are scaled down on purpose). ``out``: also write the report there.
    """
    import torch
    from torch import nn

    from dlskills.diagnose._hooks import (
        check_positive_int,
        concat_batches,
        detached_copy,
        model_device,
        reinitialize,
        take_batches,
    )
    from dlskills.diagnose.activations import activation_stats
    from dlskills.diagnose.confusion import gradient_confusion
    from dlskills.diagnose.fitting import analyse_fit, constant_predictor_loss, short_fit
    from dlskills.diagnose.gradient_flow import gradient_flow
    from dlskills.diagnose.init_check import init_check
    from dlskills.diagnose.jacobian import log_norm_statistics

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError("loss_fn must be callable (outputs, targets) -> scalar tensor")
    check_positive_int(fit_steps, "fit_steps", minimum=0)
    check_positive_int(n_inits, "n_inits", minimum=2)
    check_positive_int(num_batches, "num_batches")
    check_positive_int(confusion_examples, "confusion_examples", minimum=2)
    check_positive_int(jacobian_examples, "jacobian_examples")
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")

    checks: list[Check] = []
    details: dict[str, Any] = {}
    plotters: dict[str, Callable[[Path], Path]] = {}
    skipped: dict[str, str] = {}

    def record(key: str, result: Any) -> None:
        checks.extend(result.checks())
        details[key] = result.to_dict()
        plotters[f"{key}.png"] = result.plot

    def optional(key: str, run: Callable[[], Any]) -> None:
        """The Jacobian and per-example-gradient diagnostics need a model whose examples are
        independent and differentiable through torch.func; record why one could not run."""
        try:
            record(key, run())
        except (RuntimeError, ValueError, TypeError, NotImplementedError) as exc:
            skipped[key] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        record(
            "init_check",
            init_check(model, loader, n_inits, init_fn=init_fn, layers=layers, seed=seed),
        )
        record(
            "gradient_flow",
            gradient_flow(model, loader, loss_fn, num_batches=num_batches),
        )
        probe_x, _ = concat_batches(take_batches(loader, 1, model_device(model)))
        optional(
            "jacobian",
            lambda: log_norm_statistics(
                model, probe_x[:jacobian_examples], n_inits, reinit=False, seed=seed
            ),
        )
        optional(
            "gradient_confusion",
            lambda: gradient_confusion(
                reinitialize(detached_copy(model), seed, init_fn),
                loader,
                loss_fn,
                num_examples=confusion_examples,
            ),
        )
        try:
            record(
                "activations",
                activation_stats(model, loader, num_batches=num_batches, layers=layers),
            )
        except ValueError as exc:
            skipped["activations"] = str(exc)
        if history is None and fit_steps > 0:
            history = short_fit(
                model, loader, loss_fn, val_loader=val_loader, steps=fit_steps, lr=lr, seed=seed
            )
            details["short_fit"] = {"steps": fit_steps, "lr": lr, "optimizer": "Adam"}
        if history:
            targets = _class_targets(loader, max(num_batches, 4))
            record(
                "fitting",
                analyse_fit(history, baseline_loss=constant_predictor_loss(targets)),
            )
        else:
            skipped["fitting"] = "no history given and fit_steps=0"
    diagnosis = Diagnosis(
        checks=checks,
        recommendations=recommendations_for(checks),
        details=details,
        skipped=skipped,
        plotters=plotters,
    )
    if out is not None:
        diagnosis.write_report(out)
    return diagnosis
