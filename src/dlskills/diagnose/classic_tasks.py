"""The classic back-propagation tasks (catalog rumelhart-1985, Rumelhart, Hinton & Williams,
"Learning internal representations by error propagation", 1985; catalog rumelhart-1986, "Learning
representations by back-propagating errors", Nature 323, 1986).

Networks of logistic units, y = σ(W₂ σ(W₁ x + b₁) + b₂), trained on all patterns at once
("per sweep") by gradient descent with momentum on the summed squared error, as in the papers:

    E = ½ Σ_patterns Σ_outputs (y − t)²,      Δw(t) = −ε ∂E/∂w + α Δw(t − 1)

(torch.optim.SGD with ``momentum=α``, ``dampening=0`` is exactly this rule). Tasks:

- ``xor``: 2 inputs, 2 hidden units, 1 output; t = x₁ XOR x₂.
- ``encoder``: the 8-3-8 encoder; the 8 one-hot patterns are reproduced through 3 hidden units,
  which must discover a (near-)binary code.
- ``symmetry``: the 1986 paper's symmetry detector: 6 binary inputs, 2 hidden units, 1 output;
  t = 1 iff the input vector is a palindrome (8 of the 64 patterns).

A task is solved when every output of every pattern is on the target's side of 0.5. Deviation:
the papers draw initial weights uniformly in a small range (±0.3 for symmetry); we use
U(−``init_scale``, ``init_scale``) with a seed, and the step sizes are per-task defaults that
solve the task within the papers' order of sweeps (symmetry: ε = 0.1, α = 0.9 as in the paper).
Like the papers, a net can end in a local minimum for some seeds; ``solve_rate`` measures this.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn

# task -> (hidden units, learning rate ε, momentum α, init half-range)
_TASKS: dict[str, tuple[int, float, float, float]] = {
    "xor": (2, 0.5, 0.9, 1.0),
    "encoder": (3, 0.1, 0.9, 1.0),
    "symmetry": (2, 0.1, 0.9, 0.3),
}
TASKS = tuple(_TASKS)


@dataclass(frozen=True)
class ClassicTaskResult:
    """Outcome of one training run: ``solved`` and the sweep (epoch) at which it happened."""

    task: str
    solved: bool
    sweeps: int
    final_error: float
    outputs: torch.Tensor
    hidden: torch.Tensor
    model: nn.Module


def task_patterns(task: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) of ``task`` in float64, every pattern once."""
    if task == "xor":
        inputs = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
        return inputs, (inputs[:, :1] != inputs[:, 1:]).double()
    if task == "encoder":
        eye = torch.eye(8, dtype=torch.float64)
        return eye, eye.clone()
    if task == "symmetry":
        inputs = torch.tensor(list(itertools.product((0.0, 1.0), repeat=6)), dtype=torch.float64)
        palindrome = (inputs == inputs.flip(1)).all(dim=1, keepdim=True)
        return inputs, palindrome.double()
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def classic_net(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    """Linear → sigmoid → Linear → sigmoid, in float64."""
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.Sigmoid(), nn.Linear(hidden, outputs), nn.Sigmoid()
    ).double()


def train_classic(
    task: str,
    *,
    seed: int = 0,
    max_sweeps: int = 5000,
    lr: float | None = None,
    momentum: float | None = None,
    hidden: int | None = None,
) -> ClassicTaskResult:
    """Train the task's network from a seeded init until solved or ``max_sweeps`` sweeps."""
    inputs, targets = task_patterns(task)
    default_hidden, default_lr, default_momentum, init_scale = _TASKS[task]
    hidden = default_hidden if hidden is None else hidden
    lr = default_lr if lr is None else lr
    momentum = default_momentum if momentum is None else momentum
    if not isinstance(max_sweeps, int) or max_sweeps < 1:
        raise ValueError(f"max_sweeps must be a positive int, got {max_sweeps!r}")
    if lr <= 0 or not 0 <= momentum < 1:
        raise ValueError(f"need lr > 0 and 0 ≤ momentum < 1, got lr={lr}, momentum={momentum}")
    torch.manual_seed(seed)
    net = classic_net(inputs.shape[1], hidden, targets.shape[1])
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.uniform_(-init_scale, init_scale)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    sweeps, solved = 0, False
    while sweeps < max_sweeps:
        outputs = net(inputs)
        if _solved(outputs, targets):
            solved = True
            break
        error = 0.5 * (outputs - targets).pow(2).sum()
        optimizer.zero_grad(set_to_none=True)
        error.backward()
        optimizer.step()
        sweeps += 1
    with torch.no_grad():
        outputs = net(inputs)
        hidden_units = net[1](net[0](inputs))
    return ClassicTaskResult(
        task=task,
        solved=solved or _solved(outputs, targets),
        sweeps=sweeps,
        final_error=float(0.5 * (outputs - targets).pow(2).sum()),
        outputs=outputs,
        hidden=hidden_units,
        model=net,
    )


def solve_rate(task: str, seeds: range | list[int], **kwargs) -> float:
    """Fraction of ``seeds`` whose run solves ``task``."""
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must not be empty")
    return sum(train_classic(task, seed=s, **kwargs).solved for s in seeds) / len(seeds)


def _solved(outputs: torch.Tensor, targets: torch.Tensor) -> bool:
    return bool(((outputs > 0.5) == (targets > 0.5)).all())
