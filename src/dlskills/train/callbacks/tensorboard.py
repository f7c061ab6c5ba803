"""TensorBoard logger (optional dependency): every trainer metric as a scalar, per epoch under
``epoch/<name>`` and every ``log_every`` steps for the training loss and LR under ``step/<name>``.
Needs the ``tensorboard`` package (``pip install 'dlskills[tensorboard]'``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlskills.train.callbacks._registry import register_callback
from dlskills.train.callbacks.base import Callback

if TYPE_CHECKING:
    from dlskills.train.trainer import Trainer


def _summary_writer_class() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # torch raises ImportError when tensorboard is not installed
        raise ImportError(
            "TensorBoardLogger needs the 'tensorboard' package: pip install 'dlskills[tensorboard]'"
        ) from exc
    return SummaryWriter


@register_callback("tensorboard")
class TensorBoardLogger(Callback):
    """``log_dir``: event-file folder (default ``<run_dir>/tensorboard``)."""

    def __init__(self, log_dir: str | os.PathLike[str] | None = None, *, log_every: int = 50):
        if isinstance(log_every, bool) or not isinstance(log_every, int) or log_every < 1:
            raise ValueError(f"log_every must be a positive int, got {log_every!r}")
        self._writer_class = _summary_writer_class()  # fail at construction, not mid-fit
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.log_every = log_every
        self.writer: Any = None

    def on_fit_start(self, trainer: Trainer) -> None:
        if self.log_dir is None:
            if trainer.run_dir is None:
                raise ValueError("TensorBoardLogger needs a log_dir or a trainer with run_dir")
            self.log_dir = trainer.run_dir / "tensorboard"
        self.writer = self._writer_class(log_dir=str(self.log_dir), purge_step=trainer.step or None)

    def on_batch_end(self, trainer: Trainer) -> None:
        if trainer.step % self.log_every == 0:
            self.writer.add_scalar("step/loss", trainer.last_loss, trainer.step)
            self.writer.add_scalar("step/lr", trainer.optimizer.param_groups[0]["lr"], trainer.step)

    def on_validation_end(self, trainer: Trainer) -> None:
        for name, value in trainer.metrics.items():
            self.writer.add_scalar(f"epoch/{name}", value, trainer.step)
        self.writer.flush()

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
