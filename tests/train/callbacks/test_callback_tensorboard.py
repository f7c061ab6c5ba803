"""TensorBoardLogger: scalars written; clear error without tensorboard."""

import pytest


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
