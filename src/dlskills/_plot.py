"""Plotting support shared by every module that draws: headless backend, one style, atomic PNG
writes. ``import matplotlib`` happens here, lazily, never at package import.

The style every figure follows (issue 16: a figure must be readable without the prose):
a title (``new_figure(title=...)`` or per panel), axis labels with units (``label_axes``), a
legend whenever more than one series is drawn (``legend``), threshold lines that say what they
are (``threshold_line``), integer ticks for counts such as epochs, steps and layers
(``integer_ticks``), layer names instead of indices (``name_ticks``), colour bars with a label
(``colorbar``) and percent axes where the text quotes percent (``percent_axis``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    if os.environ.get("MPLBACKEND") is None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def new_figure(
    nrows: int = 1,
    ncols: int = 1,
    *,
    size: tuple[float, float] = (6.0, 4.0),
    title: str | None = None,
) -> Any:
    """A figure and its axes (``plt.subplots``) sized ``size`` per panel; ``title`` is the
    figure's title (for one panel: the panel's)."""
    plt = pyplot()
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False, layout="tight"
    )
    single = nrows == ncols == 1
    if title:
        if single:
            axes[0, 0].set_title(title)
        else:
            fig.suptitle(title)
    return fig, (axes[0, 0] if single else axes)


def label_axes(ax: Any, x: str, y: str, *, title: str | None = None) -> None:
    """Axis labels (with their units, e.g. ``"step time (ms)"``) and an optional panel title."""
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if title is not None:
        ax.set_title(title)


def integer_ticks(ax: Any, axis: str = "x") -> None:
    """Ticks only at whole numbers on ``axis`` ("x", "y" or "both"): epochs, steps, layers."""
    from matplotlib.ticker import MaxNLocator

    for name in ("x", "y") if axis == "both" else (axis,):
        getattr(ax, f"{name}axis").set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def name_ticks(ax: Any, names: Sequence[str], axis: str = "x", *, rotation: float = 0) -> None:
    """Tick ``i`` of ``axis`` labelled ``names[i]`` (e.g. layer names, not indices)."""
    setter = ax.set_xticks if axis == "x" else ax.set_yticks
    setter(range(len(names)), list(names), rotation=rotation, fontsize=7 if len(names) > 8 else 8)
    if axis == "x" and rotation:
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")


def percent_axis(ax: Any, axis: str = "y", *, fraction: bool = True) -> None:
    """Show ``axis`` in percent; ``fraction``: the data are fractions (0.97 is shown 97 %)."""
    from matplotlib.ticker import PercentFormatter

    getattr(ax, f"{axis}axis").set_major_formatter(PercentFormatter(1.0 if fraction else 100.0))


def threshold_line(
    ax: Any,
    value: float,
    label: str,
    *,
    axis: str = "y",
    color: str = "tab:red",
    linestyle: str = "--",
) -> Any:
    """A horizontal (``axis="y"``) or vertical line at ``value`` with a legend entry ``label``
    (e.g. ``"FAIL below 1e-5"``); call ``legend(ax)`` after drawing."""
    draw = ax.axhline if axis == "y" else ax.axvline
    return draw(value, color=color, linestyle=linestyle, linewidth=1.0, label=label)


def legend(ax: Any, **kwargs: Any) -> Any:
    """The axes' legend in the common style (None when nothing is labelled)."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    kwargs.setdefault("fontsize", 8)
    kwargs.setdefault("framealpha", 0.8)
    return ax.legend(handles, labels, **kwargs)


def colorbar(fig: Any, mappable: Any, ax: Any, label: str, **kwargs: Any) -> Any:
    """A colour bar for ``mappable`` beside ``ax`` (an Axes or a list of them), labelled."""
    bar = fig.colorbar(mappable, ax=ax, **kwargs)
    bar.set_label(label)
    return bar


def save_figure(fig: Any, path: str | os.PathLike[str], *, dpi: int = 120) -> Path:
    """Write ``fig`` as PNG atomically and close it."""
    from dlskills._io import atomic_write

    plt = pyplot()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    finally:
        plt.close(fig)
