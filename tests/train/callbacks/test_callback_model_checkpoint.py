"""ModelCheckpoint: best and last checkpoints hold the right epochs' weights."""

import torch

from dlskills.train.callbacks import (
    Callback,
    ModelCheckpoint,
)
from dlskills.train.checkpoint import load_checkpoint


def test_model_checkpoint_keeps_the_best_epoch(make_trainer, scripted_metric, tmp_path):
    accuracies = [0.6, 0.9, 0.7]
    checkpointer = ModelCheckpoint(monitor="val_accuracy")
    snapshots = {}

    class Snapshot(Callback):
        def on_epoch_end(self, trainer):
            snapshots[trainer.epoch] = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    trainer = make_trainer(
        [scripted_metric("val_accuracy", accuracies), checkpointer, Snapshot()], max_epochs=3
    )
    trainer.fit()
    assert checkpointer.best == 0.9 and checkpointer.best_epoch == 2
    _, best = load_checkpoint(tmp_path / "checkpoints" / "best")
    _, last = load_checkpoint(tmp_path / "checkpoints" / "last")
    assert torch.equal(best["model.0.weight"], snapshots[1]["0.weight"])
    assert torch.equal(last["model.0.weight"], snapshots[2]["0.weight"])


def test_model_checkpoint_ties_go_to_the_later_epoch(make_trainer, scripted_metric):
    checkpointer = ModelCheckpoint(monitor="val_accuracy")
    trainer = make_trainer([scripted_metric("val_accuracy", [0.6, 0.9, 0.9, 0.8]), checkpointer])
    trainer.max_epochs = 4
    trainer.fit()
    assert checkpointer.best == 0.9 and checkpointer.best_epoch == 3


def test_checkpoint_json_holds_no_random_state_words(make_trainer, scripted_metric, tmp_path):
    # Python's and NumPy's Mersenne-Twister states (625 words each) belong in the tensor file:
    # as JSON lists they made each save's record ~75 kB and its encoding the slowest part
    trainer = make_trainer([scripted_metric("val_accuracy", [0.5]), ModelCheckpoint()])
    trainer.max_epochs = 1
    trainer.fit()
    record = (tmp_path / "checkpoints" / "last.json").read_text()
    assert len(record) < 8_000, len(record)
    _, tensors = load_checkpoint(tmp_path / "checkpoints" / "last")
    assert tensors["rng.python"].numel() == 625 and tensors["rng.numpy"].numel() == 624
