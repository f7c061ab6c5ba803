"""Reproduction of catalog becker-lecun-1988: Becker & LeCun, "Improving the convergence of
back-propagation learning with second-order methods" (Connectionist Models Summer School, 1988).

Claim: giving each weight its own step size from the diagonal of the Hessian, θ ← θ − lr·g/(|h| + μ)
(a "pseudo-Newton" step), speeds up back-propagation where the curvature differs between
weights, at a small extra cost per step.

Measured (``dlskills.optim.BeckerLeCun``, damping μ = 0.1, Hutchinson estimate of diag H from one
probe per step; against ``torch.optim.SGD``, plain gradient descent; each at the best learning
rate of a grid), full-batch softmax regression on digits whose 64 input features are rescaled by
factors 10^U(−1.5, 1.5) (badly scaled inputs, the case the method targets), the same number of
gradient evaluations for both (a pseudo-Newton step costs two): the training loss after 600
gradient evaluations, and its ratio.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

from dlskills.optim.becker_lecun import BeckerLeCun
from dlskills.repro import _digits_training as digits
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "becker-lecun-1988"
EVALUATIONS = 600
CLAIM = Claim(
    text="A diagonal pseudo-Newton step, each weight scaled by its own curvature, improves "
    "the convergence of back-propagation over plain gradient descent.",
    value="faster convergence at little extra cost per step",
    source="Sec. 'Pseudo-Newton', experiments",
)


def badly_scaled_digits(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, y, _, _ = digits.data(0)
    generator = torch.Generator().manual_seed(seed)
    return x * 10 ** (3 * torch.rand(x.shape[1], generator=generator) - 1.5), y


def training_losses(method: str, lr: float, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """Full-batch training loss after each step, for EVALUATIONS gradient evaluations."""
    torch.manual_seed(0)
    model = torch.nn.Linear(x.shape[1], 10)
    if method == "pseudo-newton":
        optimizer = BeckerLeCun(model.parameters(), lr=lr, damping=0.1)
        steps = EVALUATIONS // 2
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        steps = EVALUATIONS
    losses = []
    for _ in range(steps):

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            return loss

        if method == "pseudo-newton":
            optimizer.step(closure)
        else:
            closure()
            optimizer.step()
        with torch.no_grad():
            losses.append(F.cross_entropy(model(x), y).item())
    return losses


def _figure(path, curves: dict[str, list[float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.3))
    for label, losses in curves.items():
        per_eval = 2 if label.startswith("pseudo") else 1
        ax.semilogy(range(per_eval, per_eval * len(losses) + 1, per_eval), losses, label=label)
    ax.set_xlabel("gradient evaluations")
    ax.set_ylabel("training loss (cross-entropy, full batch)")
    ax.set_ylim(top=10)
    ax.set_title("Softmax regression on badly scaled digits features")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


@register(CATALOG_ID, fast="reproduced")
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Diagonal pseudo-Newton against gradient descent at equal gradient evaluations."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0,), "full": (0, 1, 2)})
    gd_grid, pn_grid = run.pick(
        fast=((3e-3, 1e-2, 3e-2), (0.03, 0.1, 0.3)),
        full=((1e-3, 3e-3, 1e-2, 2e-2, 3e-2, 1e-1), (0.01, 0.03, 0.1, 0.3, 1.0)),
    )
    rows: dict[str, list[float]] = {}
    figure_curves: dict[str, list[float]] = {}
    for seed in run.seeds:
        x, y = badly_scaled_digits(seed)
        gd = {lr: training_losses("gd", lr, x, y) for lr in gd_grid}
        pn = {lr: training_losses("pseudo-newton", lr, x, y) for lr in pn_grid}

        def final(curve: list[float]) -> float:
            return curve[-1] if torch.isfinite(torch.tensor(curve[-1])) else float("inf")

        best_gd = min(gd, key=lambda lr: final(gd[lr]))
        best_pn = min(pn, key=lambda lr: final(pn[lr]))
        for key, value in (
            ("gd lr", best_gd),
            ("pn lr", best_pn),
            ("gd loss", final(gd[best_gd])),
            ("pn loss", final(pn[best_pn])),
            ("ratio", final(pn[best_pn]) / final(gd[best_gd])),
        ):
            rows.setdefault(key, []).append(value)
        if not figure_curves:
            figure_curves = {f"gradient descent, lr {lr:g}": c for lr, c in gd.items()}
            figure_curves |= {f"pseudo-Newton, lr {lr:g}": c for lr, c in pn.items()}
    run.figure("pseudo_newton.png", lambda p: _figure(p, figure_curves))

    def row(name: str, key: str, unit: str = "") -> Measured:
        return Measured.over_seeds(name, unit, rows[key], run.seeds)

    return run.result(
        claim=CLAIM,
        measured=[
            row("best learning rate, gradient descent", "gd lr"),
            row("best learning rate, pseudo-Newton", "pn lr"),
            row("training loss after 600 gradient evaluations, gradient descent", "gd loss"),
            row("training loss after 600 gradient evaluations, pseudo-Newton", "pn loss"),
            row("loss ratio pseudo-Newton / gradient descent", "ratio", "×"),
        ],
        thresholds=[
            Threshold(
                "loss ratio pseudo-Newton / gradient descent",
                "<",
                1.0,
                "improves convergence: a lower loss than the best gradient descent at the same "
                "number of gradient evaluations",
            ),
        ],
        config={
            "evaluations": EVALUATIONS,
            "damping": 0.1,
            "gd_grid": list(gd_grid),
            "pseudo_newton_grid": list(pn_grid),
            "feature_scales": "10^U(-1.5, 1.5)",
        },
    )
