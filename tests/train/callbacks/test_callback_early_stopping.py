"""Early stopping: patience, min_delta, mode."""

import pytest

from dlskills.train.callbacks import (
    EarlyStopping,
    StopReason,
)


def test_early_stopping_waits_patience_epochs(make_trainer, scripted_metric):
    losses = [1.0, 0.8, 0.85, 0.81, 0.9, 0.7, 0.6]
    stopper = EarlyStopping(2, monitor="val_loss", min_delta=0.0)
    trainer = make_trainer([scripted_metric("val_loss", losses), stopper], max_epochs=7)
    trainer.fit()
    # best 0.8 at epoch 2, no improvement at epochs 3 and 4 -> stop after epoch 4
    assert len(trainer.history) == 4 and trainer.stop_reason is StopReason.EARLY_STOPPING
    assert stopper.best == 0.8 and stopper.wait == 2
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(0)


def test_early_stopping_min_delta_and_max_mode(make_trainer, scripted_metric):
    accuracies = [0.5, 0.505, 0.509, 0.6]
    stopper = EarlyStopping(2, monitor="val_accuracy", min_delta=0.01)
    trainer = make_trainer([scripted_metric("val_accuracy", accuracies), stopper], max_epochs=4)
    trainer.fit()
    assert stopper.mode == "max" and len(trainer.history) == 3
