"""CSVLogger: one flushed row per epoch; cut back on resume."""

import csv

import pytest

from dlskills.train.callbacks import (
    Callback,
    CSVLogger,
)


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
