"""Plotting support shared by every module that draws: headless backend, consistent style,
atomic PNG writes. ``import matplotlib`` happens here, lazily, never at package import."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    if os.environ.get("MPLBACKEND") is None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def new_figure(nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] = (6.0, 4.0)) -> Any:
    """A figure and its axes (``plt.subplots``) sized ``size`` per panel."""
    plt = pyplot()
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False, layout="tight"
    )
    return fig, (axes[0, 0] if nrows == ncols == 1 else axes)


def save_figure(fig: Any, path: str | os.PathLike[str], *, dpi: int = 120) -> Path:
    """Write ``fig`` as PNG atomically and close it."""
    from dlskills._io import atomic_write

    plt = pyplot()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    finally:
        plt.close(fig)
