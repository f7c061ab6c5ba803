"""Evaluate and keep the averaged weights: iterate averaging as a callback (catalog
polyak-juditsky-1992; the rules, Polyak's running mean and the EMA, are
``dlskills.optim.averaging.AveragedParameters``).

After every optimizer step after the first ``start`` (the paper's burn-in) the live parameters
θ_k are folded into the average θ̄ (EMA: θ̄ ← d·θ̄ + (1 − d)·θ_k, d = ``decay``, or with
``warmup`` d = min(decay, (1 + n)/(10 + n)) at the n-th update; Polyak: the running mean).
Before the first averaged update θ̄ is the live weights. ``dlskills train`` starts its EMA
halfway through the run: from step 1, a short run's average is dominated by its first iterates
(θ̄_1 = θ_1 still weighs 0.99^59 = 55 % after 60 steps at decay 0.99; 37 % test accuracy after
3 epochs of the digits recipe, seed 1, against 95.2 % with the burn-in). At the end of each
epoch the averaged weights are swapped into the model before validation, so ``val_*`` metrics,
the ``best``/``last`` checkpoints' model tensors and the model left after ``fit`` are those of θ̄;
the next epoch swaps the live weights back before training on. A checkpoint taken while swapped
stores the live weights in this callback's tensors (and the averages while not), with a flag
saying which, so resuming continues exactly.

Deviation: BatchNorm running statistics are buffers, not parameters; they are not averaged nor
recomputed (``torch.optim.swa_utils.update_bn``), so θ̄ is evaluated with the statistics the live
weights collected over the last ~1/momentum steps. With a short EMA window (decay 0.99 ≈ 100
steps) the two drift little; on the digits recipe recomputing them was no better
(docs/training.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from dlskills.optim.averaging import AveragedParameters
from dlskills.train.callbacks._registry import register_callback
from dlskills.train.callbacks.base import Callback

if TYPE_CHECKING:
    from dlskills.train.trainer import Trainer


@register_callback("weight_averaging", catalog_id="polyak-juditsky-1992")
class WeightAveraging(Callback):
    """Average the model's parameters over optimizer steps (``mode`` "ema" with ``decay``, or
    "polyak" after ``start`` steps) and validate, checkpoint and finish with the average."""

    def __init__(
        self, mode: str = "ema", decay: float = 0.99, start: int = 0, *, warmup: bool = False
    ) -> None:
        # checked here, before a fit, by the class that owns the rules
        AveragedParameters([torch.zeros(1)], mode=mode, decay=decay, start=start)
        self.mode, self.decay, self.start, self.warmup = mode, decay, start, warmup
        self.averaged: AveragedParameters | None = None
        self.swapped = False  # the model holds θ̄ and ``averaged.averages`` the live weights
        self._state: dict[str, Any] = {}
        self._restored: tuple[dict[str, Any], dict[str, torch.Tensor]] | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        self.averaged = AveragedParameters(
            trainer.model.parameters(),
            mode=self.mode,
            decay=self.decay,
            start=self.start,
            warmup=self.warmup,
        )
        if self._restored is not None:  # resuming: the checkpoint was read before the fit began
            self._load(*self._restored)

    def on_epoch_start(self, trainer: Trainer) -> None:
        self._swap_to(averaged=False)

    def on_batch_end(self, trainer: Trainer) -> None:
        self.averaged.update()

    def on_validation_start(self, trainer: Trainer) -> None:
        self._swap_to(averaged=True)

    def _swap_to(self, *, averaged: bool) -> None:
        if averaged and self.averaged.n_averaged == 0:  # still burning in: θ̄ is the live weights
            return
        if self.swapped != averaged:
            self.averaged.swap()
            self.swapped = averaged

    def state_dict(self) -> dict[str, Any]:
        if self.averaged is None:
            return {}
        state = {k: v for k, v in self.averaged.state_dict().items() if k != "averages"}
        return {**state, "swapped": self.swapped}

    def tensor_state(self) -> dict[str, torch.Tensor]:
        if self.averaged is None:
            return {}
        return {str(i): average for i, average in enumerate(self.averaged.averages)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._state = state

    def load_tensor_state(self, tensors: dict[str, torch.Tensor]) -> None:
        # the Trainer calls load_state_dict, then this; before the fit starts (a resume) the
        # averages are built in on_fit_start, during it (a NaN rollback) they exist already
        if not self._state:
            return
        self._restored = (self._state, tensors)
        if self.averaged is not None:
            self._load(*self._restored)

    def _load(self, state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        averages = [tensors[str(i)] for i in range(len(tensors))]
        fields = {k: v for k, v in state.items() if k != "swapped"}
        self.averaged.load_state_dict({**fields, "averages": averages})
        self.swapped = state["swapped"]
        self._restored = None
