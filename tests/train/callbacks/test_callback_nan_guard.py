"""NaNGuard: stop naming the culprit, or roll back with a lower LR (bounded)."""

import math

import pytest
import torch

from dlskills.train.callbacks import (
    Callback,
    ModelCheckpoint,
    NaNGuard,
    StopReason,
)


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
