"""NaN/Inf guard: after each backward pass, check the loss and every gradient for non-finite
values (one fused ``torch._foreach_norm`` and one host read per checked step) before the
optimizer can write them into the weights.

On detection:
- ``policy="stop"``: stop the fit (``StopReason.NON_FINITE``) naming the first non-finite tensor
  in ``named_parameters`` order — a parameter if one is already bad, else the first gradient;
- ``policy="rollback"``: reload the trainer's last checkpoint (``trainer.last_checkpoint``, e.g.
  written by ModelCheckpoint), multiply every learning rate (and the scheduler's base rates) by
  ``lr_factor`` and continue from the checkpoint's position; after ``max_retries`` rollbacks,
  stop as above.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from dlskills.train.callbacks._registry import register_callback
from dlskills.train.callbacks.base import Callback, CancelFit, Rewound, StopReason

if TYPE_CHECKING:
    from dlskills.train.trainer import Trainer

POLICIES = ("stop", "rollback")


@register_callback("nan_guard")
class NaNGuard(Callback):
    def __init__(
        self,
        policy: str = "stop",
        *,
        lr_factor: float = 0.5,
        max_retries: int = 3,
        check_every: int = 1,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        if not 0 < lr_factor < 1:
            raise ValueError(f"lr_factor must be in (0, 1), got {lr_factor}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be a non-negative int, got {max_retries!r}")
        if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
            raise ValueError(f"check_every must be a positive int, got {check_every!r}")
        self.policy = policy
        self.lr_factor = lr_factor
        self.max_retries = max_retries
        self.check_every = check_every
        self.retries = 0
        self.lr_scale = 1.0
        self.events: list[dict[str, Any]] = []

    def on_after_backward(self, trainer: Trainer) -> None:
        if (trainer.step + 1) % self.check_every:
            return
        grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
        loss = trainer.loss
        norms = torch._foreach_norm(grads) if grads else []
        finite = torch.stack([*norms, loss.detach().reshape(())]).isfinite().all()
        if bool(finite):
            return
        culprit = first_non_finite(trainer.model, loss)
        self.events.append({"step": trainer.step, "tensor": culprit})
        can_retry = self.retries < self.max_retries and trainer.last_checkpoint is not None
        if self.policy == "rollback" and can_retry:
            self._rollback(trainer)
        message = f"non-finite value in {culprit} at step {trainer.step + 1}"
        if self.policy == "rollback":
            message += f" (after {self.retries} rollback(s))"
        raise CancelFit(StopReason.NON_FINITE, message)

    def _rollback(self, trainer: Trainer) -> None:
        target_scale = self.lr_scale * self.lr_factor
        retries, events = self.retries + 1, self.events
        trainer.load_checkpoint(trainer.last_checkpoint)  # restores this callback's saved state
        factor = target_scale / self.lr_scale
        for group in trainer.optimizer.param_groups:
            group["lr"] *= factor
            if "initial_lr" in group:
                group["initial_lr"] *= factor
        if hasattr(trainer.scheduler, "base_lrs"):
            trainer.scheduler.base_lrs = [rate * factor for rate in trainer.scheduler.base_lrs]
        self.lr_scale, self.retries, self.events = target_scale, retries, events
        raise Rewound

    def state_dict(self) -> dict[str, Any]:
        return {"retries": self.retries, "lr_scale": self.lr_scale, "events": self.events}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.retries, self.lr_scale = int(state["retries"]), float(state["lr_scale"])
        self.events = list(state["events"])


def first_non_finite(model: torch.nn.Module, loss: torch.Tensor | None = None) -> str:
    """Name of the first non-finite tensor: a parameter, else a gradient, else the loss."""
    named = list(model.named_parameters())
    for name, param in named:
        if not bool(param.detach().isfinite().all()):
            return f"parameter {name!r}"
    for name, param in named:
        if param.grad is not None and not bool(param.grad.isfinite().all()):
            return f"gradient of {name!r}"
    if loss is not None and not bool(loss.detach().isfinite().all()):
        return "the loss"
    return "no tensor (all finite)"
