"""Training: the Trainer, its callbacks, checkpoints and run directories.

``Trainer`` (dlskills.train.trainer) runs the loop; callbacks (dlskills.train.callbacks) do the
rest; ``save_checkpoint``/``load_checkpoint`` (dlskills.train.checkpoint) write and read
safetensors + JSON pairs; ``train_run``/``load_run`` (dlskills.train.runs) build a whole run from a
config and read one back.
"""

from dlskills.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from dlskills.train.trainer import Trainer

__all__ = ["CheckpointError", "Trainer", "load_checkpoint", "save_checkpoint"]
