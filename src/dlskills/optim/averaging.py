"""Iterate averaging, Polyak–Juditsky and EMA, around any optimizer (catalog polyak-juditsky-1992).

Polyak & Juditsky (1992), "Acceleration of stochastic approximation by averaging": the average of
the SGD iterates θ̄_n = (1/n)·Σ_{k=1}^n θ_k converges at the optimal rate even when the iterates
themselves bounce around the minimum. The exponential moving average is its constant-memory
cousin used with deep networks. With θ_k the parameters after the k-th counted update:

    polyak   θ̄_n = θ̄_{n−1} + (θ_n − θ̄_{n−1})/n        (θ̄_1 = θ_1; exact running mean)
    ema      θ̄_n = decay·θ̄_{n−1} + (1 − decay)·θ_n     (θ̄_1 = θ_1)

With ``warmup=True`` the EMA uses d_n = min(decay, (1 + n)/(10 + n)) in place of ``decay`` at the
n-th averaged update (the ``num_updates`` rule of TensorFlow's ExponentialMovingAverage): early in
training the window is short, so a run of a few hundred steps does not average in its first,
far-from-trained iterates (with θ̄_1 = θ_1 and decay 0.99, θ_1 still weighs 0.99^59 = 55 % after 60
steps).

Updates before ``start`` optimizer steps are ignored (the paper's burn-in; SWA's "start epoch").
These are the rules of ``torch.optim.swa_utils.AveragedModel`` with its default averaging and with
``get_ema_multi_avg_fn(decay)`` (the tests compare them), applied in place to a list of
parameters instead of a deep copy of the model, and with a for-loop and a foreach path.

Use::

    averaged = AveragedParameters(model, mode="ema", decay=0.999)
    averaged.attach(optimizer)          # update after every optimizer.step() (a post-step hook)
    ...
    with averaged.swapped():            # evaluate with the averaged weights, then swap back
        evaluate(model)

BatchNorm running statistics are buffers, not parameters: recompute them for the averaged
weights with ``torch.optim.swa_utils.update_bn`` if the model has any.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from dlskills.optim._foreach import foreach_mask

MODES = ("polyak", "ema")


class AveragedParameters:
    """Running Polyak or EMA averages of ``params`` (an nn.Module or an iterable of tensors).

    Args:
        params: the parameters to average (a module's ``parameters()`` are used for a module).
        mode: "polyak" (equal-weight running mean) or "ema" (exponential moving average).
        decay: EMA decay in [0, 1); ignored for "polyak".
        warmup: EMA only: decay min(decay, (1 + n)/(10 + n)) at the n-th averaged update.
        start: number of ``update()`` calls skipped before averaging begins (burn-in).
        foreach: True/False force the foreach/for-loop path; None picks per
            ``dlskills.optim._foreach``.
    """

    def __init__(
        self,
        params: nn.Module | Iterable[Tensor],
        mode: str = "polyak",
        decay: float = 0.999,
        start: int = 0,
        *,
        warmup: bool = False,
        foreach: bool | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"Invalid mode: {mode!r} (one of {MODES})")
        if not (isinstance(decay, int | float) and 0.0 <= decay < 1.0):
            raise ValueError(f"Invalid decay: {decay!r} (must be in [0, 1))")
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"Invalid start: {start!r} (must be an integer >= 0)")
        tensors = list(params.parameters() if isinstance(params, nn.Module) else params)
        if not tensors or not all(isinstance(t, Tensor) for t in tensors):
            raise TypeError("params must be an nn.Module or a non-empty iterable of tensors")
        self.params = tensors
        self.mode = mode
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.start = start
        self.foreach = foreach
        self.averages = [t.detach().clone() for t in tensors]
        self.updates_seen = 0
        self.n_averaged = 0

    def _weight(self) -> float:
        """Weight of the current parameters in the new average."""
        if self.n_averaged == 1:
            return 1.0
        if self.mode == "polyak":
            return 1.0 / self.n_averaged
        decay = self.decay
        if self.warmup:
            decay = min(decay, (1 + self.n_averaged) / (10 + self.n_averaged))
        return 1.0 - decay

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current parameters into the average (call after each optimizer step)."""
        self.updates_seen += 1
        if self.updates_seen <= self.start:
            return
        self.n_averaged += 1
        weight = self._weight()
        mask = foreach_mask(self.params, self.foreach)
        pairs = [(a, p.detach()) for a, p in zip(self.averages, self.params)]
        grouped = [pair for pair, m in zip(pairs, mask) if m]
        if grouped:
            averages, current = zip(*grouped)
            torch._foreach_lerp_(list(averages), list(current), weight)
        for (average, current), use_foreach in zip(pairs, mask):
            if not use_foreach:
                average.lerp_(current, weight)

    def attach(self, optimizer: torch.optim.Optimizer) -> Any:
        """Call ``update()`` after every ``optimizer.step()``; returns the removable hook handle."""
        return optimizer.register_step_post_hook(lambda *_: self.update())

    @torch.no_grad()
    def swap(self) -> None:
        """Exchange the parameters' values with the averages (call twice to undo)."""
        for param, average in zip(self.params, self.averages):
            current = param.detach().clone()
            param.copy_(average)
            average.copy_(current)

    @contextmanager
    def swapped(self) -> Iterator[None]:
        """Evaluate with the averaged weights inside the block; the live ones come back after."""
        self.swap()
        try:
            yield
        finally:
            self.swap()

    def state_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "decay": self.decay,
            "start": self.start,
            "warmup": self.warmup,
            "updates_seen": self.updates_seen,
            "n_averaged": self.n_averaged,
            "averages": [a.clone() for a in self.averages],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        averages = state["averages"]
        if len(averages) != len(self.averages):
            raise ValueError(
                f"state has {len(averages)} averages, this object averages {len(self.averages)}"
            )
        for mine, theirs in zip(self.averages, averages):
            if mine.shape != theirs.shape:
                raise ValueError(f"average shape {tuple(theirs.shape)} != {tuple(mine.shape)}")
            mine.copy_(theirs)
        self.mode, self.decay, self.start = state["mode"], state["decay"], state["start"]
        self.warmup = state.get("warmup", False)
        self.updates_seen, self.n_averaged = state["updates_seen"], state["n_averaged"]
