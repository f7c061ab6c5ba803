"""Gradient-norm clipping as a callback (catalog 1211.5063, Pascanu et al. 2012): after the
backward pass, if the global L2 norm ‖g‖ of all gradients exceeds ``max_norm``, scale them by
``max_norm / ‖g‖`` (torch.nn.utils.clip_grad_norm_). The last norm is kept on the device as
``last_norm`` (no sync)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from dlskills.train.callbacks._registry import register_callback
from dlskills.train.callbacks.base import Callback

if TYPE_CHECKING:
    from dlskills.train.trainer import Trainer


@register_callback("grad_clip", catalog_id="1211.5063")
class GradClip(Callback):
    def __init__(self, max_norm: float) -> None:
        if not max_norm > 0:
            raise ValueError(f"max_norm must be > 0, got {max_norm}")
        self.max_norm = float(max_norm)
        self.last_norm: torch.Tensor | None = None

    def on_after_backward(self, trainer: Trainer) -> None:
        self.last_norm = torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), self.max_norm)
