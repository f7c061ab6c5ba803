"""Training: the Trainer, its callbacks, checkpoints and run directories.

``Trainer`` (dlskills.train.trainer) runs the loop; callbacks (dlskills.train.callbacks) do the
rest; ``save_checkpoint``/``load_checkpoint`` (dlskills.train.checkpoint) write and read
safetensors + JSON pairs; ``train_run``/``load_run`` (dlskills.train.runs) build a whole run from a
config and read one back.

The names below load on first use, so that ``dlskills.train.config`` (the run configuration,
read by ``dlskills train --help``) imports without torch.
"""

import importlib
from typing import Any

_LAZY = {
    "CheckpointError": "dlskills.train.checkpoint",
    "load_checkpoint": "dlskills.train.checkpoint",
    "save_checkpoint": "dlskills.train.checkpoint",
    "Trainer": "dlskills.train.trainer",
}

__all__ = ["CheckpointError", "Trainer", "load_checkpoint", "save_checkpoint"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
