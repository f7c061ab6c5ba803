"""One page per benchmark problem (issue 14): the test metric's learning curves and the mean
training loss (mean ± std over seeds, the tuned setting of each optimizer), the tuning
sensitivity (final validation metric against the learning rate over the search) and a key that
names each optimizer's tuned setting and final test metric."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

_LARGEST = 1e30


def _band(ax: Any, steps: list, mean: list, std: list, color: Any, log: bool) -> Any:
    rows = [(s, m, math.nan if d is None else d) for s, m, d in zip(steps, mean, std)]
    rows = [row for row in rows if row[1] is not None]
    if not rows:
        return None
    x, m, d = (np.array(c, dtype=float) for c in zip(*rows))
    m[np.abs(m) > _LARGEST] = np.nan  # on the way to overflow: matplotlib cannot scale it
    (line,) = ax.plot(x, m, color=color, lw=1.5)
    low = np.maximum(m - d, m / 10) if log else m - d  # a log axis cannot show m − d ≤ 0
    ax.fill_between(x, low, m + d, color=color, alpha=0.15, lw=0)
    return line


def _describe(name: str, s: dict, percent: bool) -> str:
    setting = ", ".join(f"{k}={v:g}" for k, v in (s["best_hparams"] or {}).items())
    if s["test_mean"] is None:
        return f"{name} ({setting}): diverged or failed on every seed"
    scale = 100 if percent else 1
    unit = " %" if percent else ""
    value = f"{scale * s['test_mean']:.3g} ± {scale * s['test_std']:.2g}{unit}"
    steps = s["steps_to_target_median"]
    reached = "target not reached" if steps is None else f"target at step {steps:.0f}"
    lost = f", {s['diverged']} of {len(s['seeds'])} seeds diverged" if s["diverged"] else ""
    return f"{name} ({setting}): {value}, {reached}{lost}"


def plot_problem(problem: Any, section: dict, path: str | os.PathLike[str]) -> Path:
    """The four-panel page of one problem's results section (see ``run_benchmark``)."""
    from dlskills._plot import (
        label_axes,
        new_figure,
        percent_axis,
        pyplot,
        save_figure,
        threshold_line,
    )

    fig, axes = new_figure(
        2,
        2,
        size=(6.4, 4.0),
        title=f"{problem.name}: {problem.description}, {problem.steps} steps; "
        f"each optimizer at its tuned setting, mean ± std over seeds",
    )
    (curves, losses), (sensitivity, key) = axes
    percent = "accuracy" in problem.metric
    log = problem.goal == "min"
    palette = pyplot().get_cmap("tab20").colors  # dark shades first, then the light ones
    colors = iter((palette[::2] + palette[1::2]) * 2)
    handles, labels, initial, diverged = [], [], [], []
    for name, s in section["optimizers"].items():
        if "skipped" in s:
            continue
        color = next(colors)
        line = _band(
            curves, s["curve_steps"], s["test_curve_mean"], s["test_curve_std"], color, log
        )
        _band(losses, s["curve_steps"], s["train_loss_mean"], s["train_loss_std"], color, True)
        if line is not None:
            handles.append(line)
            labels.append(_describe(name, s, percent))
        if s["test_curve_mean"] and s["test_curve_mean"][0] is not None:
            initial.append(s["test_curve_mean"][0])
        primary = next(iter(s["space"]))
        points = sorted(
            (t["hparams"][primary], math.nan if t["val"] is None else t["val"]) for t in s["tuning"]
        )
        style = "o-" if len(s["space"]) == 1 else "o"  # Hammersley points: no line
        x, y = (np.array(c, dtype=float) for c in zip(*points))
        y[np.abs(y) > _LARGEST] = np.nan
        if log and initial:  # beyond 10× the starting value counts as diverged here
            y[y > 10 * max(initial)] = np.nan
        sensitivity.plot(x, y, style, color=color, ms=4, lw=1)
        diverged += [(xi, color) for xi in x[np.isnan(y)]]
    floor = problem.target * 1e-4  # a Gauss-Newton method can reach 1e-32 on a surface
    target = f"{100 * problem.target:g} %" if percent else f"{problem.target:g}"
    threshold_line(curves, problem.target, f"target {target}")
    curves.legend(fontsize=8)
    label_axes(
        curves,
        "training step",
        problem.metric,
        title="test metric" + (f" (axis floor {floor:g})" if log else ""),
    )
    label_axes(
        losses, "training step", "training loss (mean over the interval)", title="training loss"
    )
    label_axes(
        sensitivity,
        "learning rate (or its multiplier), log scale",
        f"final validation {problem.metric.replace('test ', '')}",
        title="tuning sensitivity (× on top: diverged; dots: other hyper-parameters varied too)",
    )
    sensitivity.set_xscale("log")
    for ax in (curves, sensitivity) if log else ():
        ax.set_yscale("log")
        ax.set_ylim(bottom=max(ax.get_ylim()[0], floor))
    if percent:
        percent_axis(curves)
        percent_axis(sensitivity)
    losses.set_yscale("log")
    top = sensitivity.get_ylim()[1]
    for xi, color in diverged:  # along the top edge
        sensitivity.plot([xi], [top], "x", color=color, ms=7, clip_on=False)
    sensitivity.set_ylim(top=top)
    key.axis("off")
    key.legend(
        handles,
        labels,
        loc="center",
        fontsize=8,
        title=f"optimizer (tuned setting): final {problem.metric}, mean ± std",
        title_fontsize=8,
        frameon=False,
    )
    return save_figure(fig, path, dpi=72)
