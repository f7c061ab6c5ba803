"""Teacher–student training under label noise by co-teaching (catalog 1905.07202: Chadwick &
Newman, "Training Object Detectors With Noisy Data", 2019, §III; the rule is Han et al.'s
co-teaching, "Co-teaching: Robust Training of Deep Neural Networks with Extremely Noisy Labels",
NeurIPS 2018, Algorithm 1).

Two networks f and g, initialised differently, see the same minibatch B. Each picks the samples
it finds easy (small loss: likely clean labels) and its *peer* learns from them:

    B_f = argmin_{B' ⊂ B, |B'| = ⌊R(T)·|B|⌋}  Σ_{i∈B'} ℓ(f(x_i), y_i)      (B_g likewise for g)
    f  ←  f − η ∇_f (1/|B_g|) Σ_{i∈B_g} ℓ(f(x_i), y_i)
    g  ←  g − η ∇_g (1/|B_f|) Σ_{i∈B_f} ℓ(g(x_i), y_i)

with the kept fraction R(T) = 1 − τ·min(T / T_k, 1) at epoch T (0-based): every sample is used
while the networks learn the easy, mostly clean patterns, then a fraction τ (the noise rate, or
an estimate of it) of each batch is dropped, before the networks start memorising the noisy
labels. Each network acts as the other's teacher; their different errors keep one from
confirming its own mistakes.

In the Trainer: the model is a two-member ``dlskills.train.techniques.ensemble.Ensemble([f, g])``,
whose forward returns the combined prediction (the normalised geometric mean of the two
distributions; Han et al. evaluate f alone) and keeps both networks' logits for the loss; the
``CoTeaching`` callback supplies ``loss_fn`` (the sum of the two peer losses above, so each
network's gradient is that of its own mean loss on its peer's selection; the cross-entropy of
the combined prediction in evaluation) and advances R(T) every epoch. With
τ = 0 the same pair is trained plainly on every label: the control of the check.
``noisy_labels`` injects symmetric noise.

Deviations: Chadwick & Newman apply the selection per object of a detector's loss (and mix in a
per-image term); here the task is classification, so one sample is one object. Han et al.'s
schedule can ramp as T^c; only the linear ramp (c = 1) is provided.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from dlskills.train.callbacks._registry import register_callback
from dlskills.train.callbacks.base import Callback
from dlskills.train.techniques.ensemble import Ensemble, ensemble_of


def noisy_labels(
    labels: Tensor, rate: float, num_classes: int, generator: torch.Generator
) -> Tensor:
    """A copy of ``labels`` where each label, with probability ``rate``, is replaced by one of
    the other ``num_classes − 1`` classes drawn uniformly (symmetric noise)."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int ≥ 2, got {num_classes!r}")
    flip = torch.rand(labels.shape, generator=generator) < rate
    shift = torch.randint(1, num_classes, labels.shape, generator=generator)
    return torch.where(flip, (labels + shift) % num_classes, labels)


def small_loss_selection(losses: Tensor, keep: int) -> Tensor:
    """Indices of the ``keep`` smallest ``losses`` (the samples a network passes to its peer)."""
    return torch.argsort(losses.detach())[:keep]


def coteaching_loss(first: Tensor, second: Tensor, targets: Tensor, keep: int) -> Tensor:
    """Each peer's mean cross-entropy on the ``keep`` samples the *other* finds easiest, summed."""
    loss_first = F.cross_entropy(first, targets, reduction="none")
    loss_second = F.cross_entropy(second, targets, reduction="none")
    chosen_by_first = small_loss_selection(loss_first, keep)
    chosen_by_second = small_loss_selection(loss_second, keep)
    return loss_first[chosen_by_second].mean() + loss_second[chosen_by_first].mean()


@register_callback("coteaching", catalog_id="1905.07202")
class CoTeaching(Callback):
    """Co-teaching of a two-member ``Ensemble``: pass ``coteaching.loss_fn`` as the Trainer's
    ``loss_fn`` and the callback itself in ``callbacks``. ``forget_rate`` τ is the fraction of
    each batch dropped once the ramp of ``ramp_epochs`` T_k epochs is over (module docstring)."""

    def __init__(self, forget_rate: float, *, ramp_epochs: int = 10) -> None:
        if not 0.0 <= forget_rate < 1.0:
            raise ValueError(f"forget_rate must be in [0, 1), got {forget_rate}")
        if isinstance(ramp_epochs, bool) or not isinstance(ramp_epochs, int) or ramp_epochs < 1:
            raise ValueError(f"ramp_epochs must be an int ≥ 1, got {ramp_epochs!r}")
        self.forget_rate = float(forget_rate)
        self.ramp_epochs = ramp_epochs
        self.epoch = 0
        self.pair: Ensemble | None = None

    def kept_fraction(self, epoch: int) -> float:
        """R(T) = 1 − τ·min(T / T_k, 1)."""
        return 1.0 - self.forget_rate * min(epoch / self.ramp_epochs, 1.0)

    def on_fit_start(self, trainer: Any) -> None:
        pair = ensemble_of(trainer.model)
        if len(pair.members) != 2:
            raise ValueError(f"model: co-teaching trains 2 peers, got {len(pair.members)}")
        self.pair = pair

    def on_epoch_start(self, trainer: Any) -> None:
        self.epoch = trainer.epoch

    def loss_fn(self, outputs: Tensor, targets: Tensor) -> Tensor:
        if self.pair is None or self.pair.member_logits is None:  # evaluation
            return F.nll_loss(outputs, targets)
        keep = max(1, int(self.kept_fraction(self.epoch) * len(targets)))
        return coteaching_loss(*self.pair.take_member_logits(), targets, keep)


__all__ = ["CoTeaching", "coteaching_loss", "noisy_labels", "small_loss_selection"]
