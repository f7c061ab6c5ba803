"""Trainer: events and dispatch, metrics against an independent computation, control flow,
and exact in-process resume (the SIGKILL version is in tests/test_cli_train.py)."""

import pytest
import torch
from torch import nn

from dlskills.train import Trainer
from dlskills.train.callbacks import (
    Callback,
    CancelBatch,
    CancelFit,
    ModelCheckpoint,
    StopReason,
)


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_fit_start(self, trainer):
        self.events.append("fit_start")

    def on_epoch_start(self, trainer):
        self.events.append("epoch_start")

    def on_batch_start(self, trainer):
        self.events.append("batch_start")

    def on_after_backward(self, trainer):
        self.events.append("after_backward")

    def on_before_step(self, trainer):
        self.events.append("before_step")

    def on_batch_end(self, trainer):
        self.events.append("batch_end")

    def on_validation_start(self, trainer):
        self.events.append("validation_start")

    def on_validation_end(self, trainer):
        self.events.append("validation_end")

    def on_epoch_end(self, trainer):
        self.events.append("epoch_end")

    def on_exception(self, trainer, exc):
        self.events.append("exception")

    def on_fit_end(self, trainer):
        self.events.append("fit_end")


class OnlyEpochEnd(Callback):
    def __init__(self):
        self.calls = 0

    def on_epoch_end(self, trainer):
        self.calls += 1


def test_event_order_for_one_epoch_of_two_batches(make_trainer):
    recorder = Recorder()
    trainer = make_trainer([recorder], max_epochs=1, batch_size=48)
    trainer.fit()
    batch = ["batch_start", "after_backward", "before_step", "batch_end"]
    validation = ["validation_start", "validation_end"]
    expected = ["fit_start", "epoch_start", *batch, *batch, *validation, "epoch_end"]
    assert recorder.events == [*expected, "fit_end"]
    assert trainer.step == 2 and trainer.stop_reason is StopReason.COMPLETED


def test_only_overriding_callbacks_are_dispatched(make_trainer):
    quiet = OnlyEpochEnd()
    trainer = make_trainer([quiet], max_epochs=2)
    assert [event for event, hooked in trainer._hooks.items() if hooked] == ["on_epoch_end"]
    trainer.fit()
    assert quiet.calls == 2


def test_metrics_match_an_independent_computation(make_trainer):
    """train_loss = size-weighted mean of the batch losses; val metrics = a plain eval pass."""
    losses, sizes = [], []

    class Collect(Callback):
        def on_batch_end(self, trainer):
            losses.append(trainer.last_loss)
            sizes.append(trainer.batch[1].shape[0])

    trainer = make_trainer([Collect()], max_epochs=1, batch_size=20)  # 96 = 4×20 + 16
    trainer.fit()
    expected = sum(l * s for l, s in zip(losses, sizes)) / sum(sizes)
    assert sizes == [20, 20, 20, 20, 16]
    assert trainer.metrics["train_loss"] == pytest.approx(expected, rel=1e-6)
    x = torch.cat([b[0] for b in trainer.val_loader])
    y = torch.cat([b[1] for b in trainer.val_loader])
    trainer.model.eval()
    with torch.no_grad():
        out = trainer.model(x)
    assert trainer.metrics["val_loss"] == pytest.approx(nn.functional.cross_entropy(out, y).item())
    accuracy = (out.argmax(1) == y).float().mean().item()
    assert trainer.metrics["val_accuracy"] == pytest.approx(accuracy)
    assert trainer.history[-1]["val_accuracy"] == trainer.metrics["val_accuracy"]


def test_max_steps_stops_mid_epoch_and_validates(make_trainer):
    trainer = make_trainer(max_epochs=10, max_steps=8)  # 6 batches per epoch
    trainer.fit()
    assert trainer.step == 8
    assert [row["step"] for row in trainer.history] == [6, 8]
    assert trainer.stop_reason is StopReason.COMPLETED


def test_cancel_batch_skips_the_step(make_trainer):
    class SkipOdd(Callback):
        def on_after_backward(self, trainer):
            if trainer.batch_idx % 2:
                raise CancelBatch

    trainer = make_trainer([SkipOdd()], max_epochs=1)
    trainer.fit()
    assert trainer.step == 3  # 6 batches, 3 skipped


