"""Learning-rate monitor: records each parameter group's LR every ``every_n_steps`` optimizer
steps (``history`` of ``(step, [lr per group])``) and publishes group 0's as ``metrics["lr"]``
(group i > 0 as ``lr_group<i>``). Reading the LR is a Python float: no device sync."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlskills.train.callbacks._registry import register_callback
from dlskills.train.callbacks.base import Callback

if TYPE_CHECKING:
    from dlskills.train.trainer import Trainer


@register_callback("lr_monitor")
class LRMonitor(Callback):
    def __init__(self, every_n_steps: int = 1) -> None:
        if (
            isinstance(every_n_steps, bool)
            or not isinstance(every_n_steps, int)
            or every_n_steps < 1
        ):
            raise ValueError(f"every_n_steps must be a positive int, got {every_n_steps!r}")
        self.every_n_steps = every_n_steps
        self.history: list[tuple[int, list[float]]] = []

    def on_fit_start(self, trainer: Trainer) -> None:
        if trainer.step == 0 and not self.history:
            self._record(trainer)

    def on_batch_end(self, trainer: Trainer) -> None:
        if trainer.step % self.every_n_steps == 0:
            self._record(trainer)

    def _record(self, trainer: Trainer) -> None:
        rates = [float(group["lr"]) for group in trainer.optimizer.param_groups]
        self.history.append((trainer.step, rates))
        trainer.metrics["lr"] = rates[0]
        for index, rate in enumerate(rates[1:], start=1):
            trainer.metrics[f"lr_group{index}"] = rate

    def state_dict(self) -> dict[str, Any]:
        return {"history": [[step, rates] for step, rates in self.history]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = [(int(step), list(rates)) for step, rates in state["history"]]
