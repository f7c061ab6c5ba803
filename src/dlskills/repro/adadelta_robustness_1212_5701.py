"""Reproduction of catalog 1212.5701: Zeiler, "ADADELTA: An Adaptive Learning Rate Method" (2012).

Claim: ADADELTA needs no manual tuning of a learning rate and is robust to the selection of its
own hyper-parameters: with the update Δθ = −(RMS[Δθ]_{t−1} / RMS[g]_t)·g (decay ρ, constant ε)
and no learning rate, MNIST training is competitive with carefully tuned SGD, and its test error
changes little over ρ ∈ {0.9, 0.95, 0.99} × ε ∈ {1e-2, 1e-4, 1e-6, 1e-8} (abstract, Sec. 4.1,
Tables 1–2).

Measured (``torch.optim.Adadelta`` with lr = 1, i.e. no learning rate, against
``torch.optim.SGD``), the 64-32-10 ReLU MLP on digits shared by the optimizer reproductions,
minibatches of 32, the same batches for every run of a seed (``_digits_training``):
- ADADELTA at the paper's default ρ = 0.95, ε = 1e-6 against SGD at the best learning rate of
  a grid spaced by √10 from 1e-3 to 1 (chosen by final test accuracy): the accuracy gap;
- ADADELTA over the paper's 3 × 4 grid of (ρ, ε): its best and worst final test accuracy, the
  spread between them, against SGD's spread over the equally wide learning-rate grid.
Thresholds, fixed before the runs: untuned ADADELTA within 1 point of tuned SGD; its worst grid
setting within 2 points of its best (the paper's Table 2 spans a fraction of a point of test
error on MNIST). Deviation: digits and a small MLP instead of MNIST and the paper's 500-unit
network, and a few hundred steps instead of 6 epochs.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from dlskills.repro import _digits_training as digits
from dlskills.repro import register
from dlskills.repro._support import one_thread
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1212.5701"
RHOS = (0.9, 0.95, 0.99)
EPSILONS = (1e-2, 1e-4, 1e-6, 1e-8)
SGD_RATES = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)
CLAIM = Claim(
    text="ADADELTA requires no manual tuning of a learning rate and appears robust to the "
    "selection of its hyper-parameters: without a learning rate it trains about as well as "
    "tuned SGD, and its result changes little over its decay rate and constant.",
    value="no learning rate; robust over ρ × ε",
    source="abstract, Sec. 4.1, Tables 1–2",
)


def final_accuracy(make, data, seed: int, steps: int) -> float:
    """Test accuracy (%) of the shared digits MLP after ``steps`` minibatch steps."""
    model = digits.mlp(seed)
    curves = digits.train(
        model, make(model.parameters()), data, steps=steps, batch_size=32, seed=seed
    )
    return 100.0 * curves.final_accuracy


def _figure(path, grid: dict[tuple[float, float], float], sgd: dict[float, float]) -> None:
    from dlskills._plot import label_axes, new_figure, save_figure

    fig, axes = new_figure(1, 2, size=(4.6, 3.8))
    left, right = axes[0, 0], axes[0, 1]
    image = left.imshow(
        [[grid[(rho, eps)] for eps in EPSILONS] for rho in RHOS], cmap="viridis", aspect="auto"
    )
    left.set_xticks(range(len(EPSILONS)), [f"{eps:g}" for eps in EPSILONS])
    left.set_yticks(range(len(RHOS)), [f"{rho:g}" for rho in RHOS])
    for i, rho in enumerate(RHOS):
        for j, eps in enumerate(EPSILONS):
            left.text(j, i, f"{grid[(rho, eps)]:.1f}", ha="center", va="center", color="white")
    fig.colorbar(image, ax=left, label="test accuracy (%)")
    label_axes(left, "ε", "ρ", title="ADADELTA, no learning rate")
    right.semilogx(list(sgd), list(sgd.values()), "o-", label="SGD")
    right.axhspan(min(grid.values()), max(grid.values()), alpha=0.3, label="ADADELTA over ρ × ε")
    label_axes(right, "SGD learning rate", "test accuracy (%)", title="SGD over its learning rate")
    right.legend()
    save_figure(fig, path)


@register(CATALOG_ID, fast="partial")
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """ADADELTA without a learning rate against tuned SGD, and over its own ρ × ε grid."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0, 1, 2), "full": range(5)})
    steps = run.pick(fast=300, full=1500)
    per_seed = []
    with one_thread():  # the same numbers on every machine
        for seed in run.seeds:
            data = digits.data(seed)
            grid = {
                (rho, eps): final_accuracy(
                    lambda ps, rho=rho, eps=eps: torch.optim.Adadelta(ps, lr=1.0, rho=rho, eps=eps),
                    data,
                    seed,
                    steps,
                )
                for rho in RHOS
                for eps in EPSILONS
            }
            sgd = {
                lr: final_accuracy(lambda ps, lr=lr: torch.optim.SGD(ps, lr=lr), data, seed, steps)
                for lr in SGD_RATES
            }
            per_seed.append((grid, sgd))
    run.figure("adadelta_robustness.png", lambda p: _figure(p, *per_seed[0]))

    def row(name: str, values: list[float], unit: str = "%") -> Measured:
        return Measured.over_seeds(name, unit, values, run.seeds)

    default = [grid[(0.95, 1e-6)] for grid, _ in per_seed]
    tuned_sgd = [max(sgd.values()) for _, sgd in per_seed]
    spread = [max(grid.values()) - min(grid.values()) for grid, _ in per_seed]
    sgd_spread = [max(sgd.values()) - min(sgd.values()) for _, sgd in per_seed]
    return run.result(
        claim=CLAIM,
        measured=[
            row("ADADELTA test accuracy, ρ = 0.95, ε = 1e-6 (no lr)", default),
            row("SGD test accuracy, best learning rate", tuned_sgd),
            row(
                "ADADELTA − tuned SGD",
                [a - b for a, b in zip(default, tuned_sgd, strict=True)],
                "points",
            ),
            row("ADADELTA worst over ρ × ε", [min(grid.values()) for grid, _ in per_seed]),
            row("ADADELTA spread over ρ × ε (12 settings)", spread, "points"),
            row("SGD spread over its learning rates (7, 1e-3 … 1)", sgd_spread, "points"),
        ],
        thresholds=[
            Threshold(
                "ADADELTA − tuned SGD",
                ">=",
                -1.0,
                "no learning rate, yet within a point of SGD tuned over three decades",
            ),
            Threshold(
                "ADADELTA spread over ρ × ε (12 settings)",
                "<=",
                2.0,
                "robust to its hyper-parameters: every (ρ, ε) of the paper's grid within two "
                "points of the best",
            ),
        ],
        config={"steps": steps, "batch_size": 32, "rhos": RHOS, "epsilons": EPSILONS},
    )
