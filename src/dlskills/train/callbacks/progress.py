"""Progress bar (rich): steps done / total, steps per second, ETA, latest loss and metric.

The bar is redrawn from ``on_batch_end`` at most ``refresh_per_second`` times a second (a clock
read per step otherwise), with no background thread; the loss is read from the device only at a
redraw. When stdout is not a terminal (a log file, a pipe, CI) it prints one plain line per
epoch instead (``dlskills._progress.plain_line``: epoch, step, the epoch's metrics, seconds);
``enabled=True`` forces the bar, ``enabled=False`` prints nothing.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from dlskills._progress import is_terminal, plain_line
from dlskills.train.callbacks._registry import register_callback
from dlskills.train.callbacks.base import Callback

if TYPE_CHECKING:
    from dlskills.train.trainer import Trainer


@register_callback("progress")
class ProgressBar(Callback):
    """``metric``: the ``trainer.metrics`` key shown next to the loss."""

    def __init__(
        self,
        *,
        enabled: bool | None = None,
        refresh_per_second: float = 2.0,
        metric: str = "val_accuracy",
        console: Any = None,
    ) -> None:
        if not refresh_per_second > 0:
            raise ValueError(f"refresh_per_second must be > 0, got {refresh_per_second}")
        # "bar" (rich), "lines" (one plain line per epoch) or "off"
        self.mode = (
            "off" if enabled is False else "bar" if enabled or is_terminal(sys.stdout) else "lines"
        )
        self.interval = 1.0 / refresh_per_second
        self.metric = metric
        self.console = console
        self._progress: Any = None
        self._task: Any = None
        self._next_redraw = 0.0

    def on_fit_start(self, trainer: Trainer) -> None:
        self._started = (time.perf_counter(), trainer.step)
        if self.mode != "bar":
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} steps/s"),
            TimeRemainingColumn(),
            TextColumn("loss {task.fields[loss]}  {task.fields[metric]}"),
            console=self.console or Console(stderr=False),
            auto_refresh=False,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(
            "train",
            total=_total_steps(trainer),
            completed=trainer.step,
            epoch=trainer.epoch + 1,
            rate="-",
            loss="-",
            metric="",
        )

    def on_batch_end(self, trainer: Trainer) -> None:
        if self._progress is None:
            return
        now = time.perf_counter()
        if now >= self._next_redraw:
            self._next_redraw = now + self.interval
            self._redraw(trainer, now)

    def on_epoch_end(self, trainer: Trainer) -> None:
        if self.mode != "lines":
            return
        metrics = "  ".join(
            f"{key} {value:.4g}"
            for key, value in trainer.metrics.items()
            if key != "lr" and isinstance(value, float)
        )
        line = plain_line(
            "train",
            "epoch",
            trainer.epoch + 1,
            trainer.max_epochs,
            f"step {trainer.step}  {metrics}",
            time.perf_counter() - self._started[0],
        )
        print(line, file=sys.stdout, flush=True)

    def on_fit_end(self, trainer: Trainer) -> None:
        if self._progress is not None:
            self._redraw(trainer, time.perf_counter())
            self._progress.stop()
            self._progress = None

    def _redraw(self, trainer: Trainer, now: float) -> None:
        start_time, start_step = self._started
        elapsed = now - start_time
        rate = f"{(trainer.step - start_step) / elapsed:.0f}" if elapsed > 0 else "-"
        value = trainer.metrics.get(self.metric)
        metric = f"{self.metric} {value:.4f}" if value is not None else ""
        self._progress.update(
            self._task,
            completed=trainer.step,
            epoch=trainer.epoch + 1,
            rate=rate,
            loss=f"{trainer.last_loss:.4f}",
            metric=metric,
        )
        self._progress.refresh()


def _total_steps(trainer: Trainer) -> int | None:
    try:
        per_epoch = len(trainer.train_loader)  # type: ignore[arg-type]
    except TypeError:
        per_epoch = None
    by_epochs = trainer.max_epochs * per_epoch if trainer.max_epochs and per_epoch else None
    candidates = [n for n in (trainer.max_steps, by_epochs) if n is not None]
    return min(candidates) if candidates else None
