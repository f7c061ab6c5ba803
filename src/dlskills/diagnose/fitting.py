"""Over- and underfitting verdicts from learning curves (catalog underfitting, zhihu-12-tricks).

Given per-epoch rows (``train_loss``, ``val_loss`` and, for classification, ``train_accuracy``,
``val_accuracy``; a Trainer's ``history`` or a run's metrics.csv), ``analyse_fit`` measures:

* generalisation gap  G = train_accuracy - val_accuracy at the last row (without accuracies:
  (val_loss - train_loss) / val_loss), its trend (least-squares slope over the second half of
  the rows) and how far the validation loss has climbed above its minimum,
  R = val_loss_last / min(val_loss) - 1;
* underfitting ratio  U = train_loss_last / L₀, where the capacity baseline L₀ is the loss of the
  best constant predictor — the entropy of the class prior (ln C for balanced classes) for
  classification, the variance of the targets for regression — and whether the training loss has
  plateaued: its relative decrease over the last third of the rows is below 5%.

* instability (when the loss at the starting weights L_start is known, as in the doctor):
  I = max_k (train_loss_k - m_k) / max(m_k, 0.1 L₀), m_k = min(L_start, train_loss_(j<k)), how
  far the training loss climbed back above the best it had reached (a non-finite loss: I = inf).

Verdicts: overfitting FAILs when G > 0.2 or the validation loss rose R > 25% while the gap grows,
WARNs at G > 0.08 or R > 10%. Underfitting FAILs when U > 0.9 (the model is barely better than a
constant), WARNs when U > 0.5 (and says whether it has plateaued — add capacity — or is still
falling — train longer). unstable_training FAILs when I > 0.5 or the loss is not finite, WARNs
when I > 0.1: the steps throw the weights out of the basin they reached (learning rate too high).

``short_fit`` produces such rows when no curves exist: it trains a deep copy of the model for a
fixed number of Adam steps and evaluates it at evenly spaced points (the doctor's budget).
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlskills.diagnose._hooks import check_positive_int, model_device
from dlskills.diagnose.verdict import Check, grade

# Overfitting: a train/val accuracy gap of 8 points is noticeable on small data, 20 points means
# the model memorises (random labels drive it to 1 - 1/C).
GAP_WARN = 0.08
GAP_FAIL = 0.20
# Validation loss climbing above its minimum while the training loss falls is the classic
# early-stopping signal (Prechelt's generalisation loss GL = 100 (E_va / E_opt - 1)).
VAL_RISE_WARN = 0.10
VAL_RISE_FAIL = 0.25
# Underfitting: training loss as a fraction of the constant predictor's loss.
UNDERFIT_WARN = 0.5
UNDERFIT_FAIL = 0.9
# Relative decrease of the training loss over the last third of the curve below which the curve
# counts as a plateau.
PLATEAU_TOLERANCE = 0.05
# Instability: the training loss (measured on the recent batches) climbing back above its best.
# Evaluation noise on ~1,000 recent examples is a few percent, so 10 % is a WARN; gaining back
# half of the best loss means the steps throw the weights out of their basin (measured on 512
# digits, ReLU MLP 64-128-128-10, 200 Adam steps: lr 1e-3 → 0, lr 0.1 → 1.2, lr 1 → 5.1,
# lr 10 → 1.6e4). The denominator has a floor of a tenth of L₀ so that noise on a loss already
# near 0 does not count.
UNSTABLE_WARN = 0.10
UNSTABLE_FAIL = 0.50
UNSTABLE_FLOOR = 0.10


def _column(rows: Sequence[Mapping[str, Any]], key: str) -> list[float] | None:
    values = []
    for row in rows:
        value = row.get(key)
        if value in (None, ""):
            return None
        values.append(float(value))
    return values


def _slope(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    y = torch.tensor(values, dtype=torch.float64)
    x = torch.arange(len(values), dtype=torch.float64)
    x = x - x.mean()
    return float((x * (y - y.mean())).sum() / (x * x).sum())


@dataclass(frozen=True)
class FitAnalysis:
    rows: list[dict[str, float]]
    baseline_loss: float | None
    gap: float
    gap_kind: str
    gap_slope: float
    val_rise: float
    underfit_ratio: float | None
    plateaued: bool
    initial_loss: float | None = None
    instability: float | None = None

    def checks(self) -> list[Check]:
        overfit = grade(
            "overfitting",
            self.gap,
            warn=GAP_WARN,
            fail=GAP_FAIL,
            what=f"generalisation gap ({self.gap_kind}; trend {self.gap_slope:+.3g}/epoch, "
            f"val loss {self.val_rise:+.0%} above its minimum)",
        )
        rising = self.gap_slope > 0
        if overfit.verdict != "FAIL" and self.val_rise > VAL_RISE_FAIL and rising:
            overfit = Check(
                "overfitting",
                "FAIL",
                self.val_rise,
                VAL_RISE_FAIL,
                f"validation loss rose {self.val_rise:.0%} above its minimum while the gap grows "
                f"(FAIL > {VAL_RISE_FAIL:.0%}); gap {self.gap_kind} = {self.gap:.3g}",
            )
        elif overfit.verdict == "OK" and self.val_rise > VAL_RISE_WARN and rising:
            overfit = Check(
                "overfitting",
                "WARN",
                self.val_rise,
                VAL_RISE_WARN,
                f"validation loss rose {self.val_rise:.0%} above its minimum while the gap grows "
                f"(WARN > {VAL_RISE_WARN:.0%}); gap {self.gap_kind} = {self.gap:.3g}",
            )
        checks = [overfit]
        if self.underfit_ratio is not None:
            state = "plateaued" if self.plateaued else "still decreasing"
            checks.append(
                grade(
                    "underfitting",
                    self.underfit_ratio,
                    warn=UNDERFIT_WARN,
                    fail=UNDERFIT_FAIL,
                    what=f"final train loss / constant-predictor loss {self.baseline_loss:.3g} "
                    f"(train loss {state})",
                )
            )
        if self.instability is not None:
            checks.append(
                grade(
                    "unstable_training",
                    self.instability,
                    warn=UNSTABLE_WARN,
                    fail=UNSTABLE_FAIL,
                    what=f"rise of the training loss back above its best (start "
                    f"{self.initial_loss:.3g}, lowest {min(self._train_losses()):.3g}, "
                    f"last {self._train_losses()[-1]:.3g})",
                )
            )
        return checks

    def _train_losses(self) -> list[float]:
        return [float(row["train_loss"]) for row in self.rows]

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline_loss": self.baseline_loss,
            "gap": self.gap,
            "gap_kind": self.gap_kind,
            "gap_slope": self.gap_slope,
            "val_rise": self.val_rise,
            "underfit_ratio": self.underfit_ratio,
            "plateaued": self.plateaued,
            "initial_loss": self.initial_loss,
            "instability": self.instability,
            "rows": self.rows,
        }

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Train and validation loss and accuracy against the epoch (a run's curves) or the
        optimizer step (``short_fit``'s rows, which have no epochs)."""
        from dlskills._plot import (
            integer_ticks,
            label_axes,
            legend,
            new_figure,
            percent_axis,
            save_figure,
            threshold_line,
        )

        by_epoch = all("epoch" in row for row in self.rows)
        unit = "epoch" if by_epoch else "step"
        fig, axes = new_figure(
            1,
            2,
            size=(5.0, 3.6),
            title=f"Fitting: train vs validation per {unit}" + ("" if by_epoch else " (short fit)"),
        )
        x = [float(row.get(unit, i + 1)) for i, row in enumerate(self.rows)]
        for ax, metric in ((axes[0, 0], "loss"), (axes[0, 1], "accuracy")):
            for split in ("train", "val"):
                values = _column(self.rows, f"{split}_{metric}")
                if values is not None:
                    ax.plot(x, values, marker=".", label=split)
            label_axes(
                ax,
                "epoch" if by_epoch else "optimizer step",
                f"{metric} (%)" if metric == "accuracy" else metric,
            )
            integer_ticks(ax, "x")
        percent_axis(axes[0, 1], "y")
        if self.baseline_loss is not None:
            threshold_line(axes[0, 0], self.baseline_loss, "constant-predictor loss", color="grey")
        # the accuracy gap in percentage points, as the accuracy axis; the loss gap relative
        gap = f"{100 * self.gap:.1f} points" if "accuracy" in self.gap_kind else f"{self.gap:.0%}"
        axes[0, 0].set_title(f"loss; {self.gap_kind} gap {gap}")
        axes[0, 1].set_title("accuracy")
        for ax in axes[0]:
            legend(ax)
        return save_figure(fig, path)


