"""LRMonitor: recorded rates equal the schedule's."""

import pytest

from dlskills.train.callbacks import (
    LRMonitor,
)


def test_lr_monitor_follows_the_scheduler(make_trainer):
    monitor = LRMonitor(every_n_steps=2)
    trainer = make_trainer([monitor], max_epochs=1)  # lr_t = 0.05 · 0.97^t
    trainer.fit()
    assert [step for step, _ in monitor.history] == [0, 2, 4, 6]
    for step, (rate,) in monitor.history:
        assert rate == pytest.approx(0.05 * 0.97**step)
    assert trainer.metrics["lr"] == pytest.approx(0.05 * 0.97**6)
