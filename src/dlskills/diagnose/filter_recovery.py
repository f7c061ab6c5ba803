"""Teacher–student filter recovery in a two-layer nonlinear CNN (catalog 1905.10157; Yu, Zhang &
Zhu, "On the Learning Dynamics of Two-layer Nonlinear Convolutional Neural Networks", 2019).

The paper follows SGD on a two-layer CNN f(x) = Σ_j Σ_p σ(⟨w_j, x_p⟩) (x_p the patches of the
input, σ = ReLU, the second layer fixed) and shows that filters move towards the patterns that
decide the output and come to dominate. The check makes the deciding patterns known by drawing
the labels from a teacher of the same form:

    teacher:  y(x) = (1/P) Σ_p Σ_{j ≤ K} ReLU(⟨w*_j, x_p⟩)          K unit-norm filters w*_j
    student:  ŷ(x) = (1/P) Σ_p Σ_{i ≤ K'} ReLU(⟨w_i, x_p⟩)         K' ≥ K filters, small init

over P non-overlapping patch×patch patches of Gaussian images (a stride-``patch`` convolution),
trained by SGD with momentum on the squared error of fresh batches. Recovery means: each
teacher filter has a student filter pointing its way (cosine ≈ 1), every student filter points
at some teacher filter, and the norms of the students that share a teacher's direction add up
to that teacher's norm (ReLU(a·⟨w, x⟩) = a·ReLU(⟨w, x⟩) for a ≥ 0, so a filter may be split
among several students; the function is recovered, and with it the filters up to that split).

The default teacher filters are 4×4 strokes (a horizontal bar, a vertical bar, a diagonal), so
the filter plot shows random students turning into recognisable patterns. Deviation: the paper
studies a classification task in which a key pattern decides the label; the teacher–student
regression is the controlled version of that setting (the dlskills catalog entry asks for it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class TwoLayerCNN(nn.Module):
    """x (N, 1, H, W) ↦ mean over patch positions of Σ_filters ReLU(⟨w, patch⟩); the patches are
    the non-overlapping ``patch``×``patch`` squares (a convolution with stride = kernel)."""

    def __init__(self, filters: int, patch: int) -> None:
        super().__init__()
        if filters < 1 or patch < 1:
            raise ValueError(f"filters and patch must be ≥ 1, got {filters} and {patch}")
        self.conv = nn.Conv2d(1, filters, patch, stride=patch, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv(x)).mean(dim=(2, 3)).sum(dim=1)

    @property
    def filters(self) -> Tensor:
        """The filters as (filters, patch, patch)."""
        return self.conv.weight.detach()[:, 0]


def stroke_filters(patch: int = 4) -> Tensor:
    """Unit-norm patch×patch strokes: a horizontal bar, a vertical bar and the diagonal."""
    horizontal = torch.zeros(patch, patch)
    horizontal[patch // 2 - 1] = 1.0
    vertical = horizontal.T.clone()
    diagonal = torch.eye(patch)
    strokes = torch.stack([horizontal, vertical, diagonal])
    return strokes / strokes.flatten(1).norm(dim=1)[:, None, None]


@dataclass
class FilterRecovery:
    """A run: the teacher's filters, the student's filters at every snapshot step, the loss at
    every step."""

    teacher: Tensor
    steps: list[int] = field(default_factory=list)
    snapshots: list[Tensor] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)

    def cosines(self, snapshot: int = -1) -> Tensor:
        """(student filters, teacher filters) cosine similarities at a snapshot."""
        student = F.normalize(self.snapshots[snapshot].flatten(1), dim=1)
        return student @ F.normalize(self.teacher.flatten(1), dim=1).T

    def best_cosine_per_teacher(self, snapshot: int = -1) -> Tensor:
        return self.cosines(snapshot).max(dim=0).values

    def best_cosine_per_student(self, snapshot: int = -1) -> Tensor:
        return self.cosines(snapshot).max(dim=1).values

    def norm_per_teacher(self, snapshot: int = -1) -> Tensor:
        """For each teacher filter, the summed norm of the student filters closest to it."""
        owner = self.cosines(snapshot).argmax(dim=1)
        norms = self.snapshots[snapshot].flatten(1).norm(dim=1)
        return torch.zeros(len(self.teacher)).index_add_(0, owner, norms)


def teacher_student(
    teacher_filters: Tensor | None = None,
    *,
    student_filters: int = 6,
    grid: int = 3,
    steps: int = 2000,
    batch_size: int = 256,
    lr: float = 0.05,
    momentum: float = 0.9,
    init_scale: float = 0.1,
    seed: int = 0,
    snapshot_every: int = 25,
    progress: Callable[[int, int, str], Any] | None = None,
) -> FilterRecovery:
    """Train a ``student_filters``-filter student on a teacher with ``teacher_filters`` (K, p, p)
    (default ``stroke_filters()``) over grid×grid patches of N(0, 1) images.
    ``progress(done, total, what)`` is called after every step."""
    teacher_weights = stroke_filters() if teacher_filters is None else teacher_filters.float()
    if teacher_weights.dim() != 3 or teacher_weights.shape[1] != teacher_weights.shape[2]:
        raise ValueError(f"teacher_filters must be (K, p, p), got {tuple(teacher_weights.shape)}")
    if steps < 1 or snapshot_every < 1 or grid < 1:
        raise ValueError("steps, snapshot_every and grid must be ≥ 1")
    patch = teacher_weights.shape[1]
    generator = torch.Generator().manual_seed(seed)
    teacher = TwoLayerCNN(len(teacher_weights), patch)
    student = TwoLayerCNN(student_filters, patch)
    with torch.no_grad():
        teacher.conv.weight.copy_(teacher_weights[:, None])
        student.conv.weight.copy_(
            torch.randn(student.conv.weight.shape, generator=generator) * init_scale
        )
    teacher.requires_grad_(False)
    optimizer = torch.optim.SGD(student.parameters(), lr=lr, momentum=momentum)
    result = FilterRecovery(teacher_weights.clone())
    size = grid * patch
    for step in range(steps + 1):
        if step % snapshot_every == 0 or step == steps:
            result.steps.append(step)
            result.snapshots.append(student.filters.clone())
        if step == steps:
            break
        x = torch.randn(batch_size, 1, size, size, generator=generator)
        loss = F.mse_loss(student(x), teacher(x))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        result.losses.append(loss.item())
        if progress is not None:
            progress(step + 1, steps, f"loss {result.losses[-1]:.3g}")
    return result


def plot_filter_recovery(
    result: FilterRecovery,
    path: str | Path,
    *,
    at_steps: Sequence[int] = (0, 50, 100, 200, 400),
) -> Path:
    """Left: the teacher's filters, then the student's filters (one row each, drawn at its own
    scale) at the snapshots nearest ``at_steps`` and at the end. Right: each teacher filter's
    best student cosine and the loss over training."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    from dlskills._plot import colorbar, integer_ticks, label_axes, pyplot, save_figure

    picks = sorted(
        {min(range(len(result.steps)), key=lambda i: abs(result.steps[i] - s)) for s in at_steps}
        | {len(result.steps) - 1}
    )
    rows = max(len(result.snapshots[0]), len(result.teacher))
    columns = len(picks) + 1
    fig = pyplot().figure(figsize=(1.1 * columns + 6.5, 0.75 * rows + 1.3))
    fig.suptitle("Teacher-student: the student's filters recover the teacher's", fontsize=10)
    tiles = fig.add_gridspec(rows, columns + 8, left=0.02, right=0.92, top=0.86, bottom=0.12)
    shown = []
    panels = [("teacher", result.teacher)]
    panels += [(f"step {result.steps[i]}", result.snapshots[i]) for i in picks]
    for column, (title, filters) in enumerate(panels):
        for row, filt in enumerate(filters):
            ax = fig.add_subplot(tiles[row, column])
            scale = float(filt.abs().max()) or 1.0
            ax.imshow(filt.numpy(), cmap="RdBu_r", vmin=-scale, vmax=scale)
            ax.set_xticks([])
            ax.set_yticks([])
            shown.append(ax)
            if row == 0:
                ax.set_title(title, fontsize=8)
    # every filter is drawn at its own scale: one bar in units of the filter's largest weight
    colorbar(
        fig,
        ScalarMappable(Normalize(-1.0, 1.0), "RdBu_r"),
        shown,
        "weight ÷ the filter's max |weight|",
        fraction=0.02,
        pad=0.01,
    )
    curve_ax = fig.add_subplot(tiles[:, columns + 2 :])
    best = torch.stack([result.best_cosine_per_teacher(i) for i in range(len(result.steps))])
    for j in range(best.shape[1]):
        curve_ax.plot(result.steps, best[:, j].tolist(), label=f"teacher filter {j + 1}")
    label_axes(curve_ax, "training step", "best student cosine")
    integer_ticks(curve_ax, "x")
    curve_ax.set_ylim(0, 1.02)
    loss_ax = curve_ax.twinx()
    loss_ax.semilogy(
        range(1, len(result.losses) + 1),
        result.losses,
        color="0.6",
        linewidth=0.8,
        label="training loss (right axis)",
    )
    loss_ax.set_ylabel("squared error (log scale)")
    handles = [*curve_ax.get_legend_handles_labels()[0], *loss_ax.get_legend_handles_labels()[0]]
    curve_ax.legend(handles=handles, fontsize=8, loc="center right")
    curve_ax.set_title("cosine to each teacher filter", fontsize=9)
    return save_figure(fig, path)


__all__ = [
    "FilterRecovery",
    "TwoLayerCNN",
    "plot_filter_recovery",
    "stroke_filters",
    "teacher_student",
]
