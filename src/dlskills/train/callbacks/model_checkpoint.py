"""Checkpointing: ``last`` (every N steps, at each epoch end and at the start of a fresh fit) and
``best`` (when the monitored validation metric improves or ties its best so far: with a few
hundred validation samples accuracy plateaus, and the later of equal epochs has had more of the
LR schedule), each a safetensors + JSON pair written
atomically (dlskills.train.checkpoint). An epoch that improves writes ``last`` once and gives it
the name ``best`` too (a hard link of the tensor file, ``copy_checkpoint``)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlskills.train.callbacks._registry import register_callback
from dlskills.train.callbacks.base import Callback
from dlskills.train.checkpoint import copy_checkpoint

if TYPE_CHECKING:
    from dlskills.train.trainer import Trainer


@register_callback("checkpoint")
class ModelCheckpoint(Callback):
    """``directory``: where ``best``/``last`` go (default ``<run_dir>/checkpoints``).
    ``monitor``/``mode``: the metric deciding ``best`` ("max" or "min"; "auto" picks "max" for
    accuracies). ``every_n_steps``: also save ``last`` every that many optimizer steps."""

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        monitor: str = "val_accuracy",
        mode: str = "auto",
        every_n_steps: int | None = None,
        save_best: bool = True,
    ) -> None:
        if mode not in ("auto", "max", "min"):
            raise ValueError(f"mode must be 'auto', 'max' or 'min', got {mode!r}")
        if every_n_steps is not None and (not isinstance(every_n_steps, int) or every_n_steps < 1):
            raise ValueError(f"every_n_steps must be a positive int, got {every_n_steps!r}")
        self.directory = Path(directory) if directory is not None else None
        self.monitor = monitor
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        self.every_n_steps = every_n_steps
        self.save_best = save_best
        self.best: float | None = None
        self.best_epoch: int | None = None

    @property
    def best_path(self) -> Path | None:
        return None if self.directory is None else self.directory / "best"

    @property
    def last_path(self) -> Path | None:
        return None if self.directory is None else self.directory / "last"

    def on_fit_start(self, trainer: Trainer) -> None:
        if self.directory is None:
            if trainer.run_dir is None:
                raise ValueError("ModelCheckpoint needs a directory or a trainer with run_dir")
            self.directory = trainer.run_dir / "checkpoints"
        if trainer.step == 0 and trainer.last_checkpoint is None:
            # a rollback target before the first step (NaN guard)
            trainer.save_checkpoint(self.directory / "last")

    def on_batch_end(self, trainer: Trainer) -> None:
        if self.every_n_steps and trainer.step % self.every_n_steps == 0:
            trainer.save_checkpoint(self.directory / "last")

    def on_epoch_end(self, trainer: Trainer) -> None:
        value = trainer.metrics.get(self.monitor)
        improves = self.save_best and value is not None and self._improves(value)
        if improves:
            self.best, self.best_epoch = value, trainer.epoch + 1
        last = trainer.save_checkpoint(self.directory / "last")
        if improves and trainer.strategy.is_main:
            # the same state under a second name: serialised and written once
            copy_checkpoint(last, self.directory / "best")

    def _improves(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        # ties go to the later epoch: equally good on validation, but further along the schedule
        return value >= self.best if self.mode == "max" else value <= self.best

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
