"""Reproduction of catalog 1905.10018: Cutkosky & Orabona, "Momentum-Based Variance Reduction
in Non-Convex SGD" (NeurIPS 2019).

Claim: STORM's recursive momentum d_t = ∇f(θ_t; ξ_t) + (1 − a)(d_{t−1} − ∇f(θ_{t−1}; ξ_t))
reduces the variance of its gradient estimate as variance-reduction methods do, but without
their large (or full) batches: with small minibatches it reaches the optimal O(ε^−3) rate and
trains competitively with well-tuned adaptive methods (Sec. 1, 5–6, Fig. 1).

Measured (``dlskills.optim.STORM``, c = 100, w = 10 as the authors' code, k the best of a small
grid; ``torch.optim.SGD`` at the best learning rate of a grid with the same number of gradient
evaluations — STORM takes two per step), a 64-32-10 MLP on digits, batches of 4:
- the estimator: at four checkpoints, the squared error ‖d_t − ∇F(θ_t)‖² of STORM's estimate
  against the full-training-set gradient, and the expected squared error of a plain minibatch
  gradient of the same size at the same θ_t, V/b·(N − b)/(N − 1) with V the per-example
  gradient variance (exact, from all N per-example gradients); their ratio times b is the
  batch a plain minibatch would need for STORM's accuracy (the "effective batch");
- the outcome: the final training loss, STORM against tuned SGD at equal gradient evaluations.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from dlskills.optim.storm import STORM
from dlskills.repro import _digits_training as digits
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1905.10018"
BATCH = 4
CLAIM = Claim(
    text="STORM's recursive momentum reduces the variance of its gradient estimate without the "
    "large batches of earlier variance-reduction methods, and trains competitively with small "
    "minibatches.",
    value="variance reduction at small batch sizes; optimal rate without mega-batches",
    source="Sec. 1, 5–6, Fig. 1",
)


def gradient_statistics(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    """(full gradient, per-example gradient variance V = (1/N)Σ‖gᵢ − ḡ‖²), flattened."""
    params = {name: p.detach() for name, p in model.named_parameters()}

    def loss_one(p, xi, yi):
        return F.cross_entropy(functional_call(model, p, (xi[None],)), yi[None])

    per_example = vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y)
    flat = torch.cat([g.flatten(1) for g in per_example.values()], dim=1)
    mean = flat.mean(0)
    return mean, (flat - mean).square().sum(1).mean().item()


def minibatch_error(variance: float, batch: int, n: int) -> float:
    """E‖g_B − ∇F‖² of a minibatch of ``batch`` examples drawn without replacement from n."""
    return variance / batch * (n - batch) / (n - 1)


class EstimatorProbe:
    """At the chosen steps, STORM's estimate d_t (of ∇F at θ_t = the stored previous iterate)
    against the full gradient, and the plain minibatch error at the same point."""

    def __init__(self, model, optimizer: STORM, data: digits.Data, at: Iterable[int]) -> None:
        self.model, self.optimizer, self.at = model, optimizer, set(at)
        self.x, self.y = data[0], data[1]
        self.records: list[tuple[float, float]] = []

    def __call__(self, t: int) -> None:
        if t not in self.at:
            return
        params = list(self.model.parameters())
        states = [self.optimizer.state[p] for p in params]
        current = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p, s in zip(params, states):
                p.copy_(s["prev_param"])  # θ_t, where d_t estimates the gradient
        full, variance = gradient_statistics(self.model, self.x, self.y)
        with torch.no_grad():
            for p, c in zip(params, current):
                p.copy_(c)
        estimate = torch.cat([s["grad_estimate"].flatten() for s in states])
        storm_error = (estimate - full).square().sum().item()
        self.records.append((storm_error, minibatch_error(variance, BATCH, len(self.x))))


def _train(make, seed: int, steps: int, probe_at=()) -> tuple[digits.Curves, list]:
    model = digits.mlp(seed)
    optimizer = make(model.parameters())
    data = digits.data(seed)
    probe = EstimatorProbe(model, optimizer, data, probe_at) if probe_at else None
    curves = digits.train(
        model,
        optimizer,
        data,
        steps=steps,
        batch_size=BATCH,
        seed=seed,
        eval_every=max(steps // 10, 1),
        after_step=probe,
    )
    return curves, probe.records if probe else []


def _figure(path, runs: dict[str, digits.Curves], records: list, at: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, curves in runs.items():
        left.semilogy(curves.eval_steps, curves.train_loss, "o-", ms=3, label=label)
    left.set_xlabel("gradient evaluations ÷ 2 (STORM steps; SGD steps ÷ 2)")
    left.set_ylabel("training loss (cross-entropy, whole set)")
    left.set_title(f"batch {BATCH}, equal gradient evaluations")
    left.legend(fontsize=8)
    right.semilogy(at, [r[0] for r in records], "o-", label="STORM estimate d_t")
    right.semilogy(at, [r[1] for r in records], "s-", label=f"plain minibatch of {BATCH}")
    right.set_xlabel("STORM step")
    right.set_ylabel("squared error vs full gradient ‖· − ∇F(θ_t)‖²")
    right.set_title("gradient-estimate error at the same θ_t")
    right.legend(fontsize=8)
    fig.suptitle("STORM: variance reduction with batches of 4 (64-32-10 MLP on digits)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


@register(CATALOG_ID, fast="partial")
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """STORM's estimator error vs a plain minibatch's, and its training loss vs tuned SGD."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0,), "full": (0, 1, 2)})
    steps, storm_grid, sgd_grid = run.pick(
        fast=(1000, (0.1, 0.3), (0.03, 0.1)), full=(4000, (0.1, 0.3, 1.0), (0.01, 0.03, 0.1, 0.3))
    )
    at = [steps // 4, steps // 2, 3 * steps // 4, steps]
    rows: dict[str, list[float]] = {}
    figure_args = None
    for seed in run.seeds:
        storm = {
            k: _train(lambda p, k=k: STORM(p, lr=k), seed, steps, probe_at=at) for k in storm_grid
        }
        best_k = min(storm, key=lambda k: storm[k][0].final_train_loss)
        records = storm[best_k][1]
        sgd = {
            lr: _train(lambda p, lr=lr: torch.optim.SGD(p, lr=lr), seed, 2 * steps)[0]
            for lr in sgd_grid
        }
        best_lr = min(sgd, key=lambda lr: sgd[lr].final_train_loss)
        effective = [BATCH * plain / err for err, plain in records]
        for key, value in (
            ("k", best_k),
            ("lr", best_lr),
            ("storm error", statistics.fmean(r[0] for r in records)),
            ("plain error", statistics.fmean(r[1] for r in records)),
            ("effective batch", statistics.median(effective)),
            ("storm loss", storm[best_k][0].final_train_loss),
            ("sgd loss", sgd[best_lr].final_train_loss),
            ("loss ratio", storm[best_k][0].final_train_loss / sgd[best_lr].final_train_loss),
        ):
            rows.setdefault(key, []).append(value)
        if figure_args is None:
            runs = {f"STORM k = {k:g}": c for k, (c, _) in storm.items()}
            for lr, c in sgd.items():  # plotted per two gradient evaluations
                half = digits.Curves(
                    eval_steps=[s // 2 for s in c.eval_steps], train_loss=c.train_loss
                )
                runs[f"SGD lr {lr:g}"] = half
            figure_args = (runs, records)
    run.figure("storm_small_batches.png", lambda p: _figure(p, *figure_args, at))

    def row(name: str, key: str, unit: str = "") -> Measured:
        return Measured.over_seeds(name, unit, rows[key], run.seeds)

    return run.result(
        claim=CLAIM,
        measured=[
            row("STORM k (best of grid)", "k"),
            row("SGD learning rate (best of grid)", "lr"),
            row("estimate error ‖d − ∇F‖², STORM", "storm error"),
            row("estimate error ‖g − ∇F‖², plain minibatch of 4", "plain error"),
            row("effective batch of STORM's estimate (median)", "effective batch", "examples"),
            row("final training loss, STORM", "storm loss"),
            row("final training loss, tuned SGD (equal gradient evaluations)", "sgd loss"),
            row("training loss ratio STORM / tuned SGD", "loss ratio", "×"),
        ],
        thresholds=[
            Threshold(
                "effective batch of STORM's estimate (median)",
                ">=",
                4 * BATCH,
                "variance reduction: STORM's estimate as accurate as a ≥ 4× larger batch",
            ),
            Threshold(
                "training loss ratio STORM / tuned SGD",
                "<=",
                1.5,
                "competitive with tuned SGD at the same small batch and gradient evaluations",
            ),
        ],
        config={
            "model": "64-32-10 MLP",
            "dataset": "digits",
            "batch_size": BATCH,
            "storm_steps": steps,
            "sgd_steps": 2 * steps,
            "storm_grid": list(storm_grid),
            "sgd_grid": list(sgd_grid),
            "probe_steps": at,
        },
    )
