"""Fully decoupled learning with delayed gradients, FDG (catalog 1906.09108; Zhuang, Wang, Liu,
Zhang & Lin, "Fully Decoupled Neural Network Learning Using Delayed Gradients", TNNLS 2022).

Backpropagation locks every layer: the forward waits for the layers below, the backward and the
update for the layers above. FDG cuts the network into K modules that all work at every
iteration, each on a different batch, talking only to their neighbours through mailboxes:

- module m (0-based) takes, at iteration t, the output module m − 1 produced at t − 1 (module 0
  takes the new batch), so it works on batch t − m;
- the last module computes the loss of its batch, backpropagates, updates, and posts the
  gradient with respect to its input;
- module m < K − 1 backpropagates the gradient its successor posted at t − 1, shrunk by β,
  through the graph of the forward it made d_m = 2(K − m − 1) iterations earlier (that is the
  batch the gradient belongs to), updates with it, posts the gradient with respect to that
  graph's input, then runs its forward on the new input. Its update is therefore d_m steps
  stale; β ∈ (0, 1] (the paper's gradient shrinking) damps the stale part, compounding to
  β^(K−1−m) at module m.

So, per module m < K − 1 and iteration t, with h the module's stored input of iteration t − d_m
and δ the gradient posted by module m + 1 at t − 1:

    θ_m ← optimizer step on  ∂(β·δ · f_m(h; θ_m))/∂θ_m,     posted to m − 1:  β·δ·∂f_m/∂h

The iterations are simulated in one process, module after module, each using only what the
previous iteration posted, which is what the authors' threads compute. ``K = 1`` is plain
backpropagation.

Deviations, named: the authors' PyTorch 1.0 code backpropagates through the stored graph after
the optimizer has changed the module's weights in place (through ``.data``, invisible to
autograd), so the backward combines the stored activations with the *current* weights; that is
kept here with identity saved-tensor hooks (modern autograd would otherwise refuse the modified
weights). A module that has no delayed gradient yet (the pipeline filling up at the start) skips
its update, where the authors call ``step()`` regardless (a no-op before the first backward).
The pipeline keeps its in-flight batches across epochs, as the authors' loop does.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def split_sequential(model: nn.Sequential, boundaries: Sequence[int]) -> list[nn.Sequential]:
    """``model`` cut before each index of ``boundaries`` (strictly increasing, in
    1 … len(model) − 1): len(boundaries) + 1 consecutive modules sharing its layers."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential, got {type(model).__name__}")
    cuts = [int(b) for b in boundaries]
    if any(not 0 < b < len(model) for b in cuts) or cuts != sorted(set(cuts)):
        raise ValueError(
            f"boundaries must be strictly increasing indices in 1..{len(model) - 1}, got {cuts}"
        )
    edges = [0, *cuts, len(model)]
    return [model[start:end] for start, end in itertools.pairwise(edges)]


def _by_reference(tensor: Tensor) -> Tensor:
    return tensor


class DelayedGradientTrainer:
    """FDG training of ``modules`` (applied in order), one optimizer per module.

    Args:
        modules: the K pieces of the network (``split_sequential`` cuts an ``nn.Sequential``).
        optimizers: one per module, over that module's parameters.
        loss_fn: ``loss_fn(outputs, targets)`` of the last module (default cross-entropy).
        shrink: β in (0, 1], the gradient shrinking factor; 1 shrinks nothing.

    ``train_step(inputs, targets)`` runs one iteration of every module and returns the loss of
    the batch the last module finished (a 0-d tensor), or None while the pipeline fills (the
    first K − 1 iterations). ``model`` is the whole network (an ``nn.Sequential`` sharing the
    modules) for evaluation.
    """

    def __init__(
        self,
        modules: Sequence[nn.Module],
        optimizers: Sequence[torch.optim.Optimizer],
        loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
        *,
        shrink: float = 1.0,
    ) -> None:
        if not modules:
            raise ValueError("modules must hold at least one module")
        if len(optimizers) != len(modules):
            raise ValueError(
                f"one optimizer per module: got {len(optimizers)} for {len(modules)} modules"
            )
        if not 0.0 < shrink <= 1.0:
            raise ValueError(f"shrink must be in (0, 1], got {shrink}")
        self.model = nn.Sequential(*modules)
        self.optimizers = list(optimizers)
        self.loss_fn = loss_fn
        self.shrink = float(shrink)
        count = len(modules)
        self.delays = [2 * (count - m - 1) for m in range(count)]
        # per module: (input, output) of the forwards of the last d_m iterations, oldest first
        self._records: list[deque[tuple[Tensor, Tensor] | None]] = [
            deque([None] * delay) for delay in self.delays
        ]
        self._inputs: list[Tensor | None] = [None] * count  # posted by module m − 1
        self._gradients: list[Tensor | None] = [None] * count  # posted by module m + 1
        self._targets: deque[Tensor | None] = deque([None] * (count - 1))
        self.iteration = 0

    def train_step(self, inputs: Tensor, targets: Tensor) -> Tensor | None:
        modules = list(self.model)
        last = len(modules) - 1
        self.model.train()
        self._targets.append(targets)
        target = self._targets.popleft()
        outputs: list[Tensor | None] = [None] * len(modules)
        posted: list[Tensor | None] = [None] * len(modules)
        loss = None
        for m, (module, optimizer) in enumerate(zip(modules, self.optimizers)):
            x = inputs if m == 0 else self._inputs[m]
            if m == last:
                if x is not None:
                    optimizer.zero_grad(set_to_none=True)
                    loss = self.loss_fn(module(x), target)
                    loss.backward()
                    optimizer.step()
                    posted[m] = x.grad
                continue
            record, gradient = self._records[m].popleft(), self._gradients[m]
            if record is not None and gradient is not None:
                stored_input, stored_output = record
                optimizer.zero_grad(set_to_none=True)
                if self.shrink != 1.0:
                    gradient = gradient * self.shrink
                stored_output.backward(gradient)
                optimizer.step()
                posted[m] = stored_input.grad
            if x is None:
                self._records[m].append(None)
                continue
            # the stored graph must backpropagate after the optimizer changed the weights
            with torch.autograd.graph.saved_tensors_hooks(_by_reference, _by_reference):
                outputs[m] = module(x)
            self._records[m].append((x, outputs[m]))
        self._inputs = [None] + [_as_leaf(output) for output in outputs[:-1]]
        self._gradients = [*posted[1:], None]
        self.iteration += 1
        return None if loss is None else loss.detach()


