"""Reproduction of catalog 1905.10268: Bosman, Engelbrecht & Helbig, "Loss Surface Modality of
Feed-Forward Neural Network Architectures" (IJCNN 2020).

Claim (abstract, Sec. V): "An increase in the hidden layer width is shown to effectively reduce
the number of local minima, and simplify the shape of the global attractor."

Measured with ``dlskills.diagnose.landscape.count_basins`` on a 2-D task (64 points,
y = [x₁x₂ > 0]) for one-hidden-layer tanh nets of width 4 and 64, trained by Adam from several
random inits: the minima reached are grouped into basins by the loss barrier on the straight
line between them (same basin below 0.05 nats). Per seed: basins per init, and the mean barrier
between the minima (how rugged the surface between the attractors is).

Deviation: the paper samples the surface by gradient walks and counts minima with fitness-
landscape metrics; we count basins by linear-interpolation barriers. Minima that differ only by
a permutation of hidden units are separated by a barrier on the straight line, so this count
sees every init as its own basin at both widths, while the barriers fall with width.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable

import torch
from torch import nn

from dlskills.diagnose.landscape import count_basins
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1905.10268"
WIDTHS = (4, 64)
TOLERANCE = 0.05

CLAIM = Claim(
    text="An increase in the hidden layer width is shown to effectively reduce the number of "
    "local minima, and simplify the shape of the global attractor.",
    value="fewer minima and a simpler attractor for wider hidden layers",
    source="Abstract; Sec. V",
)


def _task(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 2, generator=generator)
    return x, (x[:, 0] * x[:, 1] > 0).long()


def _basins(width: int, seed: int, inits: int, steps: int):
    x, y = _task(seed)
    loss_fn = nn.CrossEntropyLoss()

    def factory() -> nn.Module:
        return nn.Sequential(nn.Linear(2, width), nn.Tanh(), nn.Linear(width, 2))

    def train(model: nn.Module) -> None:
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        for _ in range(steps):
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return count_basins(
        factory, train, inits, loss_fn, [(x, y)], tolerance=TOLERANCE, seed=1000 * seed
    )


def _mean_barrier(result) -> float:
    n = len(result.labels)
    return statistics.fmean(float(result.barriers[i, j]) for i in range(n) for j in range(i + 1, n))


def _plot(results, path) -> None:
    from dlskills._plot import new_figure, save_figure

    fig, axes = new_figure(1, len(WIDTHS), size=(4.0, 3.6))
    top = max(float(results[width].barriers.max()) for width in WIDTHS)  # one colour scale
    for ax, width in zip(axes.flat, WIDTHS):
        image = ax.imshow(results[width].barriers.numpy(), cmap="viridis", vmin=0, vmax=top)
        ax.set(title=f"width {width}: barriers (nats)", xlabel="minimum", ylabel="minimum")
        fig.colorbar(image, ax=ax)
    save_figure(fig, path)


@register(CATALOG_ID, fast="partial")
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Basins per init and barriers between minima, width 4 vs 64 (see module doc)."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0, 1), "full": range(5)})
    inits = run.pick(fast=6, full=16)
    steps = run.pick(fast=200, full=500)
    per_seed = [{w: _basins(w, seed, inits, steps) for w in WIDTHS} for seed in run.seeds]
    run.figure("barriers.png", lambda path: _plot(per_seed[0], path))
    narrow, wide = WIDTHS
    wide_basins = statistics.fmean(r[wide].n_basins / inits for r in per_seed)
    note = (
        "Linear-path barriers separate minima that differ by a permutation of hidden units, "
        "so this basin count does not fall with width; the barriers between minima do"
        if wide_basins >= 0.5
        else ""
    )

    def row(name, unit, value) -> Measured:
        return Measured.over_seeds(name, unit, [value(r) for r in per_seed], run.seeds)

    return run.result(
        claim=CLAIM,
        measured=[
            row(f"basins per init, width {narrow}", "", lambda r: r[narrow].n_basins / inits),
            row(f"basins per init, width {wide}", "", lambda r: r[wide].n_basins / inits),
            row(f"mean barrier, width {narrow}", "nats", lambda r: _mean_barrier(r[narrow])),
            row(f"mean barrier, width {wide}", "nats", lambda r: _mean_barrier(r[wide])),
            row(
                f"barrier ratio {wide}/{narrow}",
                "",
                lambda r: _mean_barrier(r[wide]) / _mean_barrier(r[narrow]),
            ),
            row(f"worst final loss, width {wide}", "nats", lambda r: max(r[wide].final_losses)),
        ],
        thresholds=[
            Threshold(
                f"basins per init, width {wide}",
                "<",
                0.5,
                f"fewer minima: most of the {inits} inits share a basin",
            ),
            Threshold(f"barrier ratio {wide}/{narrow}", "<", 0.5, "a simpler global attractor"),
        ],
        config={
            "widths": list(WIDTHS),
            "inits": inits,
            "steps": steps,
            "tolerance": TOLERANCE,
            "task": "64 points, y = [x1·x2 > 0]",
        },
        note=note,
    )
