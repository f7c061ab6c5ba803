"""CSV metrics logger: one row per epoch (after validation), appended and flushed as it is
written (a torn last row after a crash is cut off on resume, which rewrites the file atomically).

Columns: epoch, step, seconds, then every metric the trainer reports (train_loss,
train_accuracy, val_loss, val_accuracy, lr, ...) in the order first seen. On resume the file is
cut back to the rows the checkpoint knew about, so an interrupted-then-resumed run has each
epoch exactly once.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlskills._io import atomic_write_text
from dlskills.train.callbacks._registry import register_callback
from dlskills.train.callbacks.base import Callback

if TYPE_CHECKING:
    from dlskills.train.trainer import Trainer

LEADING = ("epoch", "step", "seconds")


@register_callback("csv_logger")
class CSVLogger(Callback):
    """``path``: the CSV file (default ``<run_dir>/metrics.csv``)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.columns: list[str] = []
        self.rows = 0

    def on_fit_start(self, trainer: Trainer) -> None:
        if self.path is None:
            if trainer.run_dir is None:
                raise ValueError("CSVLogger needs a path or a trainer with run_dir")
            self.path = trainer.run_dir / "metrics.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._truncate()

    def on_validation_end(self, trainer: Trainer) -> None:
        row: dict[str, Any] = trainer.history[-1]
        if not self.columns:
            self.columns = [*LEADING, *(k for k in row if k not in LEADING)]
        assert self.path is not None
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore")
            if self.rows == 0:
                writer.writeheader()
            writer.writerow(row)
        self.rows += 1

    def _truncate(self) -> None:
        """Keep the header and the first ``rows`` rows (those before the resumed checkpoint)."""
        assert self.path is not None
        if not self.path.exists():
            return
        if self.rows == 0:
            self.path.unlink()
            return
        lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        atomic_write_text(self.path, "".join(lines[: self.rows + 1]))

    def state_dict(self) -> dict[str, Any]:
        return {"columns": self.columns, "rows": self.rows}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.columns = list(state["columns"])
        self.rows = int(state["rows"])
        if self.path is not None:  # a rollback during the fit: drop the rows after the checkpoint
            self._truncate()


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, float | str]]:
    """The rows of a metrics CSV, numbers as floats (empty cells stay '')."""
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows.append({k: _number(v) for k, v in row.items()})
    return rows


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text
