"""Gradient clipping as a callback (catalog 1211.5063, Pascanu, Mikolov & Bengio, "On the
difficulty of training recurrent neural networks", 2012). Applied after the backward pass to
g = all gradients of the model, with ‖g‖ their global L2 norm:

    mode="norm"      if ‖g‖ > τ:  g ← g·τ/‖g‖        (the paper's Algorithm 1, τ = ``max_norm``;
                     torch.nn.utils.clip_grad_norm_)
    mode="value"     g_i ← clamp(g_i, −c, c) element-wise (c = ``clip_value``; the older
                     Mikolov-style rule the paper contrasts with: it changes the direction)
    mode="adaptive"  norm clipping with τ_t = ``factor`` · mean(n_{t−W}, …, n_{t−1}), the mean of
                     the last W = ``window`` recorded norms, where the recorded norm is the norm
                     AFTER clipping, n_s = min(‖g_s‖, τ_s). No clipping while nothing is recorded
                     (the first step).

The adaptive rule turns the paper's practical advice ("look at statistics on the average norm
over a sufficiently large number of updates … values from half to ten times this average were
fine") into an online threshold. Recording the clipped norm, not the raw one, is our choice: an
explosion then cannot raise the threshold that is meant to contain the next one.

``last_norm`` is the global norm before clipping (all modes), kept on the device (no sync). The
adaptive history is checkpointed (``tensor_state`` + ``state_dict``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from dlskills.train.callbacks._registry import register_callback
from dlskills.train.callbacks.base import Callback

if TYPE_CHECKING:
    from dlskills.train.trainer import Trainer

MODES = ("norm", "value", "adaptive")


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}")
    return float(value)


@register_callback("grad_clip", catalog_id="1211.5063")
class GradClip(Callback):
    """Clip gradients by global norm (``max_norm``), by value (``clip_value``) or adaptively
    (``factor`` × the mean of the last ``window`` clipped norms); see the module doc."""

    def __init__(
        self,
        max_norm: float | None = None,
        *,
        mode: str = "norm",
        clip_value: float | None = None,
        factor: float = 5.0,
        window: int = 50,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if (max_norm is not None) != (mode == "norm"):
            raise ValueError(
                f"max_norm is required for mode='norm' and only for it (mode={mode!r})"
            )
        if (clip_value is not None) != (mode == "value"):
            raise ValueError(
                f"clip_value is required for mode='value' and only for it (mode={mode!r})"
            )
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an int >= 1, got {window!r}")
        self.mode = mode
        self.max_norm = None if max_norm is None else _positive("max_norm", max_norm)
        self.clip_value = None if clip_value is None else _positive("clip_value", clip_value)
        self.factor = _positive("factor", factor)
        self.window = window
        self.last_norm: torch.Tensor | None = None
        self.last_threshold: torch.Tensor | None = None  # adaptive mode: τ used at the last step
        self._history: torch.Tensor | None = None  # ring buffer of recorded (clipped) norms
        self._recorded = 0  # norms recorded so far (the ring position is _recorded % window)

    def on_after_backward(self, trainer: Trainer) -> None:
        params = [p for p in trainer.model.parameters() if p.grad is not None]
        if not params:
            return
        grads = [p.grad for p in params]
        if self.mode == "norm":
            self.last_norm = torch.nn.utils.clip_grad_norm_(params, self.max_norm)
        elif self.mode == "value":
            self.last_norm = torch.nn.utils.get_total_norm(grads)
            torch.nn.utils.clip_grad_value_(params, self.clip_value)
        else:
            self._clip_adaptive(grads)

    def _clip_adaptive(self, grads: list[torch.Tensor]) -> None:
        norm = torch.nn.utils.get_total_norm(grads).to(torch.float32)
        if self._history is None or self._history.device != norm.device:
            self._history = torch.zeros(self.window, device=norm.device)
        self.last_norm = norm
        if self._recorded == 0:
            recorded = norm
            self.last_threshold = None
        else:
            seen = min(self._recorded, self.window)
            threshold = self.factor * self._history[:seen].mean()
            # same epsilon as torch's clip_grad_norm_; the coefficient never scales up
            coef = (threshold / (norm + 1e-6)).clamp(max=1.0)
            torch._foreach_mul_(grads, coef.to(grads[0].dtype))
            recorded = torch.minimum(norm, threshold)
            self.last_threshold = threshold
        self._history[self._recorded % self.window] = recorded
        self._recorded += 1

    def state_dict(self) -> dict[str, Any]:
        return {"recorded": self._recorded} if self.mode == "adaptive" else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._recorded = int(state.get("recorded", 0))

    def tensor_state(self) -> dict[str, torch.Tensor]:
        return {"history": self._history} if self._history is not None else {}

    def load_tensor_state(self, tensors: dict[str, torch.Tensor]) -> None:
        if "history" in tensors:
            self._history = tensors["history"].clone()
