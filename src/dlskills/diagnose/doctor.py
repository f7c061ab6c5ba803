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
vanishing_gradients    min/max relative gradient across layers, and gradient_flow (1211.5063)
                       the absolute floor lr·max|g|/|W| vs float eps
exploding_gradients    max relative gradient |g|/|W|                gradient_flow
vanishing_through_     share of dL/dh_t reaching step 1, and its    through_time (1211.5063)
time, exploding_       growth back in time, per recurrent module    (recurrent models only)
through_time
jacobian_spread        Var of ln‖J u‖² over random directions       jacobian (1812.05994)
gradient_confusion     5% quantile of per-example grad cosines      confusion (1904.06963)
dead_units             worst layer's fraction of dead units         activations (1905.08618)
                       (constant and passing no gradient)
saturated_units        worst layer's fraction at the bounds         activations
overfitting            train - val accuracy gap (and loss trend)    fitting
underfitting           train loss / constant-predictor loss         fitting (underfitting)
unstable_training      rise of the short fit's loss above its best  fitting
=====================  ===========================================  ==================

The verdicts are then combined into root causes (``causes.find_causes``): ``Diagnosis.causes``
names the cause first and the checks that follow from it ("vanishing gradients from the init;
underfitting follows from it"), and the recommendations start with the cause's.

Denormals: a net whose signal shrinks across depth computes with subnormal floats, which the CPU
handles ~100x slower. The gradient-flow pass runs first, as the process is set, and counts the
subnormal activation and gradient entries (the evidence, in ``details["gradient_flow"]``); every
other diagnostic then runs with ``torch.set_flush_denormal(True)`` (``flush_denormal=True``),
and the previous mode is restored afterwards, also on error.

Budget (defaults; all on copies of the model, never the user's weights): ``n_inits=5`` random
re-inits for the init and Jacobian checks, ``num_batches=2`` loader batches for gradient flow
and activations, ``confusion_examples=32`` per-example gradients (of a re-initialised copy),
``jacobian_examples=16``, one batch for the flow through time, and
— only when no ``history`` of per-epoch metrics is given — a short fit of a deep copy for
``fit_steps=200`` Adam steps at ``lr=1e-3``, evaluated at 8 points on training batches and on
``val_loader`` (or, without one, on every 5th batch of ``loader`` held out of training).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlskills.diagnose.causes import Cause, find_causes
from dlskills.diagnose.verdict import VERDICTS, Check, grade, worst

__all__ = ["Cause", "Check", "Diagnosis", "doctor", "grade", "recommendations_for"]

# The stages of a doctor run, in order (the progress callback names them).
STAGES: tuple[str, ...] = (
    "gradient_flow",
    "through_time",
    "init_check",
    "jacobian",
    "gradient_confusion",
    "activations",
    "fitting",
)

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
        "Use He/Xavier initialisation and add normalisation layers (BatchNorm) or residual "
        "connections so gradients reach the first layers.",
        "Replace saturating activations (sigmoid/tanh) with ReLU-family ones.",
    ),
    "vanishing_through_time": (
        "Use gated cells (LSTM/GRU, forget-gate bias 1) or an orthogonal/identity init of the "
        "recurrent weights; shorten or truncate the sequences the gradient must cross.",
    ),
    "exploding_through_time": (
        "Clip the gradient norm (Pascanu et al. 2012) and lower the recurrent weights' scale "
        "(orthogonal init, gain ≤ 1).",
    ),
    "unstable_training": (
        "Lower the learning rate (3-10x) or add warm-up; clip the gradient norm.",
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


def recommendations_for(
    checks: Sequence[Check], causes: Sequence[Cause] | None = None
) -> list[str]:
    """Recommendations of every WARN/FAIL check (FAILs first), without duplicates. With
    ``causes``, each root cause's advice comes first and a check that follows from a cause gets
    one line pointing at it instead of its own advice (fix the cause first)."""
    advice: list[str] = []

    def extend(name: str) -> None:
        for text in RECOMMENDATIONS.get(name, ()):
            line = f"[{name}] {text}"
            if line not in advice:
                advice.append(line)

    explained: dict[str, str] = {}
    for cause in causes or ():
        for name in cause.checks:
            extend(name)
        for name in cause.explains:
            explained.setdefault(name, cause.text)
    ordered = sorted(
        (c for c in checks if c.verdict != "OK"),
        key=lambda c: VERDICTS.index(c.verdict),
        reverse=True,
    )
    for check in ordered:
        if check.name in explained:
            line = f"[{check.name}] follows from {explained[check.name]}: fix that first."
            if line not in advice:
                advice.append(line)
        else:
            extend(check.name)
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
    causes: list[Cause] = field(default_factory=list)

    def check(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"no check named {name!r}; have {[c.name for c in self.checks]}")

    @property
    def verdict(self) -> str:
        """The worst verdict of all checks."""
        return worst(c.verdict for c in self.checks)

    @property
    def root_cause(self) -> str | None:
        """The first root cause in words (None when every check is OK)."""
        return self.causes[0].line() if self.causes else None

    def summary(self) -> str:
        lines = [f"CAUSE {i}. {cause.line()}" for i, cause in enumerate(self.causes, 1)]
        lines += [check.line() for check in self.checks]
        lines += [f"SKIP {name}: {reason}" for name, reason in self.skipped.items()]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "checks": [check.to_dict() for check in self.checks],
            "causes": [cause.to_dict() for cause in self.causes],
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
            "## Diagnosis",
            "",
            *(
                [f"{i}. {cause.line()}" for i, cause in enumerate(self.causes, 1)]
                or ["Every check is OK."]
            ),
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


def flushing_denormals() -> bool:
    """Whether this thread flushes subnormal floats to zero now (torch has a setter only): a
    subnormal float32 times 1 reads back as 0 under flush-to-zero / denormals-are-zero."""
    import torch

    return bool(torch.tensor([2.0**-130]).mul(1.0)[0] == 0)


class _FlushDenormals:
    """``torch.set_flush_denormal(True)`` inside and, when ``threads`` is set, that many
    intra-op threads; the previous mode and thread count are restored on exit.

    Flush-to-zero is a per-thread CPU mode: torch sets it on the calling thread only, and its
    intra-op (OpenMP) worker threads keep computing with subnormals (measured: with 2 threads
    half of a subnormal tensor's products stay subnormal). Running on one thread is what makes
    the flush complete."""

    def __init__(self, enabled: bool, threads: int | None) -> None:
        self.enabled = enabled
        self.threads = threads
        self.previous = False
        self.previous_threads = 0
        self.active = False

    def __enter__(self) -> _FlushDenormals:
        import torch

        self.previous = flushing_denormals()
        self.previous_threads = torch.get_num_threads()
        if self.enabled:
            self.active = bool(torch.set_flush_denormal(True))
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        return self

    def __exit__(self, *exc: object) -> None:
        import torch

        if self.enabled:
            torch.set_flush_denormal(self.previous)
        if self.threads is not None:
            torch.set_num_threads(self.previous_threads)


Progress = Callable[[str, int, int], Any]


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
    flush_denormal: bool = True,
    num_threads: int | None = None,
    progress: Progress | None = None,
) -> Diagnosis:
    """Diagnose ``model`` (any nn.Module) on ``loader`` batches of (inputs, targets) with
    ``loss_fn(outputs, targets)``; every measurement runs on a copy of the model.

    The over/underfitting checks read ``history`` (per-epoch rows with train/val loss and
    accuracy) when given, else a ``short_fit`` of ``fit_steps`` Adam steps at ``lr`` on a deep
    copy (``fit_steps=0`` skips them); ``lr`` also sets the absolute no-learning floor of the
    gradient check. ``layers``: module names to probe for the init and activation checks
    (default: the activation modules; choose main-path modules for residual nets whose branches
    are scaled down on purpose). ``out``: also write the report there. ``flush_denormal``: run
    the diagnostics after the gradient-flow pass with subnormals flushed to zero (restored
    afterwards). ``num_threads``: torch intra-op threads for those diagnostics (restored
    afterwards); None: one thread when the gradient-flow pass found subnormal floats, or
    gradients whose squares underflow (as Adam's second moments will; the flush covers the
    calling thread only), else unchanged. ``progress(stage, done, total)``: called
    as each stage of ``STAGES`` starts (done = 0) and ends (done = total), and after every step
    of the short fit.
    """
    import contextlib
    import time

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
    from dlskills.diagnose.fitting import (
        analyse_fit,
        constant_predictor_loss,
        short_fit,
        start_loss,
    )
    from dlskills.diagnose.gradient_flow import gradient_flow
    from dlskills.diagnose.init_check import init_check
    from dlskills.diagnose.jacobian import log_norm_statistics
    from dlskills.diagnose.through_time import gradient_through_time

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
    if num_threads is not None:
        check_positive_int(num_threads, "num_threads")
    if progress is not None and not callable(progress):
        raise TypeError("progress must be callable (stage, done, total)")

    checks: list[Check] = []
    details: dict[str, Any] = {}
    plotters: dict[str, Callable[[Path], Path]] = {}
    skipped: dict[str, str] = {}
    timings: dict[str, float] = {}

    def report(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    @contextlib.contextmanager
    def stage(name: str) -> Iterator[None]:
        """Progress and wall time of one stage."""
        start = time.perf_counter()
        report(name, 0, 1)
        yield
        timings[name] = time.perf_counter() - start
        report(name, 1, 1)

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
        with stage("gradient_flow"):  # as the process computes: counts the subnormals
            flow = gradient_flow(model, loader, loss_fn, num_batches=num_batches, lr=lr)
            record("gradient_flow", flow)
        subnormal = bool(
            flow.subnormal_gradients or flow.subnormal_activations or flow.underflowing_squares
        )
        if num_threads is None and subnormal and flush_denormal:
            num_threads = 1
        flush = _FlushDenormals(flush_denormal, num_threads)
        with flush:
            details["denormals"] = {
                "flushed_before": flush.previous,
                "flushed_during_diagnosis": flush.active or flush.previous,
                "threads": torch.get_num_threads(),
                "subnormal_gradients": flow.subnormal_gradients,
                "subnormal_activations": flow.subnormal_activations,
                "underflowing_squares": flow.underflowing_squares,
            }
            with stage("through_time"):
                try:
                    through = gradient_through_time(model, loader, loss_fn, seed=seed)
                except (RuntimeError, ValueError, TypeError, NotImplementedError) as exc:
                    skipped["through_time"] = f"{type(exc).__name__}: {str(exc)[:160]}"
                else:
                    if through.modules:
                        record("through_time", through)
            with stage("init_check"):
                record(
                    "init_check",
                    init_check(model, loader, n_inits, init_fn=init_fn, layers=layers, seed=seed),
                )
            probe_x, _ = concat_batches(take_batches(loader, 1, model_device(model)))
            with stage("jacobian"):
                optional(
                    "jacobian",
                    lambda: log_norm_statistics(
                        model, probe_x[:jacobian_examples], n_inits, reinit=False, seed=seed
                    ),
                )
            with stage("gradient_confusion"):
                optional(
                    "gradient_confusion",
                    lambda: gradient_confusion(
                        reinitialize(detached_copy(model), seed, init_fn),
                        loader,
                        loss_fn,
                        num_examples=confusion_examples,
                    ),
                )
            with stage("activations"):
                try:
                    record(
                        "activations",
                        activation_stats(model, loader, num_batches=num_batches, layers=layers),
                    )
                except ValueError as exc:
                    skipped["activations"] = str(exc)
            with stage("fitting"):
                initial = None
                if history is None and fit_steps > 0:
                    initial = start_loss(model, loader, loss_fn, num_batches=num_batches)
                    history = short_fit(
                        model,
                        loader,
                        loss_fn,
                        val_loader=val_loader,
                        steps=fit_steps,
                        lr=lr,
                        seed=seed,
                        progress=lambda done, total: report("fitting", done, total + 1),
                    )
                    details["short_fit"] = {"steps": fit_steps, "lr": lr, "optimizer": "Adam"}
                if history:
                    targets = _class_targets(loader, max(num_batches, 4))
                    record(
                        "fitting",
                        analyse_fit(
                            history,
                            baseline_loss=constant_predictor_loss(targets),
                            initial_loss=initial,
                        ),
                    )
                else:
                    skipped["fitting"] = "no history given and fit_steps=0"
    details["timings"] = timings
    causes = find_causes(checks, details)
    diagnosis = Diagnosis(
        checks=checks,
        recommendations=recommendations_for(checks, causes),
        details=details,
        skipped=skipped,
        plotters=plotters,
        causes=causes,
    )
    if out is not None:
        diagnosis.write_report(out)
    return diagnosis
