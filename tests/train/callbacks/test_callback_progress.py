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
    assert ProgressBar(enabled=False).mode == "off"


def test_one_plain_line_per_epoch_without_a_terminal(make_trainer, capsys):
    # pytest's captured stdout is not a terminal: the default mode prints lines, not a bar
    bar = ProgressBar()
    assert bar.mode == "lines"
    trainer = make_trainer([bar], max_epochs=2)
    trainer.fit()
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" step ")[0] for line in lines] == ["train: epoch 1/2", "train: epoch 2/2"]
    # each line carries the epoch's own numbers, as the history records them
    for line, row in zip(lines, trainer.history):
        assert f" step {row['step']} " in line
        assert f"val_accuracy {row['val_accuracy']:.4g}" in line
        assert line.endswith(" s)")
