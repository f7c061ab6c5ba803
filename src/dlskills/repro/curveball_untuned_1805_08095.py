"""Reproduction of catalog 1805.08095: Henriques, Ehrhardt, Albanie & Vedaldi, "Small steps and
giant leaps: Minimal Newton solvers for deep learning" (ICCV 2019).

Claim: CurveBall — one momentum-gradient step per iteration on the Gauss-Newton system, with its
ρ, β and damping λ tuned automatically — needs no hyper-parameter tuning and converges faster per
iteration than SGD with momentum and Adam with their learning rates tuned, at the cost of a few
extra forward/backward passes per step (Sec. 5, Fig. 3–5, Table 1).

Measured (``dlskills.optim.CurveBall`` with its defaults — the authors' automatic ρ, β, λ —
against ``torch.optim.SGD(momentum=0.9)`` and ``torch.optim.Adam``, each at the best learning
rate of a grid, chosen by final training loss), a 64-32-10 MLP on digits, batches of 32, the same
batches for every optimizer, 600 steps: the final loss on the whole training set, CurveBall's
against each tuned baseline's, and the wall time per step relative to SGD's.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import torch

from dlskills.optim.curveball import CurveBall
from dlskills.repro import _digits_training as digits
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1805.08095"
BATCH = 32
CLAIM = Claim(
    text="CurveBall, with automatically tuned hyper-parameters, converges faster per iteration "
    "than SGD with momentum and Adam with tuned learning rates, for a few extra passes per "
    "step.",
    value="lower training loss per iteration than tuned SGD and Adam, no tuning",
    source="Sec. 5, Fig. 3–5, Table 1",
)


def _train(make, seed: int, steps: int) -> tuple[digits.Curves, float]:
    model = digits.mlp(seed)
    optimizer = make(model.parameters())
    start = time.perf_counter()
    curves = digits.train(
        model, optimizer, digits.data(seed), steps=steps, batch_size=BATCH, seed=seed, eval_every=50
    )
    return curves, (time.perf_counter() - start) / steps


def _figure(path, runs: dict[str, digits.Curves]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for label, curves in runs.items():
        style = "-" if label.startswith("CurveBall") else ":"
        ax.semilogy(curves.eval_steps, curves.train_loss, style, label=label)
    ax.set_xlabel("step (batches of 32)")
    ax.set_ylabel("training loss (cross-entropy, whole set)")
    ax.set_title("CurveBall (no tuning) vs tuned momentum SGD and Adam (digits MLP)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


@register(CATALOG_ID, fast="not reproduced")
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Untuned CurveBall against tuned momentum SGD and Adam, per iteration."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0,), "full": (0, 1, 2)})
    steps, sgd_grid, adam_grid = run.pick(
        fast=(600, (0.03, 0.1, 0.3), (1e-3, 3e-3, 1e-2, 3e-2)),
        full=(3000, (0.01, 0.03, 0.1, 0.3), (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)),
    )
    rows: dict[str, list[float]] = {}
    figure_runs: dict[str, digits.Curves] = {}
    for seed in run.seeds:
        curveball, curveball_time = _train(CurveBall, seed, steps)
        sgd = {
            lr: _train(lambda p, lr=lr: torch.optim.SGD(p, lr=lr, momentum=0.9), seed, steps)
            for lr in sgd_grid
        }
        adam = {
            lr: _train(lambda p, lr=lr: torch.optim.Adam(p, lr=lr), seed, steps) for lr in adam_grid
        }
        best_sgd = min(sgd, key=lambda lr: sgd[lr][0].final_train_loss)
        best_adam = min(adam, key=lambda lr: adam[lr][0].final_train_loss)
        loss = curveball.final_train_loss
        for key, value in (
            ("curveball", loss),
            ("sgd", sgd[best_sgd][0].final_train_loss),
            ("adam", adam[best_adam][0].final_train_loss),
            ("sgd lr", best_sgd),
            ("adam lr", best_adam),
            ("vs sgd", loss / sgd[best_sgd][0].final_train_loss),
            ("vs adam", loss / adam[best_adam][0].final_train_loss),
            ("cost", curveball_time / sgd[best_sgd][1]),
        ):
            rows.setdefault(key, []).append(value)
        if not figure_runs:
            figure_runs = {"CurveBall (defaults)": curveball}
            figure_runs |= {f"momentum SGD lr {lr:g}": c for lr, (c, _) in sgd.items()}
            figure_runs |= {f"Adam lr {lr:g}": c for lr, (c, _) in adam.items()}
    run.figure("curveball_untuned.png", lambda p: _figure(p, figure_runs))

    def row(name: str, key: str, unit: str = "") -> Measured:
        return Measured.over_seeds(name, unit, rows[key], run.seeds)

    return run.result(
        claim=CLAIM,
        measured=[
            row("final training loss, CurveBall", "curveball"),
            row("final training loss, tuned momentum SGD", "sgd"),
            row("final training loss, tuned Adam", "adam"),
            row("tuned momentum SGD learning rate", "sgd lr"),
            row("tuned Adam learning rate", "adam lr"),
            row("loss ratio CurveBall / tuned momentum SGD", "vs sgd", "×"),
            row("loss ratio CurveBall / tuned Adam", "vs adam", "×"),
            row("wall time per step, CurveBall / SGD", "cost", "×"),
        ],
        thresholds=[
            Threshold(
                "loss ratio CurveBall / tuned momentum SGD",
                "<=",
                1.0,
                "faster per iteration than tuned momentum SGD",
            ),
            Threshold(
                "loss ratio CurveBall / tuned Adam",
                "<=",
                1.0,
                "faster per iteration than tuned Adam",
            ),
        ],
        config={
            "model": "64-32-10 MLP",
            "dataset": "digits",
            "batch_size": BATCH,
            "steps": steps,
            "sgd_grid": list(sgd_grid),
            "adam_grid": list(adam_grid),
        },
        note="untuned CurveBall beats momentum SGD and Adam at their default-like rates "
        "(0.03, 1e-3) but not at their tuned ones on this small network",
    )
