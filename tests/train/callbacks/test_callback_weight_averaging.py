"""WeightAveraging (catalog polyak-juditsky-1992): the EMA of the weights after a burn-in, computed
by hand from the live weights after every step, is what validation, the checkpoints and the model
after the fit hold (the live weights before the burn-in ends); training continues from the live
weights; resuming is exact."""

import pytest
import torch

from dlskills.train.callbacks import Callback, ModelCheckpoint, WeightAveraging
from dlskills.train.checkpoint import load_checkpoint

DECAY = 0.9
START = 7  # 6 steps per epoch: the first epoch ends inside the burn-in


class HandEMA(Callback):
    """Records the live weights after each step and, after START steps, folds them into θ̄ by
    the EMA rule (θ̄ = the first averaged iterate, then θ̄ ← DECAY·θ̄ + (1 − DECAY)·θ)."""

    def __init__(self):
        self.average, self.live_at_epoch_start, self.val_losses = None, [], []
        self.live_at_validation = []

    @property
    def state_key(self):
        return "HandEMA"

    def on_epoch_start(self, trainer):
        self.live_at_epoch_start.append([p.detach().clone() for p in trainer.model.parameters()])

    def on_batch_end(self, trainer):
        live = [p.detach().clone() for p in trainer.model.parameters()]
        if trainer.step <= START:
            self.live = live
        elif self.average is None:
            self.average = live
        else:
            self.average = [DECAY * a + (1 - DECAY) * p for a, p in zip(self.average, live)]

    def on_validation_end(self, trainer):
        self.val_losses.append(trainer.metrics["val_loss"])
        self.live_at_validation.append(self.live)


def _val_loss_with(trainer, weights):
    backup = [p.detach().clone() for p in trainer.model.parameters()]
    with torch.no_grad():
        for param, value in zip(trainer.model.parameters(), weights):
            param.copy_(value)
        loss = trainer.evaluate(trainer.val_loader)["loss"]
        for param, value in zip(trainer.model.parameters(), backup):
            param.copy_(value)
    return loss


def test_validation_checkpoints_and_final_model_hold_the_ema(make_trainer, tmp_path):
    hand = HandEMA()
    checkpoint = ModelCheckpoint(monitor="val_loss")
    trainer = make_trainer([WeightAveraging("ema", DECAY, START), hand, checkpoint], max_epochs=3)
    trainer.fit()
    for got, expected in zip(trainer.model.parameters(), hand.average):
        torch.testing.assert_close(got.detach(), expected, rtol=1e-5, atol=1e-6)
    # the first epoch, inside the burn-in, was validated with the live weights
    assert hand.val_losses[0] == pytest.approx(
        _val_loss_with(trainer, hand.live_at_validation[0]), rel=1e-6
    )
    # the last epoch was validated with θ̄ (the model holds θ̄ after the fit)
    assert hand.val_losses[-1] == pytest.approx(_val_loss_with(trainer, hand.average), rel=1e-6)
    # the saved model tensors are θ̄ too
    _, tensors = load_checkpoint(tmp_path / "checkpoints" / "last")
    names = [f"model.{name}" for name, _ in trainer.model.named_parameters()]
    for name, expected in zip(names, hand.average):
        torch.testing.assert_close(tensors[name], expected, rtol=1e-5, atol=1e-6)


def test_training_continues_from_the_live_weights(make_trainer, tmp_path):
    reference = HandEMA()
    plain = make_trainer([reference], run_dir=tmp_path / "plain", max_epochs=3)
    plain.fit()
    hand = HandEMA()
    averaged = make_trainer(
        [WeightAveraging("ema", DECAY, START), hand], run_dir=tmp_path / "avg", max_epochs=3
    )
    averaged.fit()
    # each epoch starts from the live weights the unaveraged run has there
    for got, expected in zip(hand.live_at_epoch_start, reference.live_at_epoch_start):
        assert all(torch.equal(a, b) for a, b in zip(got, expected))
    assert [r["train_loss"] for r in averaged.history] == [r["train_loss"] for r in plain.history]


class KillAt(Callback):
    def __init__(self, step):
        self.step = step

    @property
    def state_key(self):
        return "KillAt"

    def on_batch_end(self, trainer):
        if trainer.step == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize("crash_at", [10, 13])  # a mid-epoch save; just after an epoch-end save
def test_resume_is_exact(make_trainer, tmp_path, crash_at):
    def averaging():
        return [WeightAveraging("ema", DECAY, START), ModelCheckpoint(every_n_steps=4)]

    reference = make_trainer(averaging(), run_dir=tmp_path / "ref", max_epochs=3).fit()
    crashed = make_trainer([*averaging(), KillAt(crash_at)], run_dir=tmp_path / "crash")
    with pytest.raises(KeyboardInterrupt):
        crashed.fit()
    resumed = make_trainer(averaging(), run_dir=tmp_path / "crash", max_epochs=3)
    resumed.fit(resume_from=tmp_path / "crash" / "checkpoints" / "last")
    ref, got = reference.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in reference.history]


def test_bad_arguments_are_rejected_before_a_fit():
    with pytest.raises(ValueError, match="decay"):
        WeightAveraging("ema", 1.0)
    with pytest.raises(ValueError, match="mode"):
        WeightAveraging("swa")
