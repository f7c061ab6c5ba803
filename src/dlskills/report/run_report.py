"""The record of one training run: loss, accuracy and learning-rate curves as PNGs
(dlskills._plot) and a ``report.md`` that shows the results, the curves, the configuration and the
environment."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dlskills._io import atomic_write_text
from dlskills._plot import integer_ticks, label_axes, legend, new_figure, percent_axis, save_figure


def plot_curves(
    history: Sequence[dict[str, Any]],
    keys: Sequence[str],
    ylabel: str,
    path: Path,
    *,
    title: str,
    percent: bool = False,
) -> Path | None:
    """One line per ``key`` of the per-epoch ``history`` against the epoch; None if no data.
    ``percent``: the values are fractions, shown in percent (as report.md quotes them)."""
    series = {k: [(r["epoch"], r[k]) for r in history if r.get(k) is not None] for k in keys}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    fig, ax = new_figure(title=title)
    for key, points in series.items():
        epochs, values = zip(*points)
        ax.plot(epochs, values, marker="o", markersize=3, label=key.replace("_", " "))
    label_axes(ax, "epoch", ylabel)
    integer_ticks(ax, "x")
    if percent:
        percent_axis(ax, "y")
    ax.grid(alpha=0.3)
    legend(ax)
    return save_figure(fig, path)


def plot_lr(
    lr_history: Sequence[tuple[int, Sequence[float]]], path: Path, *, title: str
) -> Path | None:
    """Learning rate of parameter group 0 against the optimizer step."""
    if not lr_history:
        return None
    fig, ax = new_figure(title=title)
    steps = [step for step, _ in lr_history]
    ax.plot(steps, [rates[0] for _, rates in lr_history])
    label_axes(ax, "optimizer step", "learning rate")
    integer_ticks(ax, "x")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "–"
    return str(value)


def write_run_report(
    run_dir: str | os.PathLike[str],
    *,
    config: dict[str, Any],
    summary: dict[str, Any],
    history: Sequence[dict[str, Any]],
    lr_history: Sequence[tuple[int, Sequence[float]]] | None = None,
) -> Path:
    """Write loss.png, accuracy.png, lr.png and report.md into ``run_dir``; returns report.md."""
    run_dir = Path(run_dir)
    what = f"{summary.get('model')} on {summary.get('dataset')}, run {run_dir.name}"
    figures = {
        "Loss": plot_curves(
            history,
            ("train_loss", "val_loss"),
            # classification runs (the ones with an accuracy) train on cross-entropy, others MSE
            "cross-entropy loss (nats)" if "val_accuracy" in (history or [{}])[-1] else "MSE loss",
            run_dir / "loss.png",
            title=f"Loss per epoch: {what}",
        ),
        "Accuracy": plot_curves(
            history,
            ("train_accuracy", "val_accuracy"),
            "accuracy (%)",
            run_dir / "accuracy.png",
            title=f"Accuracy per epoch: {what}",
            percent=True,
        ),
        "Learning rate": plot_lr(
            lr_history or [], run_dir / "lr.png", title=f"Learning rate per step: {what}"
        ),
    }
    test_accuracy = summary.get("test_accuracy")
    lines = [
        f"# Run {run_dir.name}",
        "",
        f"{summary.get('model')} on {summary.get('dataset')} with {summary.get('optimizer')}, "
        f"seed {summary.get('seed')}.",
        "",
        "| result | value |",
        "|---|---|",
        "| test accuracy ({} checkpoint) | {} |".format(
            summary.get("evaluated_checkpoint", "final"),
            f"{100 * test_accuracy:.2f} %" if test_accuracy is not None else "–",
        ),
        f"| test loss | {_fmt(summary.get('test_loss'))} |",
        "| best validation accuracy | {} |".format(
            f"{100 * summary['best_val_accuracy']:.2f} %"
            if summary.get("best_val_accuracy") is not None
            else "–"
        ),
        f"| epochs / optimizer steps | {summary.get('epochs')} / {summary.get('steps')} |",
        f"| training time | {_fmt(summary.get('train_seconds'))} s |",
        f"| parameters | {summary.get('parameters'):,} |",
        "| stop reason | {}{} |".format(
            summary.get("stop_reason"),
            f" ({summary['stop_message']})" if summary.get("stop_message") else "",
        ),
        "",
    ]
    for title, path in figures.items():
        if path is not None:
            lines += [f"## {title}", "", f"![{title.lower()}]({path.name})", ""]
    if history:
        columns = [k for k in history[-1] if k != "seconds"]
        lines += ["## Metrics per epoch", "", "| " + " | ".join(columns) + " |"]
        lines.append("|" + "---|" * len(columns))
        lines += ["| " + " | ".join(_fmt(row.get(k)) for k in columns) + " |" for row in history]
        lines.append("")
    lines += ["## Configuration", "", "| key | value |", "|---|---|"]
    lines += [f"| {key} | {_fmt(value)} |" for key, value in config.items()]
    lines += ["", "## Environment", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {_fmt(value)} |" for key, value in summary.get("environment", {}).items()]
    return atomic_write_text(run_dir / "report.md", "\n".join(lines) + "\n")
