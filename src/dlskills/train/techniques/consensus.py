"""Consensus-of-models prediction filter (catalog 1901.06566; Salman & Liu, "Overfitting
Mechanism and Avoidance in Deep Neural Networks", 2019).

The paper attributes overfitting to gradient updates that continue after the training data are
fitted, driven by the scale sensitivity of the cross-entropy, which makes models confident in
idiosyncratic ways away from the data; independently trained models then disagree exactly where
they overfit. Its remedy is to classify only by consensus: train M models independently
(different seeds) and, for an input x,

    votes_c(x) = #{m : argmax_k f_m(x)_k = c},     ĉ(x) = argmax_c votes_c(x)
    accept x  ⇔  votes_ĉ(x) / M ≥ min_agreement            (1: all models agree)

and abstain otherwise. ``ConsensusFilter`` is that rule as an ``nn.Module`` over any classifiers
returning logits; ``consensus_report`` measures coverage (the accepted fraction) and the accuracy
on the accepted inputs against the plain majority vote on all of them. Ties in the vote go to
the lowest class index (``torch.max``'s choice); a tie can only be accepted when
``min_agreement`` ≤ 1/2.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn


class ConsensusPrediction(NamedTuple):
    labels: Tensor  # (N,) majority class
    accepted: Tensor  # (N,) bool: the agreement reaches min_agreement
    agreement: Tensor  # (N,) fraction of models voting for ``labels``


class ConsensusFilter(nn.Module):
    """Predicts the models' majority class and accepts it where at least ``min_agreement`` of
    them (a fraction in (0, 1]) vote for it."""

    def __init__(self, models: Sequence[nn.Module], *, min_agreement: float = 1.0) -> None:
        super().__init__()
        if len(models) < 2:
            raise ValueError(f"a consensus needs at least 2 models, got {len(models)}")
        if not 0.0 < min_agreement <= 1.0:
            raise ValueError(f"min_agreement must be in (0, 1], got {min_agreement}")
        self.models = nn.ModuleList(models)
        self.min_agreement = float(min_agreement)

    def forward(self, x: Tensor) -> ConsensusPrediction:
        predictions = torch.stack([model(x).argmax(dim=1) for model in self.models])  # (M, N)
        classes = int(predictions.max()) + 1
        votes = torch.zeros(classes, predictions.shape[1], dtype=torch.long)
        votes.scatter_add_(0, predictions, torch.ones_like(predictions))
        counts, labels = votes.max(dim=0)  # max returns the first (lowest) class on ties
        agreement = counts.to(torch.float32) / len(self.models)
        # a small tolerance: 2/3 must count as ≥ 0.6667 despite float rounding
        accepted = agreement >= self.min_agreement - 1e-6
        return ConsensusPrediction(labels, accepted, agreement)


@dataclass
class ConsensusReport:
    """Coverage and accuracies of a filter on labelled data."""

    coverage: float  # fraction of inputs accepted
    accepted_accuracy: float  # accuracy on the accepted inputs (nan if none)
    majority_accuracy: float  # accuracy of the majority vote on every input
    member_accuracies: list[float]  # each model alone


@torch.no_grad()
def consensus_report(
    consensus: ConsensusFilter, batches: Iterable[tuple[Tensor, Tensor]]
) -> ConsensusReport:
    """Evaluate ``consensus`` (put in eval mode) on ``(inputs, targets)`` batches."""
    consensus.eval()
    total = accepted = accepted_right = majority_right = 0
    member_right = [0] * len(consensus.models)
    for inputs, targets in batches:
        prediction = consensus(inputs)
        correct = prediction.labels == targets
        total += len(targets)
        accepted += int(prediction.accepted.sum())
        accepted_right += int((correct & prediction.accepted).sum())
        majority_right += int(correct.sum())
        for m, model in enumerate(consensus.models):
            member_right[m] += int((model(inputs).argmax(dim=1) == targets).sum())
    if total == 0:
        raise ValueError("no data to evaluate")
    return ConsensusReport(
        coverage=accepted / total,
        accepted_accuracy=accepted_right / accepted if accepted else float("nan"),
        majority_accuracy=majority_right / total,
        member_accuracies=[right / total for right in member_right],
    )


__all__ = ["ConsensusFilter", "ConsensusPrediction", "ConsensusReport", "consensus_report"]
