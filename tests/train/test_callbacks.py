"""Callbacks: each checked against values it must produce."""

import csv
import io
import math

import pytest
import torch

from dlskills.train.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    GradClip,
    LRMonitor,
    ModelCheckpoint,
    NaNGuard,
    ProgressBar,
    StopReason,
)
from dlskills.train.checkpoint import load_checkpoint


class ScriptedMetric(Callback):
    """Overwrites a metric after validation with scripted values (fired before the others)."""

    def __init__(self, key, values):
        self.key, self.values = key, list(values)

    def on_validation_end(self, trainer):
        trainer.metrics[self.key] = self.values[trainer.epoch]
        trainer.history[-1][self.key] = self.values[trainer.epoch]


def test_early_stopping_waits_patience_epochs(make_trainer):
    losses = [1.0, 0.8, 0.85, 0.81, 0.9, 0.7, 0.6]
    stopper = EarlyStopping(2, monitor="val_loss", min_delta=0.0)
    trainer = make_trainer([ScriptedMetric("val_loss", losses), stopper], max_epochs=7)
    trainer.fit()
    # best 0.8 at epoch 2, no improvement at epochs 3 and 4 -> stop after epoch 4
    assert len(trainer.history) == 4 and trainer.stop_reason is StopReason.EARLY_STOPPING
    assert stopper.best == 0.8 and stopper.wait == 2
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(0)


def test_early_stopping_min_delta_and_max_mode(make_trainer):
    accuracies = [0.5, 0.505, 0.509, 0.6]
    stopper = EarlyStopping(2, monitor="val_accuracy", min_delta=0.01)
    trainer = make_trainer([ScriptedMetric("val_accuracy", accuracies), stopper], max_epochs=4)
    trainer.fit()
    assert stopper.mode == "max" and len(trainer.history) == 3


def test_model_checkpoint_keeps_the_best_epoch(make_trainer, tmp_path):
    accuracies = [0.6, 0.9, 0.7]
    checkpointer = ModelCheckpoint(monitor="val_accuracy")
    snapshots = {}

    class Snapshot(Callback):
        def on_epoch_end(self, trainer):
            snapshots[trainer.epoch] = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    trainer = make_trainer(
        [ScriptedMetric("val_accuracy", accuracies), checkpointer, Snapshot()], max_epochs=3
    )
    trainer.fit()
    assert checkpointer.best == 0.9 and checkpointer.best_epoch == 2
    _, best = load_checkpoint(tmp_path / "checkpoints" / "best")
    _, last = load_checkpoint(tmp_path / "checkpoints" / "last")
    assert torch.equal(best["model.0.weight"], snapshots[1]["0.weight"])
    assert torch.equal(last["model.0.weight"], snapshots[2]["0.weight"])


def test_model_checkpoint_ties_go_to_the_later_epoch(make_trainer):
    checkpointer = ModelCheckpoint(monitor="val_accuracy")
    trainer = make_trainer([ScriptedMetric("val_accuracy", [0.6, 0.9, 0.9, 0.8]), checkpointer])
    trainer.max_epochs = 4
    trainer.fit()
    assert checkpointer.best == 0.9 and checkpointer.best_epoch == 3


def test_csv_logger_writes_and_flushes_one_row_per_epoch(make_trainer, tmp_path):
    seen_rows = []

    class ReadBack(Callback):  # runs after the logger: the row must already be on disk
        def on_epoch_end(self, trainer):
            with open(tmp_path / "metrics.csv") as handle:
                seen_rows.append(len(list(csv.DictReader(handle))))

    trainer = make_trainer([CSVLogger(), ReadBack()], max_epochs=3)
    trainer.fit()
    with open(tmp_path / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert seen_rows == [1, 2, 3]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["val_accuracy"]) == pytest.approx(trainer.history[-1]["val_accuracy"])
    assert list(rows[0])[:3] == ["epoch", "step", "seconds"]


def test_csv_logger_cuts_rows_written_after_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step\n1,6\n2,12\n3,18\n")
    logger = CSVLogger(path)
    logger.load_state_dict({"columns": ["epoch", "step"], "rows": 2})
    assert path.read_text() == "epoch,step\n1,6\n2,12\n"


def test_lr_monitor_follows_the_scheduler(make_trainer):
    monitor = LRMonitor(every_n_steps=2)
    trainer = make_trainer([monitor], max_epochs=1)  # lr_t = 0.05 · 0.97^t
    trainer.fit()
    assert [step for step, _ in monitor.history] == [0, 2, 4, 6]
    for step, (rate,) in monitor.history:
        assert rate == pytest.approx(0.05 * 0.97**step)
    assert trainer.metrics["lr"] == pytest.approx(0.05 * 0.97**6)


