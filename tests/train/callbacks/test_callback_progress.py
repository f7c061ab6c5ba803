"""ProgressBar: draws steps, rate, loss and metric; off without a terminal."""

import io

from dlskills.train.callbacks import (
    ProgressBar,
)


def test_progress_bar_draws_rate_eta_loss_and_metric(make_trainer):
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=140, color_system=None)
    bar = ProgressBar(enabled=True, console=console)
    make_trainer([bar], max_epochs=2).fit()
    text = buffer.getvalue()
    assert "12/12" in text and "steps/s" in text and "loss" in text and "val_accuracy" in text
    assert ProgressBar(enabled=None).enabled is False  # pytest's stdout is not a terminal
