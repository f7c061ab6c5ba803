"""One page per benchmark problem (issue 14): the test metric's learning curves and the mean
training loss (mean ± std over seeds, the tuned setting of each optimizer), and the tuning
sensitivity (final validation metric against the learning rate over the search)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np


def _band(ax: Any, steps: list, mean: list, std: list, label: str, color: Any) -> None:
    rows = [(s, m, d) for s, m, d in zip(steps, mean, std) if m is not None]
    if not rows:
        return
    x, m, d = (np.array(c, dtype=float) for c in zip(*rows))
    ax.plot(x, m, color=color, lw=1.5, label=label)
    ax.fill_between(x, m - d, m + d, color=color, alpha=0.2, lw=0)


def plot_problem(problem: Any, section: dict, path: str | os.PathLike[str]) -> Path:
    """The three-panel figure of one problem's results section (see ``run_benchmark``)."""
    from dlskills._plot import (
        label_axes,
        legend,
        new_figure,
        percent_axis,
        pyplot,
        save_figure,
        threshold_line,
    )

    fig, axes = new_figure(
        1,
        3,
        size=(5.2, 4.2),
        title=f"{problem.name}: {problem.description}, "
        f"{problem.steps} steps (tuned setting, mean ± std over seeds)",
    )
    curves, losses, sensitivity = axes[0]
    percent = "accuracy" in problem.metric
    palette = pyplot().get_cmap("tab20").colors  # dark shades first, then the light ones
    colors = iter((palette[::2] + palette[1::2]) * 2)
    for name, s in section["optimizers"].items():
        if "skipped" in s:
            continue
        color = next(colors)
        seeds = len(s["seeds"])
        _band(
            curves,
            s["curve_steps"],
            s["test_curve_mean"],
            s["test_curve_std"],
            f"{name} ({seeds} seeds)",
            color,
        )
        _band(losses, s["curve_steps"], s["train_loss_mean"], s["train_loss_std"], name, color)
        primary = next(iter(s["space"]))
        points = sorted(
            (t["hparams"][primary], math.nan if t["val"] is None else t["val"]) for t in s["tuning"]
        )
        x, y = zip(*points)
        style = "o-" if len(s["space"]) == 1 else "o"  # Hammersley points: no line
        sensitivity.plot(x, y, style, color=color, ms=4, lw=1, label=f"{name} ({primary})")
        failed = [xi for xi, yi in points if math.isnan(yi)]
        if failed:
            low = np.nanmin(y) if not np.all(np.isnan(y)) else problem.target
            sensitivity.plot(failed, [low] * len(failed), "x", color=color, ms=6)
    target = f"{100 * problem.target:g} %" if percent else f"{problem.target:g}"
    threshold_line(curves, problem.target, f"target {target}")
    label_axes(curves, "training step", problem.metric, title="test metric")
    label_axes(losses, "training step", "training loss (mean over interval)", title="training loss")
    label_axes(
        sensitivity,
        "learning rate (or step multiplier), log scale",
        f"final validation {problem.metric.replace('test ', '')}",
        title="tuning sensitivity (× = diverged; dots: lr and others varied)",
    )
    sensitivity.set_xscale("log")
    if problem.goal == "min":
        curves.set_yscale("log")
        sensitivity.set_yscale("log")
    if percent:
        percent_axis(curves)
        percent_axis(sensitivity)
    losses.set_yscale("log")
    for ax in (curves, losses, sensitivity):
        legend(ax)
    return save_figure(fig, path, dpi=80)
