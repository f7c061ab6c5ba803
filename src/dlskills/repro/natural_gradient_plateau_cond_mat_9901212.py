"""Reproduction of catalog cond-mat-9901212: Rattray & Saad, "Analysis of Natural Gradient
Descent for Multilayer Neural Networks" (Phys. Rev. E 59, 1999).

Claim: a soft committee machine σ(x) = Σᵢ g(wᵢ·x/√N), g(u) = erf(u/√2), learning a teacher of
the same form from small initial weights, gets trapped under gradient descent in a symmetric
plateau (every student unit imitates the average teacher unit) before the units specialise;
natural gradient descent, which preconditions with the Fisher information, escapes the plateau
far sooner — the paper finds the plateau much shortened even against gradient descent at its best
learning rate (Sec. IV–V, Fig. 2–4).

Measured (``dlskills.optim.NaturalGradient(fisher="exact")`` — the Gauss-Newton matrix, the
Fisher of the Gaussian output model — against ``torch.optim.SGD``), float64: N = 10 inputs,
K = M = 2 hidden units, teacher vectors orthogonal with |Bₙ|² = N, student weights drawn from
N(0, 10⁻⁶) (the near-symmetric start of the paper), fresh Gaussian inputs every step (batches
of 16, the online setting up to the batch), squared error ½(σ − ζ)²:
- the generalization error E_g from the order parameters Q = WWᵀ/N, R = WBᵀ/N, T = BBᵀ/N
  (closed form for erf units, ``generalization_error``; no test sample), every 5 steps;
- the steps until E_g < 10⁻⁴ (past the plateau at E_g ≈ 0.011) for gradient descent at its
  best learning rate of a small grid and natural gradient at its best (damping 10⁻⁴);
- the gradient-descent plateau level (median E_g over its steps at E_g > 10⁻³ after the first
  drop): the plateau is there.
Deviations: a batch of 16 per step with the batch Fisher (the paper's online learning uses the
input-averaged Fisher, which is analytic for Gaussian inputs); a learning-rate grid, not the
paper's optimised schedules.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from dlskills.optim.natural_gradient import NaturalGradient
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "cond-mat-9901212"
INPUTS, UNITS, BATCH = 10, 2, 16
INIT_STD = 1e-3
TARGET = 1e-4
EVAL_EVERY = 5
CLAIM = Claim(
    text="Natural gradient descent escapes the symmetric plateau of a soft committee machine "
    "far sooner than gradient descent, even at gradient descent's best learning rate.",
    value="plateau much shorter under natural gradient (orders of magnitude in Fig. 2–4)",
    source="Sec. IV–V, Fig. 2–4",
)


def _pair(c: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """E[g(u)g(v)] for g = erf(·/√2), (u, v) Gaussian with covariance [[a, c], [c, b]]."""
    return (2 / math.pi) * torch.asin(c / torch.sqrt((1 + a) * (1 + b)))


def generalization_error(student: torch.Tensor, teacher: torch.Tensor) -> float:
    """E_g = ½E[(σ − ζ)²] over Gaussian inputs, from the overlaps Q, R, T (rows: hidden units)."""
    n = student.shape[1]
    q, r, t = student @ student.T / n, student @ teacher.T / n, teacher @ teacher.T / n
    qd, td = q.diagonal(), t.diagonal()
    student_part = _pair(q, qd[:, None], qd[None, :]).sum()
    teacher_part = _pair(t, td[:, None], td[None, :]).sum()
    cross = _pair(r, qd[:, None], td[None, :]).sum()
    return 0.5 * (student_part + teacher_part - 2 * cross).item()


def committee(weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.erf(x @ weights.T / math.sqrt(2 * weights.shape[1])).sum(1)


def _problem(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Generator]:
    generator = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(INPUTS, UNITS, generator=generator, dtype=torch.float64))
    teacher = q.T * math.sqrt(INPUTS)
    start = INIT_STD * torch.randn(UNITS, INPUTS, generator=generator, dtype=torch.float64)
    return teacher, start, generator


def learn(method: str, lr: float, seed: int, max_steps: int) -> tuple[list[int], list[float]]:
    """(steps, E_g) every EVAL_EVERY steps until E_g < TARGET or ``max_steps``; the inputs of a
    seed are the same for every method and learning rate."""
    teacher, start, generator = _problem(seed)
    weights = start.clone().requires_grad_(True)
    if method == "gd":
        optimizer = torch.optim.SGD([weights], lr=lr)
    else:
        optimizer = NaturalGradient([weights], lr=lr, damping=1e-4, fisher="exact")
    steps, errors = [0], [generalization_error(start, teacher)]
    for t in range(1, max_steps + 1):
        x = torch.randn(BATCH, INPUTS, generator=generator, dtype=torch.float64)
        y = committee(teacher, x)

        def closure(x: torch.Tensor = x, y: torch.Tensor = y):
            outputs = committee(weights, x)
            return 0.5 * (outputs - y).square().mean(), outputs

        if method == "gd":
            optimizer.zero_grad()
            closure()[0].backward()
            optimizer.step()
        else:
            optimizer.step(closure)
        if t % EVAL_EVERY == 0:
            steps.append(t)
            errors.append(generalization_error(weights.detach(), teacher))
            if errors[-1] < TARGET or not math.isfinite(errors[-1]):
                break
    return steps, errors


def steps_to_target(steps: list[int], errors: list[float]) -> float:
    for t, e in zip(steps, errors):
        if e < TARGET:
            return float(t)
    return math.inf


def plateau_level(errors: list[float]) -> float:
    """Median E_g after its first drop below 0.5·E_g(0) while still above 10⁻³."""
    first = next((i for i, e in enumerate(errors) if e < 0.5 * errors[0]), len(errors))
    on = [e for e in errors[first:] if e > 1e-3]
    return float(torch.tensor(on).median()) if on else math.nan


def _figure(path, curves: dict[str, tuple[list[int], list[float]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, (steps, errors) in curves.items():
        ax.semilogy(steps, errors, label=label)
    ax.axhline(TARGET, color="k", lw=0.8, ls=":", label="target E_g = 1e-4")
    ax.set_xlabel("step (batches of 16 fresh inputs)")
    ax.set_ylabel("generalization error E_g")
    ax.set_title("Soft committee machine N = 10, K = M = 2: the symmetric plateau")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


@register(CATALOG_ID, fast="reproduced")
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Steps to leave the symmetric plateau: natural gradient vs gradient descent (best lr)."""
    run = Run(
        CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0, 1), "full": (0, 1, 2, 3, 4)}
    )
    gd_lrs, ng_lrs, max_steps = run.pick(
        fast=((3.0, 10.0, 30.0), (0.1, 0.3), 600),
        full=((1.0, 3.0, 10.0, 30.0), (0.1, 0.3, 1.0), 3000),
    )
    gd_best, ng_best, levels, figure_curves = [], [], [], {}
    for seed in run.seeds:
        gd = {lr: learn("gd", lr, seed, max_steps) for lr in gd_lrs}
        ng = {lr: learn("ng", lr, seed, max_steps) for lr in ng_lrs}
        gd_steps = {lr: steps_to_target(*c) for lr, c in gd.items()}
        ng_steps = {lr: steps_to_target(*c) for lr, c in ng.items()}
        gd_best.append(min(gd_steps.values()))
        ng_best.append(min(ng_steps.values()))
        best_gd_lr = min(gd_steps, key=gd_steps.get)
        levels.append(plateau_level(gd[best_gd_lr][1]))
        if not figure_curves:
            figure_curves = {f"gradient descent, lr {lr:g}": c for lr, c in gd.items()}
            figure_curves |= {f"natural gradient, lr {lr:g}": c for lr, c in ng.items()}
    run.figure("natural_gradient_plateau.png", lambda p: _figure(p, figure_curves))

    def row(name: str, values: list[float], unit: str = "") -> Measured:
        return Measured.over_seeds(name, unit, values, run.seeds)

    return run.result(
        claim=CLAIM,
        measured=[
            row("steps to E_g < 1e-4, gradient descent (best lr)", gd_best, "steps"),
            row("steps to E_g < 1e-4, natural gradient (best lr)", ng_best, "steps"),
            row(
                "plateau speed-up, gradient descent / natural gradient",
                [a / b for a, b in zip(gd_best, ng_best)],
                "×",
            ),
            row("plateau level E_g, gradient descent", levels),
        ],
        thresholds=[
            Threshold(
                "plateau speed-up, gradient descent / natural gradient",
                ">=",
                3.0,
                "'far sooner': several times fewer steps against GD's best learning rate",
            ),
            Threshold(
                "plateau level E_g, gradient descent",
                ">=",
                0.005,
                "gradient descent does pass through the symmetric plateau (E_g(0) ≈ 0.3)",
            ),
        ],
        config={
            "inputs": INPUTS,
            "hidden": UNITS,
            "batch": BATCH,
            "init_std": INIT_STD,
            "target": TARGET,
            "gd_lrs": list(gd_lrs),
            "ng_lrs": list(ng_lrs),
            "damping": 1e-4,
            "max_steps": max_steps,
        },
    )
