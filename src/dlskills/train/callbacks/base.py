"""The callback contract of the Trainer (Lightning/fastai style, one concern per callback).

Events, in the order the Trainer fires them::

    on_fit_start
      on_epoch_start
        on_batch_start -> (forward, loss, backward) -> on_after_backward -> on_before_step
        -> (optimizer.step, scheduler.step) -> on_batch_end
      on_validation_start -> (validation, when there is a val loader) -> on_validation_end
      on_epoch_end
    on_fit_end            (always, also after an exception or a stop)
    on_exception          (before on_fit_end when the fit raised)

Every hook receives the trainer; callbacks read and set its public attributes (model, optimizer,
scheduler, step, epoch, last_loss, metrics, should_stop, ...); ``on_batch_start`` may replace
``trainer.batch`` (an ``(inputs, targets)`` pair): the step trains on whatever it holds after
those hooks, so a callback never needs to write into the loader's tensors. A callback that
keeps state implements ``state_dict``/``load_state_dict`` so checkpoints restore it; its state
must be JSON-serialisable (tensors go through the checkpoint's safetensors side via
``tensor_state``).

Control flow uses exceptions (fastai's Cancel*): raising ``CancelBatch`` from on_batch_start or
on_after_backward skips the rest of that batch (no optimizer step); ``CancelEpoch`` ends the epoch;
``CancelFit`` stops training with the given reason. A callback that replaced the trainer's state
(e.g. loaded a checkpoint with ``trainer.load_checkpoint``) raises ``Rewound`` so the Trainer
continues from the restored epoch and batch position.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from dlskills.train.trainer import Trainer

EVENTS: tuple[str, ...] = (
    "on_fit_start",
    "on_epoch_start",
    "on_batch_start",
    "on_after_backward",
    "on_before_step",
    "on_batch_end",
    "on_validation_start",
    "on_validation_end",
    "on_epoch_end",
    "on_exception",
    "on_fit_end",
)


class StopReason(enum.StrEnum):
    """Why a fit ended; recorded in summary.json."""

    COMPLETED = "completed"
    EARLY_STOPPING = "early_stopping"
    NON_FINITE = "non_finite"
    INTERRUPTED = "interrupted"
    CALLBACK = "callback"
    ERROR = "error"


class CancelBatch(Exception):
    """Skip the rest of the current batch (no optimizer step)."""


class CancelEpoch(Exception):
    """End the current epoch now (validation still runs)."""


class CancelFit(Exception):
    """Stop the fit; ``reason`` goes to ``trainer.stop_reason``."""

    def __init__(self, reason: StopReason = StopReason.CALLBACK, message: str = "") -> None:
        super().__init__(message or reason.value)
        self.reason = reason
        self.message = message


class Rewound(Exception):
    """The trainer's state was replaced mid-epoch (a checkpoint was loaded): restart the loop from
    the restored position."""


class Callback:
    """Base class: override the events you need. Hooks that are not overridden cost nothing
    (the Trainer only calls the callbacks that override each event)."""

    #: the key under which this callback's state is saved in checkpoints; unique per Trainer
    @property
    def state_key(self) -> str:
        return type(self).__name__

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_epoch_start(self, trainer: Trainer) -> None: ...
    def on_batch_start(self, trainer: Trainer) -> None: ...
    def on_after_backward(self, trainer: Trainer) -> None: ...
    def on_before_step(self, trainer: Trainer) -> None: ...
    def on_batch_end(self, trainer: Trainer) -> None: ...
    def on_validation_start(self, trainer: Trainer) -> None: ...
    def on_validation_end(self, trainer: Trainer) -> None: ...
    def on_epoch_end(self, trainer: Trainer) -> None: ...
    def on_exception(self, trainer: Trainer, exc: BaseException) -> None: ...
    def on_fit_end(self, trainer: Trainer) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state restored by ``load_state_dict`` on resume."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state

    def tensor_state(self) -> dict[str, torch.Tensor]:
        """Tensors to checkpoint (saved with safetensors under this callback's key)."""
        return {}

    def load_tensor_state(self, tensors: dict[str, torch.Tensor]) -> None:
        del tensors


def overrides(callback: Callback, event: str) -> bool:
    """True when ``callback`` implements ``event`` itself (so the Trainer needs to call it)."""
    return getattr(type(callback), event) is not getattr(Callback, event)
