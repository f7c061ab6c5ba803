"""Reproduction of catalog duchi-2011: Duchi, Hazan & Singer, "Adaptive Subgradient Methods for
Online Learning and Stochastic Optimization" (JMLR 12, 2011).

Claim: scaling each coordinate's step by the inverse root of its accumulated squared gradients,
θ ← θ − η·g/√(Σg²), gives rarely seen features large steps and frequent ones small steps, so on
sparse data where rare features are predictive Adagrad learns much better than a (sub)gradient
method with one global step size, however that step is tuned (Sec. 1.2, 6: text classification
and sparse-feature experiments; the regret bound adapts to the data's geometry).

Measured (``torch.optim.Adagrad`` against ``torch.optim.SGD``, each at the best learning rate of
a grid, chosen by test loss), online logistic regression with one example per step on
synthetic sparse binary features, float64: D = 1000 features, 20 frequent ones (present with
probability 0.5) that carry no signal (true weight 0) and 980 rare ones (probability 0.01, ~10
active per example) with true weights ~ N(0, 4); labels drawn from the logistic model; 3000
online steps, test loss on 5000 fresh examples:
- the excess test loss over the Bayes loss (the true model's), Adagrad against tuned SGD;
- the average online loss over the run (the regret per step plus a constant).
Deviation: a constructed sparse problem in the paper's regime, not its text data sets.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "duchi-2011"
FEATURES, FREQUENT, STEPS, TEST = 1000, 20, 3000, 5000
CLAIM = Claim(
    text="Adagrad's per-coordinate step sizes from accumulated squared gradients adapt to "
    "sparse data: rare but predictive features get large steps, so it learns better than "
    "gradient descent with a single, even tuned, step size.",
    value="lower loss / regret than tuned SGD on sparse data",
    source="Sec. 1.2, Sec. 6",
)


def sparse_problem(seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x, y, true weights): binary features, 20 frequent without signal, 980 rare with it."""
    generator = torch.Generator().manual_seed(seed)
    presence = torch.full((FEATURES,), 0.01, dtype=torch.float64)
    presence[:FREQUENT] = 0.5
    weights = 2 * torch.randn(FEATURES, generator=generator, dtype=torch.float64)
    weights[:FREQUENT] = 0
    x = (torch.rand(n, FEATURES, generator=generator, dtype=torch.float64) < presence).double()
    p = torch.sigmoid(x @ weights)
    y = (torch.rand(n, generator=generator, dtype=torch.float64) < p).double()
    return x, y, weights


def online_run(make, x: torch.Tensor, y: torch.Tensor, steps: int) -> tuple[float, torch.Tensor]:
    """(average online loss, final weights): one example per step, loss taken before the step."""
    w = torch.zeros(FEATURES, dtype=torch.float64, requires_grad=True)
    optimizer = make([w])
    total = 0.0
    for t in range(steps):
        loss = F.binary_cross_entropy_with_logits(x[t] @ w, y[t])
        total += loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return total / steps, w.detach()


def _one_seed(seed: int, grids: dict[str, tuple[float, ...]]) -> dict[str, dict[float, tuple]]:
    x, y, weights = sparse_problem(seed, STEPS + TEST)
    x_test, y_test = x[STEPS:], y[STEPS:]
    bayes = F.binary_cross_entropy_with_logits(x_test @ weights, y_test).item()
    makers = {
        "sgd": lambda lr: lambda ps: torch.optim.SGD(ps, lr=lr),
        "adagrad": lambda lr: lambda ps: torch.optim.Adagrad(ps, lr=lr),
    }
    runs: dict[str, dict[float, tuple]] = {}
    for name, grid in grids.items():
        runs[name] = {}
        for lr in grid:
            online, w = online_run(makers[name](lr), x, y, STEPS)
            test = F.binary_cross_entropy_with_logits(x_test @ w, y_test).item()
            runs[name][lr] = (online, test - bayes)
    return runs


def _figure(path, runs: dict[str, dict[float, tuple]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, label in (("sgd", "SGD (one step size)"), ("adagrad", "Adagrad")):
        lrs = sorted(runs[name])
        ax.loglog(lrs, [runs[name][lr][1] for lr in lrs], "o-", label=label)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("excess test loss over the Bayes loss (nats)")
    ax.set_title("Sparse online logistic regression (980 rare predictive features)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


@register(CATALOG_ID, fast="reproduced")
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Adagrad against tuned SGD on sparse online logistic regression."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0,), "full": (0, 1, 2, 3, 4)})
    grids = run.pick(
        fast={"sgd": (0.03, 0.1, 0.3, 1.0), "adagrad": (0.1, 0.3, 1.0, 3.0)},
        full={"sgd": (0.01, 0.03, 0.1, 0.2, 0.3, 1.0), "adagrad": (0.03, 0.1, 0.2, 0.3, 0.6, 1.0)},
    )
    per_seed = [_one_seed(seed, grids) for seed in run.seeds]
    run.figure("adagrad_sparse.png", lambda p: _figure(p, per_seed[0]))

    def best(runs: dict[float, tuple]) -> tuple:
        lr = min(runs, key=lambda lr: runs[lr][1])
        return lr, *runs[lr]

    rows = {name: [best(r[name]) for r in per_seed] for name in grids}

    def row(name: str, values: list[float], unit: str = "") -> Measured:
        return Measured.over_seeds(name, unit, values, run.seeds)

    return run.result(
        claim=CLAIM,
        measured=[
            row("best learning rate, SGD", [b[0] for b in rows["sgd"]]),
            row("best learning rate, Adagrad", [b[0] for b in rows["adagrad"]]),
            row("excess test loss, tuned SGD", [b[2] for b in rows["sgd"]], "nats"),
            row("excess test loss, tuned Adagrad", [b[2] for b in rows["adagrad"]], "nats"),
            row(
                "excess test loss ratio Adagrad / SGD",
                [a[2] / s[2] for a, s in zip(rows["adagrad"], rows["sgd"])],
                "×",
            ),
            row("average online loss, tuned SGD", [b[1] for b in rows["sgd"]], "nats"),
            row("average online loss, tuned Adagrad", [b[1] for b in rows["adagrad"]], "nats"),
        ],
        thresholds=[
            Threshold(
                "excess test loss ratio Adagrad / SGD",
                "<=",
                0.85,
                "Adagrad learns the sparse problem better than any single step size",
            ),
        ],
        config={
            "features": FEATURES,
            "frequent": FREQUENT,
            "steps": STEPS,
            "test": TEST,
            "grids": {k: list(v) for k, v in grids.items()},
        },
    )
