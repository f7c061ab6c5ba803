"""Early stopping: stop when the monitored validation metric has not improved by more than
``min_delta`` for ``patience`` consecutive epochs (stop reason ``early_stopping``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from dlskills.train.callbacks._registry import register_callback
from dlskills.train.callbacks.base import Callback, StopReason

if TYPE_CHECKING:
    from dlskills.train.trainer import Trainer


@register_callback("early_stopping")
class EarlyStopping(Callback):
    """``mode``: "min", "max" or "auto" ("max" for accuracies, else "min")."""

    def __init__(
        self,
        patience: int,
        *,
        monitor: str = "val_loss",
        mode: str = "auto",
        min_delta: float = 0.0,
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be a positive int, got {patience!r}")
        if mode not in ("auto", "max", "min"):
            raise ValueError(f"mode must be 'auto', 'max' or 'min', got {mode!r}")
        if not min_delta >= 0:
            raise ValueError(f"min_delta must be ≥ 0, got {min_delta}")
        self.patience = patience
        self.monitor = monitor
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        self.min_delta = min_delta
        self.best: float | None = None
        self.wait = 0

    def on_validation_end(self, trainer: Trainer) -> None:
        value = trainer.metrics.get(self.monitor)
        if value is None:
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r} but the trainer reports "
                f"{sorted(trainer.metrics)} (is there a val_loader?)"
            )
        if self._improves(value):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            trainer.should_stop = True
            trainer.stop_reason = StopReason.EARLY_STOPPING

    def _improves(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.wait = state["best"], int(state["wait"])
