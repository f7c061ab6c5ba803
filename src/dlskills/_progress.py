"""Progress of long work, one piece for every loop that takes more than a few seconds: a rich bar
on a terminal, one plain line per unit (epoch, trial, fit, round) otherwise, so that a log file
or a CI job shows the work advancing too.

Library loops take ``progress(done, total, what)`` (a plain callable, None for silence) and know
nothing of terminals; command-line code passes a :class:`Progress`.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def plain_line(
    description: str, unit: str, done: int, total: int | None, what: str, seconds: float
) -> str:
    """``validate: fit 3/18 mlp:width=4 at noise 0.2 (12.4 s)``: one unit of work done."""
    count = f"{done}/{total}" if total else f"{done}"
    return f"{description}: {unit} {count}" + (f" {what}" if what else "") + f" ({seconds:.1f} s)"


class Progress:
    """``total`` units of work under ``description``, reported as ``progress(done, total, what)``
    calls (or ``advance(what)``): a rich bar on a terminal, else a plain line per unit on
    ``stream`` (default stderr: stdout keeps the results). ``lines`` caps the plain lines
    (a loop of 2,000 steps reports every 200th with ``lines=10``); the last unit always prints.
    Use as a context manager, or call ``close()``."""

    def __init__(
        self,
        description: str,
        total: int | None,
        *,
        unit: str = "step",
        stream: TextIO | None = None,
        lines: int | None = None,
        console: Any = None,
    ) -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.lines = lines
        self.done = 0
        self._started = time.perf_counter()
        self._bar: Any = None
        if console is not None or is_terminal(self.stream):
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[what]}"),
                console=console or Console(file=self.stream),
            )
            self._bar.start()
            self._task = self._bar.add_task(description, total=total, what="")

    @property
    def every(self) -> int:
        """Units per plain line."""
        return max(1, -(-self.total // self.lines)) if self.lines and self.total else 1

    def __call__(self, done: int, total: int | None = None, what: str = "") -> None:
        if total is not None:
            self.total = total
        self.done = done
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=self.total, what=what)
        elif done % self.every == 0 or done == self.total:
            seconds = time.perf_counter() - self._started
            line = plain_line(self.description, self.unit, done, self.total, what, seconds)
            print(line, file=self.stream, flush=True)

    def status(self, what: str) -> None:
        """Show ``what`` beside a terminal's bar without finishing a unit (work inside one, such
        as a check's steps); plain output stays one line per finished unit."""
        if self._bar is not None:
            self._bar.update(self._task, what=what)

    def advance(self, what: str = "") -> None:
        self(self.done + 1, None, what)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
