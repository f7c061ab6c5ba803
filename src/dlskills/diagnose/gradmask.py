"""GradMask saliency regulariser (catalog 1904.07478; Simpson, Dutil, Bengio & Cohen, "GradMask:
Reduce Overfitting by Regularizing Saliency", MIDL 2019).

A classifier that rests its decision on inputs outside the region that should matter (a scanner
artefact instead of the lesion) overfits. GradMask penalises the saliency — the input gradient —
where a mask says it should vanish:

    total = L(f(x), y) + λ · ‖ m ⊙ ∂L/∂x ‖²₂

with L the task loss as computed on the batch (usually a batch mean), m the mask (1 where
saliency is penalised, 0 where it is allowed; for a segmentation S of the relevant region,
m = 1 − S) and ‖·‖²₂ the sum of squares over the whole batch. ∂L/∂x is taken with
``create_graph=True`` so the penalty is differentiable in the parameters (double backward).

Three forms:
- ``gradmask_penalty(inputs, loss, mask)``: the penalty for a loss already computed from
  ``inputs`` (which must require grad);
- ``GradMaskLoss(model, base_loss, lam, mask)``: a callable ``(x, y) -> total`` for hand-written
  loops (the Trainer's ``loss_fn(outputs, targets)`` cannot see the inputs);
- ``GradMask(lam, mask)``: a Trainer callback. After the Trainer's backward of L it runs one more
  forward on the batch inputs and backpropagates λ·penalty, so the step uses ∇θ(L + λ·penalty).
  Layers with randomness (dropout) draw fresh masks in that second forward.

Deviations: the paper takes the saliency of the classifier's output (the gradient of the
difference of the two class scores) and penalises it only on samples that have a segmentation;
here the saliency is that of the task loss (for cross-entropy, minus the gradient of the
target's log-probability, divided by the batch size for a mean loss) and the mask selects
samples and positions alike (an all-zero mask row
leaves a sample unpenalised).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from dlskills.train.callbacks.base import Callback

if TYPE_CHECKING:
    from dlskills.train.trainer import Trainer

MaskLike = torch.Tensor | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def gradmask_penalty(
    inputs: torch.Tensor, loss: torch.Tensor, mask: torch.Tensor, *, create_graph: bool = True
) -> torch.Tensor:
    """‖mask ⊙ ∂loss/∂inputs‖²₂ (``mask`` broadcast to ``inputs``)."""
    if not inputs.requires_grad:
        raise ValueError("inputs must require grad and be used to compute loss")
    if loss.dim() != 0:
        raise ValueError(f"loss must be a scalar, got shape {tuple(loss.shape)}")
    (saliency,) = torch.autograd.grad(loss, inputs, create_graph=create_graph)
    return (mask * saliency).pow(2).sum()


class GradMaskLoss:
    """``loss(x, y) = base_loss(model(x), y) + lam·‖mask ⊙ ∂base_loss/∂x‖²`` for custom loops.

    ``mask`` is a tensor broadcastable to x or a function ``mask(x, y)``. The latest task loss
    and penalty are kept in ``last_task_loss`` and ``last_penalty`` (detached)."""

    def __init__(
        self,
        model: nn.Module,
        base_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        lam: float,
        mask: MaskLike,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.model, self.base_loss, self.lam, self.mask = model, base_loss, _check_lam(lam), mask
        self.last_task_loss: torch.Tensor | None = None
        self.last_penalty: torch.Tensor | None = None

    def __call__(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        task, penalty = _task_and_penalty(self.model, self.base_loss, self.mask, inputs, targets)
        self.last_task_loss, self.last_penalty = task.detach(), penalty.detach()
        return task + self.lam * penalty


class GradMask(Callback):
    """Trainer callback adding ∇θ(lam·‖mask ⊙ ∂L/∂x‖²) to the gradients of every batch, with L
    the Trainer's ``loss_fn``. ``mask``: tensor broadcastable to the inputs or ``mask(x, y)``.
    The latest penalty is in ``last_penalty``."""

    def __init__(self, lam: float, mask: MaskLike) -> None:
        self.lam, self.mask = _check_lam(lam), mask
        self.last_penalty: torch.Tensor | None = None

    def on_after_backward(self, trainer: Trainer) -> None:
        inputs, targets = trainer.batch
        _, penalty = _task_and_penalty(trainer.model, trainer.loss_fn, self.mask, inputs, targets)
        (self.lam * penalty).backward()
        self.last_penalty = penalty.detach()


def _task_and_penalty(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    mask: MaskLike,
    inputs: torch.Tensor,
    targets: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    leaf = inputs.detach().requires_grad_(True)
    task = loss_fn(model(leaf), targets)
    weights = mask(inputs, targets) if callable(mask) else mask
    return task, gradmask_penalty(leaf, task, weights.to(leaf.device))


def _check_lam(lam: float) -> float:
    if isinstance(lam, bool) or not isinstance(lam, int | float) or lam < 0:
        raise ValueError(f"lam must be a non-negative number, got {lam!r}")
    return float(lam)