def test_grad_clip_bounds_the_global_norm(make_trainer):
    norms = []

    class Measure(Callback):
        def on_before_step(self, trainer):
            grads = [p.grad.flatten() for p in trainer.model.parameters()]
            norms.append(torch.cat(grads).norm().item())

    clip = GradClip(1e-3)
    make_trainer([clip, Measure()], max_epochs=1).fit()
    assert max(norms) == pytest.approx(1e-3, rel=1e-4)
    assert clip.last_norm.item() > 1e-3  # the norm before clipping


class PoisonGrad(Callback):
    """Writes NaN into the gradient of one parameter at the given step (every time the run
    passes it, or only the first time with ``once``)."""

    def __init__(self, name, step, once=False):
        self.name, self.step, self.once = name, step, once

    def on_after_backward(self, trainer):
        if trainer.step + 1 == self.step:
            dict(trainer.model.named_parameters())[self.name].grad[0] = math.nan
            if self.once:
                self.step = None


def test_nan_guard_stops_naming_the_first_bad_gradient(make_trainer):
    guard = NaNGuard("stop")
    trainer = make_trainer([PoisonGrad("3.bias", 5), guard], max_epochs=2)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    assert trainer.stop_reason is StopReason.NON_FINITE
    assert "gradient of '3.bias'" in trainer.stop_message and "step 5" in trainer.stop_message
    assert trainer.step == 4  # the poisoned update never happened
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())


def test_nan_guard_names_a_bad_parameter_first(make_trainer):
    from dlskills.train.callbacks.nan_guard import first_non_finite

    trainer = make_trainer(max_epochs=1)
    with torch.no_grad():
        trainer.model[3].weight[0, 0] = math.inf
    assert first_non_finite(trainer.model) == "parameter '3.weight'"


def test_nan_guard_rolls_back_and_lowers_the_lr(make_trainer):
    guard = NaNGuard("rollback", lr_factor=0.5, max_retries=2)
    trainer = make_trainer(
        [PoisonGrad("0.weight", 8, once=True), guard, ModelCheckpoint(every_n_steps=3)],
        max_epochs=2,
        scheduler=False,
    )
    trainer.fit()
    # NaN at step 8 -> back to the step-6 checkpoint at half the LR, then train to the end
    assert trainer.stop_reason is StopReason.COMPLETED and trainer.step == 12
    assert guard.retries == 1 and guard.events == [{"step": 7, "tensor": "gradient of '0.weight'"}]
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.025)
    assert [row["epoch"] for row in trainer.history] == [1, 2]


def test_nan_guard_rollback_is_bounded(make_trainer):
    guard = NaNGuard("rollback", lr_factor=0.5, max_retries=2)
    trainer = make_trainer(
        [PoisonGrad("0.weight", 2), guard, ModelCheckpoint()], max_epochs=2, scheduler=False
    )
    trainer.fit()
    assert trainer.stop_reason is StopReason.NON_FINITE and guard.retries == 2
    assert "after 2 rollback(s)" in trainer.stop_message
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.05 / 4)


def test_progress_bar_draws_rate_eta_loss_and_metric(make_trainer):
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=140, color_system=None)
    bar = ProgressBar(enabled=True, console=console)
    make_trainer([bar], max_epochs=2).fit()
    text = buffer.getvalue()
    assert "12/12" in text and "steps/s" in text and "loss" in text and "val_accuracy" in text
    assert ProgressBar(enabled=None).enabled is False  # pytest's stdout is not a terminal


def test_tensorboard_logger_writes_events(make_trainer, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from dlskills.train.callbacks.tensorboard import TensorBoardLogger

    trainer = make_trainer([TensorBoardLogger(log_every=2)], max_epochs=2)
    trainer.fit()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    accuracy = events.Scalars("epoch/val_accuracy")
    assert [e.step for e in accuracy] == [6, 12]
    assert accuracy[-1].value == pytest.approx(trainer.history[-1]["val_accuracy"])
    assert len(events.Scalars("step/loss")) == 6


def test_tensorboard_missing_is_a_clear_error(monkeypatch):
    import sys

    from dlskills.train.callbacks.tensorboard import TensorBoardLogger

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match=r"pip install 'dlskills\[tensorboard\]'"):
        TensorBoardLogger()
