"""Support for the optimizer reproductions: one seeded minibatch loop on digits for any optimizer.

``train(model, optimizer, data, steps=..., batch_size=..., seed=...)`` draws batches with its own
generator (so every optimizer sees the same batches for a seed), gives optimizers that need a
closure (``dlskills.optim.closure_kind`` "backward": STORM, vSGD) the torch-convention closure
over the current batch ("graph": CurveBall, natural gradient — (loss, outputs), no backward), and
records the batch loss of every step, the full training loss and the
test accuracy every ``eval_every`` steps. ``mlp`` and ``data`` are the model and split the
reproductions share.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from dlskills.models._quickfit import accuracy, digits_tensors
from dlskills.optim import closure_kind
from dlskills.repro._support import mlp as _mlp

Data = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass
class Curves:
    """What a run recorded: ``batch_loss`` per step, and at each of ``eval_steps`` the loss on
    the whole training set and the test accuracy (a fraction). ``diverged`` is set when a loss
    turned non-finite (the run stops there)."""

    batch_loss: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    diverged: bool = False

    @property
    def final_train_loss(self) -> float:
        return math.inf if self.diverged else self.train_loss[-1]

    @property
    def final_accuracy(self) -> float:
        return 0.0 if self.diverged else self.test_accuracy[-1]


def data(seed: int = 0) -> Data:
    """The digits split (stratified by ``seed``) as flat standardised features."""
    return digits_tensors(seed=seed, image=False)


def mlp(seed: int, hidden: int = 32) -> nn.Sequential:
    """64 → hidden → 10 ReLU MLP with torch's default init drawn from ``seed``."""
    torch.manual_seed(seed)
    return _mlp([hidden], din=64, dout=10)


def full_loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    with torch.no_grad():
        return F.cross_entropy(model(inputs), targets).item()


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Data,
    *,
    steps: int,
    batch_size: int,
    seed: int,
    eval_every: int = 50,
    after_step: Callable[[int], None] | None = None,
) -> Curves:
    """``steps`` optimizer steps on minibatches of ``batch_size`` (reshuffled every epoch);
    ``after_step(t)`` is called after step t (1-based)."""
    x_train, y_train, x_test, y_test = data
    generator = torch.Generator().manual_seed(seed)
    curves = Curves()
    kind = closure_kind(optimizer)
    needs_closure = kind in ("backward", "graph")
    order = torch.randperm(len(x_train), generator=generator)
    position = 0

    def evaluate(t: int) -> None:
        curves.eval_steps.append(t)
        curves.train_loss.append(full_loss(model, x_train, y_train))
        curves.test_accuracy.append(accuracy(model, x_test, y_test))

    evaluate(0)
    for t in range(1, steps + 1):
        if position + batch_size > len(order):
            order, position = torch.randperm(len(x_train), generator=generator), 0
        batch = order[position : position + batch_size]
        position += batch_size
        xb, yb = x_train[batch], y_train[batch]

        def closure(xb: torch.Tensor = xb, yb: torch.Tensor = yb) -> torch.Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            return loss

        def graph_closure(xb: torch.Tensor = xb, yb: torch.Tensor = yb):
            outputs = model(xb)
            return F.cross_entropy(outputs, yb), outputs

        if kind == "graph":
            closure = graph_closure

        loss = optimizer.step(closure) if needs_closure else closure()
        if not needs_closure:
            optimizer.step()
        value = loss.item()
        curves.batch_loss.append(value)
        if not math.isfinite(value):
            curves.diverged = True
            return curves
        if after_step is not None:
            after_step(t)
        if t % eval_every == 0 or t == steps:
            evaluate(t)
    if not math.isfinite(curves.train_loss[-1]):
        curves.diverged = True
    return curves