def test_cancel_fit_records_its_reason(make_trainer):
    class Stop(Callback):
        def on_batch_end(self, trainer):
            if trainer.step == 4:
                raise CancelFit(StopReason.CALLBACK, "enough")

    recorder = Recorder()
    trainer = make_trainer([Stop(), recorder])
    trainer.fit()
    assert trainer.step == 4 and trainer.stop_reason is StopReason.CALLBACK
    assert trainer.stop_message == "enough" and recorder.events[-1] == "fit_end"


def test_exception_fires_on_exception_then_fit_end(make_trainer):
    class Boom(Callback):
        def on_batch_end(self, trainer):
            raise RuntimeError("boom")

    recorder = Recorder()
    trainer = make_trainer([Boom(), recorder])
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit()
    assert recorder.events[-2:] == ["exception", "fit_end"]
    assert trainer.stop_reason is StopReason.ERROR


def test_same_seed_same_weights_and_argument_checks(make_trainer, parts_factory):
    a = make_trainer(max_epochs=2).fit().model.state_dict()
    b = make_trainer(max_epochs=2).fit().model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    model, optimizer, loader, _, _ = parts_factory()
    with pytest.raises(ValueError, match="max_epochs or max_steps"):
        Trainer(model, optimizer, nn.functional.cross_entropy, loader)
    with pytest.raises(ValueError, match="max_steps"):
        Trainer(model, optimizer, nn.functional.cross_entropy, loader, max_steps=0)
    with pytest.raises(TypeError, match="optimizer"):
        Trainer(model, "sgd", nn.functional.cross_entropy, loader, max_epochs=1)


class KillAt(Callback):
    """Simulated crash: an exception at a given step (the real SIGKILL test is in
    tests/test_cli_train.py)."""

    def __init__(self, step):
        self.step = step

    @property
    def state_key(self):
        return "KillAt"

    def on_batch_end(self, trainer):
        if trainer.step == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("save_every", "crash_at"),
    [(4, 10), (6, 13), (5, 5)],  # mid-epoch; just after an epoch-end save; at the save step
)
def test_resume_is_bit_exact(make_trainer, tmp_path, save_every, crash_at):
    reference = make_trainer(run_dir=tmp_path / "ref", max_epochs=3).fit()
    crashed = make_trainer(
        [ModelCheckpoint(every_n_steps=save_every), KillAt(crash_at)],
        run_dir=tmp_path / "crash",
        max_epochs=3,
    )
    with pytest.raises(KeyboardInterrupt):
        crashed.fit()
    assert crashed.stop_reason is StopReason.INTERRUPTED
    resumed = make_trainer(
        [ModelCheckpoint(every_n_steps=save_every)], run_dir=tmp_path / "crash", max_epochs=3
    )
    train_set = resumed.train_loader.dataset
    resumed.fit(resume_from=tmp_path / "crash" / "checkpoints" / "last")
    ref, got = reference.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    ref_moments = reference.optimizer.state_dict()["state"][0]["exp_avg_sq"]
    assert torch.equal(resumed.optimizer.state_dict()["state"][0]["exp_avg_sq"], ref_moments)
    losses = [row["train_loss"] for row in reference.history]
    assert [row["train_loss"] for row in resumed.history] == losses
    assert resumed.step == reference.step == 18
    # the remaining batches were read, the consumed ones were not (6 batches of 16 per epoch)
    last_save = (crash_at // save_every) * save_every
    assert train_set.reads == (18 - last_save) * 16


@pytest.mark.parametrize("name", ["adabound", "aggmo"])
def test_resume_is_bit_exact_with_fused_optimizers(make_trainer, tmp_path, name):
    # their default path is the fused C kernel (where it builds): resuming must not depend on it
    reference = make_trainer(run_dir=tmp_path / "ref", optimizer=name, lr=0.01).fit()
    crashed = make_trainer(
        [ModelCheckpoint(every_n_steps=4), KillAt(10)],
        run_dir=tmp_path / "crash",
        optimizer=name,
        lr=0.01,
    )
    with pytest.raises(KeyboardInterrupt):
        crashed.fit()
    resumed = make_trainer(
        [ModelCheckpoint(every_n_steps=4)], run_dir=tmp_path / "crash", optimizer=name, lr=0.01
    )
    resumed.fit(resume_from=tmp_path / "crash" / "checkpoints" / "last")
    ref, got = reference.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    assert [row["train_loss"] for row in resumed.history] == [
        row["train_loss"] for row in reference.history
    ]
