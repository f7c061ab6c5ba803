"""Guide-style diagrams (1603.07285's figures) of a convolution or transposed convolution.

Each panel shows one output position: the (padded) input grid, with the cells that the kernel
reads at that position shaded, next to the output grid with the position highlighted. A
transposed convolution is drawn as the guide draws it: as its equivalent direct convolution on
the input stretched by s − 1 zeros between units, padded by p' = k̂ − p − 1 (and a on the
bottom/right), with stride 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from dlskills.nn.conv.arith import conv_out, conv_transpose_out, effective_kernel, pool_out

_COLOURS = {"input": "#4f81bd", "zero": "#ffffff", "pad": "#ffffff"}
_KERNEL = "#1f3864"
_OUTPUT = "#8fd3e8"
_CURRENT = "#2a7f9e"


def _panel(
    ax,
    side: int,
    kind: Callable[[int, int], str],
    taps: list[tuple[int, int]],
    out_side: int,
    current: tuple[int, int],
) -> None:
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    # one collection per panel: a diagram has hundreds of cells, drawn in one call
    tapped = set(taps)
    cells, faces, edges, styles, alphas = [], [], [], [], []
    for r in range(side):
        for c in range(side):
            cell = kind(r, c)
            cells.append(Rectangle((c, -r - 1), 1, 1))
            faces.append(_KERNEL if (r, c) in tapped else _COLOURS[cell])
            edges.append("#7f7f7f")
            styles.append("--" if cell == "pad" else "-")
            alphas.append(0.85 if (r, c) in tapped and cell != "input" else 1.0)
    left = side + 1
    for r in range(out_side):
        for c in range(out_side):
            cells.append(Rectangle((left + c, -r - 1), 1, 1))
            faces.append(_CURRENT if (r, c) == current else _OUTPUT)
            edges.append("#3f3f3f")
            styles.append("-")
            alphas.append(1.0)
    from matplotlib.colors import to_rgba

    ax.add_collection(
        PatchCollection(
            cells,
            facecolors=[to_rgba(f, a) for f, a in zip(faces, alphas)],
            edgecolors=edges,
            linestyles=styles,
            linewidths=0.8,
        )
    )
    ax.set_xlim(-0.5, left + out_side + 0.5)
    ax.set_ylim(-max(side, out_side) - 0.5, 0.5)
    ax.set_aspect("equal")
    ax.axis("off")


def draw_convolution(
    path: str | os.PathLike[str],
    i: int,
    k: int,
    s: int = 1,
    p: int = 0,
    d: int = 1,
    *,
    transposed: bool = False,
    output_padding: int = 0,
    pool: bool = False,
    ceil_mode: bool = False,
    max_side: int = 4,
) -> Path:
    """Draw the guide-style diagram of a square convolution (or pooling, or transposed
    convolution with input size ``i``) to the PNG ``path``; returns the path written.

    One panel per output position, laid out as the output grid (a 3×3 output gives 3×3
    panels); an output wider than ``max_side`` shows its top-left ``max_side``×``max_side``
    positions and says so in the title. A legend names the colours.

    With pooling in ``ceil_mode`` the last window may reach past the padding; the taps out
    there read nothing and are not drawn."""
    from dlskills._plot import new_figure, save_figure

    k_hat = effective_kernel(k, d)
    if transposed:
        o = conv_transpose_out(i, k, s, p, output_padding, d)
        a, pad = output_padding, k_hat - p - 1
        if pad < 0:
            raise ValueError(f"cannot draw: padding p={p} exceeds k̂ − 1 = {k_hat - 1}")
        stretched = i + (i - 1) * (s - 1)
        side, step = stretched + 2 * pad + a, 1

        def kind(r: int, c: int) -> str:
            y, x = r - pad, c - pad
            if not (0 <= y < stretched and 0 <= x < stretched):
                return "pad"
            return "input" if y % s == 0 and x % s == 0 else "zero"

        title = f"transposed conv: i'={i}, k={k}, s={s}, p={p}, a={a}, d={d} → o'={o}"
    else:
        o = pool_out(i, k, s, p, d, ceil_mode=ceil_mode) if pool else conv_out(i, k, s, p, d)
        side, pad, step = i + 2 * p, p, s

        def kind(r: int, c: int) -> str:
            inside = pad <= r < pad + i and pad <= c < pad + i
            return "input" if inside else "pad"

        what = "pooling" if pool else "convolution"
        title = f"{what}: i={i}, k={k}, s={s}, p={p}, d={d} → o={o}"
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    shown = min(o, max_side)
    if shown < o:
        title += f" (the first {shown}×{shown} of {o}×{o} output positions)"
    fig, axes = new_figure(shown, shown, size=(2.6, 2.4), title=title)
    axes = [[axes]] if shown == 1 else axes
    for row in range(shown):
        for col in range(shown):
            taps = [
                (row * step + ky * d, col * step + kx * d) for ky in range(k) for kx in range(k)
            ]
            _panel(axes[row][col], side, kind, taps, o, (row, col))
            axes[row][col].set_title(f"output ({row}, {col})", fontsize=9)
    fig.legend(
        handles=_legend_handles(transposed),
        loc="lower center",
        ncols=6,
        fontsize=8,
        frameon=False,
    )
    fig.get_layout_engine().set(rect=(0, 0.06 if shown > 1 else 0.12, 1, 1))
    if shown == 1:  # one panel: new_figure put the title on the panel
        axes[0][0].set_title(f"{title}\noutput (0, 0)", fontsize=9)
    return save_figure(fig, path)


def _legend_handles(transposed: bool) -> list:
    """What each colour of a panel means (the guide's colours)."""
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor=_COLOURS["input"], edgecolor="#7f7f7f", label="input"),
        Patch(facecolor=_COLOURS["pad"], edgecolor="#7f7f7f", linestyle="--", label="padding"),
    ]
    if transposed:
        handles.append(
            Patch(facecolor=_COLOURS["zero"], edgecolor="#7f7f7f", label="inserted zero")
        )
    handles += [
        Patch(facecolor=_KERNEL, edgecolor="#7f7f7f", label="kernel taps"),
        Patch(facecolor=_OUTPUT, edgecolor="#3f3f3f", label="output"),
        Patch(facecolor=_CURRENT, edgecolor="#3f3f3f", label="this output position"),
    ]
    return handles