def _as_leaf(output: Tensor | None) -> Tensor | None:
    """What a module posts to its successor: a copy detached from its graph whose gradient the
    successor's backward fills in (a copy, so an in-place first layer there cannot touch the
    stored output)."""
    return None if output is None else output.detach().clone().requires_grad_()


@dataclass
class DecoupledArm:
    """One configuration of the digits check: where the MLP is cut, β, the test accuracy after
    every epoch (one list per seed) and the wall time of one ``train_step``."""

    boundaries: tuple[int, ...]
    shrink: float
    accuracy: list[list[float]] = field(default_factory=list)
    seconds_per_step: float = 0.0

    @property
    def name(self) -> str:
        if not self.boundaries:
            return "backprop"
        return f"FDG K = {len(self.boundaries) + 1}, β = {self.shrink:g}"

    @property
    def final_accuracy(self) -> float:
        """Mean over seeds of the last epoch's test accuracy."""
        return statistics.fmean(run[-1] for run in self.accuracy)


DEFAULT_ARMS: tuple[tuple[tuple[int, ...], float], ...] = (
    ((), 1.0),
    ((3,), 0.5),
    ((3, 5), 0.5),
    ((3, 5), 1.0),
)


def digits_mlp(width: int = 128) -> nn.Sequential:
    """The check's network: 64 → width → width → width → 10 with ReLUs, as one Sequential whose
    indices 3 and 5 are the cut points of K = 2 and K = 3 (after the first and second hidden
    layer's activation)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, 10),
    )


def decoupled_check(
    arms: Sequence[tuple[Sequence[int], float]] = DEFAULT_ARMS,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = 15,
    batch_size: int = 32,
    lr: float = 0.05,
    momentum: float = 0.9,
    progress: Callable[[int, int, str], Any] | None = None,
) -> list[DecoupledArm]:
    """Train ``digits_mlp`` on the digits task (scikit-learn's bundled images, split by seed 0)
    with SGD + momentum, once per arm ``(boundaries, β)`` and seed; ``()`` is plain backprop.
    Every arm of a seed starts from the same weights and sees the same batches.
    ``progress(done, total, what)`` is called after every epoch of every arm and seed."""
    from dlskills.data import load

    splits = load("digits", seed=0)
    results = [DecoupledArm(tuple(boundaries), float(shrink)) for boundaries, shrink in arms]
    for seed in seeds:
        torch.manual_seed(seed)
        start = digits_mlp().state_dict()
        for arm in results:
            train, _, test = splits.loaders(batch_size, seed=seed)  # the same batch order
            model = digits_mlp()
            model.load_state_dict(start)
            modules = split_sequential(model, arm.boundaries)
            optimizers = [
                torch.optim.SGD(m.parameters(), lr=lr, momentum=momentum) for m in modules
            ]
            trainer = DelayedGradientTrainer(modules, optimizers, shrink=arm.shrink)
            curve, steps, started = [], 0, time.perf_counter()
            for _ in range(epochs):
                for x, y in train:
                    trainer.train_step(x, y)
                    steps += 1
                curve.append(_accuracy(model, test))
                model.train()
                if progress is not None:
                    done = (len(results) * len(arm.accuracy) + results.index(arm)) * epochs
                    progress(
                        done + len(curve),
                        len(seeds) * len(results) * epochs,
                        f"{arm.name}, seed {seed}: test accuracy {curve[-1]:.1%}",
                    )
            arm.seconds_per_step += (time.perf_counter() - started) / steps / len(seeds)
            arm.accuracy.append(curve)
    return results


def _accuracy(model: nn.Module, loader: Any) -> float:
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in loader)
    return correct / len(loader.dataset)


def plot_decoupled(arms: Sequence[DecoupledArm], path: str | Path) -> Path:
    """Test accuracy per epoch of every arm (mean over seeds, band: min–max) as a PNG."""
    from dlskills._plot import integer_ticks, new_figure, save_figure

    fig, ax = new_figure(size=(6.0, 4.0))
    for arm in arms:
        runs = torch.tensor(arm.accuracy) * 100
        epochs = list(range(1, runs.shape[1] + 1))
        (line,) = ax.plot(
            epochs, runs.mean(0).tolist(), label=f"{arm.name}: {arm.final_accuracy:.1%}"
        )
        low, high = runs.min(0).values.tolist(), runs.max(0).values.tolist()
        ax.fill_between(epochs, low, high, alpha=0.15, color=line.get_color())
    ax.set_xlabel("epoch")
    integer_ticks(ax, "x")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(80, 100)
    ax.set_title("digits MLP: delayed-gradient modules vs backprop")
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, path)


__all__ = [
    "DEFAULT_ARMS",
    "DecoupledArm",
    "DelayedGradientTrainer",
    "decoupled_check",
    "digits_mlp",
    "plot_decoupled",
    "split_sequential",
]