def _instability(
    initial_loss: float, train_loss: Sequence[float], baseline_loss: float | None
) -> float:
    """max_k (L_k - m_k) / max(m_k, UNSTABLE_FLOOR L₀), m_k the best loss before k."""
    if not all(math.isfinite(v) for v in (initial_loss, *train_loss)):
        return math.inf
    floor = UNSTABLE_FLOOR * baseline_loss if baseline_loss is not None else 0.0
    best, rise = initial_loss, 0.0
    for loss in train_loss:
        rise = max(rise, (loss - best) / max(best, floor, 1e-12))
        best = min(best, loss)
    return rise


def analyse_fit(
    history: Sequence[Mapping[str, Any]],
    *,
    baseline_loss: float | None = None,
    initial_loss: float | None = None,
) -> FitAnalysis:
    """Measure the generalisation gap, its trend and the underfitting ratio of ``history``;
    with ``initial_loss`` (the loss at the starting weights) also the instability."""
    rows = [dict(row) for row in history]
    train_loss = _column(rows, "train_loss")
    val_loss = _column(rows, "val_loss")
    if not rows or train_loss is None or val_loss is None:
        raise ValueError("history: needs rows with 'train_loss' and 'val_loss' in every row")
    if baseline_loss is not None and not (math.isfinite(baseline_loss) and baseline_loss > 0):
        raise ValueError(f"baseline_loss must be a positive number, got {baseline_loss!r}")
    train_acc, val_acc = _column(rows, "train_accuracy"), _column(rows, "val_accuracy")
    if train_acc is not None and val_acc is not None:
        gaps = [t - v for t, v in zip(train_acc, val_acc)]
        kind = "train - val accuracy"
    else:
        gaps = [(v - t) / max(abs(v), 1e-12) for t, v in zip(train_loss, val_loss)]
        kind = "(val - train) / val loss"
    half = gaps[len(gaps) // 2 :]
    best_val = min(val_loss)
    val_rise = val_loss[-1] / best_val - 1 if best_val > 0 else 0.0
    third = train_loss[-max(2, math.ceil(len(train_loss) / 3)) :]
    plateaued = len(train_loss) >= 3 and (third[0] - third[-1]) < PLATEAU_TOLERANCE * abs(third[0])
    return FitAnalysis(
        rows=rows,
        baseline_loss=baseline_loss,
        gap=gaps[-1],
        gap_kind=kind,
        gap_slope=_slope(half),
        val_rise=val_rise,
        underfit_ratio=train_loss[-1] / baseline_loss if baseline_loss is not None else None,
        plateaued=plateaued,
        initial_loss=initial_loss,
        instability=(
            _instability(initial_loss, train_loss, baseline_loss)
            if initial_loss is not None
            else None
        ),
    )


def constant_predictor_loss(targets: torch.Tensor) -> float:
    """The capacity baseline L₀: entropy of the class prior (nats) for integer labels, the
    variance of the targets otherwise."""
    if not targets.dtype.is_floating_point and targets.dim() == 1:
        prior = torch.bincount(targets.long()).double()
        prior = prior[prior > 0] / prior.sum()
        return float(-(prior * prior.log()).sum())
    return float(targets.double().var(unbiased=False))


def _evaluate(
    model: nn.Module,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> dict[str, float]:
    was_training = model.training
    model.eval()
    loss_sum, correct, count, classify = 0.0, 0, 0, True
    with torch.no_grad():
        for x, y in batches:
            out = model(x)
            loss_sum += float(loss_fn(out, y)) * len(y)
            classify = classify and not y.dtype.is_floating_point and out.dim() == 2
            if classify:
                correct += int((out.argmax(1) == y).sum())
            count += len(y)
    model.train(was_training)
    result = {"loss": loss_sum / count}
    if classify:
        result["accuracy"] = correct / count
    return result


def start_loss(
    model: nn.Module,
    loader: Iterable[Any],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    num_batches: int = 2,
) -> float:
    """The loss at the starting weights on the first ``num_batches`` batches, measured as
    ``short_fit`` measures its rows (evaluation mode, on a copy): the reference of the
    instability measure."""
    from dlskills.diagnose._hooks import take_batches

    probe = copy.deepcopy(model)
    batches = take_batches(loader, num_batches, model_device(probe))
    return _evaluate(probe, batches, loss_fn)["loss"]


def short_fit(
    model: nn.Module,
    loader: Iterable[Any],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    val_loader: Iterable[Any] | None = None,
    steps: int = 200,
    lr: float = 1e-3,
    evaluations: int = 8,
    holdout_every: int = 5,
    seed: int = 0,
    progress: Callable[[int, int], Any] | None = None,
) -> list[dict[str, float]]:
    """Train a deep copy of ``model`` with Adam for ``steps`` steps and return ``evaluations``
    rows of train/val loss (and accuracy) — learning curves for ``analyse_fit``.

    Without ``val_loader``, every ``holdout_every``-th batch position of ``loader`` is held out
    of training (the first 16 such batches are the validation set); a loader that
    shuffles mixes those examples into training in later epochs, so pass ``val_loader`` then.
    Train metrics are measured on the most recent (at most 16) training batches. The user's
    model is not modified. ``progress(step, steps)`` is called after every step.
    """
    check_positive_int(steps, "steps")
    check_positive_int(evaluations, "evaluations")
    check_positive_int(holdout_every, "holdout_every", minimum=2)
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    student = copy.deepcopy(model)
    student.train()
    device = model_device(student)
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    if val_loader is not None:
        held_out = [(x.to(device), y.to(device)) for x, y, *_ in val_loader]
    else:
        held_out = [
            (x.to(device), y.to(device))
            for position, (x, y, *_) in enumerate(loader)
            if position % holdout_every == holdout_every - 1
        ][:16]
    if not held_out:
        raise ValueError("loader: too few batches to hold out a validation set; pass val_loader")
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    rows: list[dict[str, float]] = []
    checkpoints = {round(steps * (k + 1) / evaluations) for k in range(evaluations)}
    step = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        while step < steps:
            progressed = False
            for position, (x, y, *_) in enumerate(loader):
                x, y = x.to(device), y.to(device)
                if val_loader is None and position % holdout_every == holdout_every - 1:
                    continue
                progressed = True
                optimizer.zero_grad(set_to_none=True)
                loss_fn(student(x), y).backward()
                optimizer.step()
                step += 1
                if progress is not None:
                    progress(step, steps)
                seen = [*seen[-15:], (x, y)]
                if step in checkpoints:
                    train, val = (
                        _evaluate(student, seen, loss_fn),
                        _evaluate(student, held_out, loss_fn),
                    )
                    rows.append(
                        {"step": step}
                        | {f"train_{k}": v for k, v in train.items()}
                        | {f"val_{k}": v for k, v in val.items()}
                    )
                if step >= steps:
                    break
            if not progressed:
                raise ValueError("loader: yielded no training batch")
    return rows
