"""Ensembles trained with the modular loss, from independent to joint training (catalog
1902.04422: Webb, Reynolds, Iliescu, Reeve, Luján & Brown, "Joint Training of Neural Network
Ensembles", 2019, Eq. 4-6).

M members f_1 … f_M output class distributions p_i = softmax(z_i); the ensemble combines them by
the normalised geometric mean, the combiner under which the cross-entropy decomposes:

    log p̄ = log_softmax( (1/M) Σ_i log p_i )
    CE(p̄, y) = (1/M) Σ_i CE(p_i, y) − A,      A = (1/M) Σ_i KL(p̄ ‖ p_i) = −log Z ≥ 0

(Z = Σ_c Π_i p_ic^(1/M) ≤ 1 is the normaliser of the geometric mean; A, the ambiguity, is how
much the members disagree and does not depend on the label). The modular loss trades the two
ends off with λ:

    L_λ = λ · CE(p̄, y) + (1 − λ) · (1/M) Σ_i CE(p_i, y)  =  (1/M) Σ_i CE(p_i, y) − λ·A

λ = 0 trains each member on its own loss (independent training, diversity only from the
initialisations and batches), λ = 1 trains the ensemble as one network on its own loss (joint
training: the members are free to trade individual accuracy for disagreement that helps the
combined output).

In the Trainer: the model is an ``Ensemble(members)``, whose forward returns log p̄ (so
accuracy, evaluation and ``F.cross_entropy`` treat it as one classifier) and keeps the members'
logits for the loss; the ``ModularLoss`` callback supplies ``loss_fn``. ``ensemble_statistics``
measures the decomposition on a data set.

Deviation: the paper also studies λ > 1 (more than joint, where training degenerates) and
averaging probabilities; only λ ∈ [0, 1] and the geometric-mean combiner are provided.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlskills.train.callbacks._registry import register_callback
from dlskills.train.callbacks.base import Callback
from dlskills.train.strategy import unwrap


def combine(logits: Sequence[Tensor]) -> Tensor:
    """log p̄: the log of the normalised geometric mean of the members' distributions."""
    return F.log_softmax(torch.stack([F.log_softmax(z, dim=-1) for z in logits]).mean(0), dim=-1)


class Ensemble(nn.Module):
    """Members on the same inputs: ``forward`` returns log p̄ (``combine``) and, in training
    mode, keeps the members' logits in ``member_logits`` for a loss that needs them."""

    def __init__(self, members: Iterable[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        if len(self.members) < 2:
            raise ValueError(f"members: an ensemble needs at least 2, got {len(self.members)}")
        if len({id(m) for m in self.members}) != len(self.members):
            raise ValueError("members: each member must be a different network")
        self.member_logits: list[Tensor] | None = None

    def forward(self, inputs: Tensor) -> Tensor:
        logits = [member(inputs) for member in self.members]
        self.member_logits = logits if self.training else None
        return combine(logits)

    def take_member_logits(self) -> list[Tensor]:
        """The members' logits of the last training forward (each forward's are read once)."""
        if self.member_logits is None:
            raise ValueError("member_logits: no training forward since the last loss")
        logits, self.member_logits = self.member_logits, None
        return logits


def modular_loss(logits: Sequence[Tensor], targets: Tensor, lam: float) -> Tensor:
    """L_λ = λ·CE(p̄, y) + (1 − λ)·(1/M) Σ_i CE(p_i, y)."""
    members = torch.stack([F.cross_entropy(z, targets) for z in logits]).mean()
    return lam * F.nll_loss(combine(logits), targets) + (1 - lam) * members


def ensemble_of(model: nn.Module) -> Ensemble:
    """``model`` behind its compile/DDP wrappers, which must be an ``Ensemble``."""
    inner = unwrap(model)
    if not isinstance(inner, Ensemble):
        raise ValueError(f"model: needs an Ensemble of members, got {type(inner).__name__}")
    return inner


@register_callback("modular_loss", catalog_id="1902.04422")
class ModularLoss(Callback):
    """Train an ``Ensemble`` on L_λ: pass ``modular.loss_fn`` as the Trainer's ``loss_fn`` and
    the callback itself in ``callbacks``; ``lam`` = 0 independent, 1 joint training."""

    def __init__(self, lam: float) -> None:
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lam must be in [0, 1], got {lam}")
        self.lam = float(lam)
        self.ensemble: Ensemble | None = None

    def on_fit_start(self, trainer: Any) -> None:
        self.ensemble = ensemble_of(trainer.model)

    def loss_fn(self, outputs: Tensor, targets: Tensor) -> Tensor:
        if self.ensemble is None or self.ensemble.member_logits is None:  # evaluation
            return F.nll_loss(outputs, targets)
        return modular_loss(self.ensemble.take_member_logits(), targets, self.lam)


@dataclass(frozen=True)
class EnsembleStatistics:
    """On one data set: the ensemble's error and cross-entropy, the members' mean error and
    cross-entropy, and the ambiguity A = members' mean CE − ensemble CE (diversity)."""

    ensemble_error: float
    member_error: float
    ensemble_loss: float
    member_loss: float

    @property
    def ambiguity(self) -> float:
        return self.member_loss - self.ensemble_loss


@torch.no_grad()
def ensemble_statistics(ensemble: Ensemble, inputs: Tensor, targets: Tensor) -> EnsembleStatistics:
    """Errors (fractions) and cross-entropies of ``ensemble`` and its members on one data set."""
    was_training = ensemble.training
    ensemble.eval()
    try:
        logits = [member(inputs) for member in ensemble.members]
    finally:
        ensemble.train(was_training)
    combined = combine(logits)
    return EnsembleStatistics(
        ensemble_error=float((combined.argmax(1) != targets).float().mean()),
        member_error=float(
            torch.stack([(z.argmax(1) != targets).float().mean() for z in logits]).mean()
        ),
        ensemble_loss=float(F.nll_loss(combined, targets)),
        member_loss=float(torch.stack([F.cross_entropy(z, targets) for z in logits]).mean()),
    )


__all__ = [
    "Ensemble",
    "EnsembleStatistics",
    "ModularLoss",
    "combine",
    "ensemble_of",
    "ensemble_statistics",
    "modular_loss",
]
