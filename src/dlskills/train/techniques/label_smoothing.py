"""Label smoothing (catalog 1902.04103, Zhang et al. 2019, "Bag of Freebies for Training Object
Detection Neural Networks", §3.2; the rule is Szegedy et al.'s from Inception-v3).

With K classes, true class y and smoothing ε, the target distribution is

    q = (1 − ε)·onehot(y) + ε/K

and the loss is the cross-entropy against it, ``−Σ_i q_i log softmax(z)_i``. This is the form
``torch.nn.functional.cross_entropy(..., label_smoothing=ε)`` uses, and the tests check the two
agree. Bag of Freebies §3.2 writes q_i = 1 − ε for the true class and ε/K for the others, which
sums to 1 − ε/K; the form here (Szegedy's, torch's) also gives the true class its ε/K share so
that q is a distribution.

``soft_cross_entropy(logits, q)`` is the cross-entropy against any target distribution (mixup's
mixed targets, smoothed targets), averaged over the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _check_eps(eps: float) -> float:
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"eps must be in [0, 1], got {eps}")
    return float(eps)


def smooth_targets(y: torch.Tensor, num_classes: int, eps: float) -> torch.Tensor:
    """``(1 − eps)·onehot(y) + eps/num_classes``; ``y`` is integer class indices of shape (N,)
    or already a distribution of shape (N, num_classes) (smoothed the same way)."""
    eps = _check_eps(eps)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if y.is_floating_point():
        if y.ndim != 2 or y.shape[1] != num_classes:
            raise ValueError(f"soft y must have shape (N, {num_classes}), got {tuple(y.shape)}")
        distribution = y
    else:
        if y.ndim != 1:
            raise ValueError(f"integer y must have shape (N,), got {tuple(y.shape)}")
        distribution = F.one_hot(y, num_classes).float()
    return distribution * (1.0 - eps) + eps / num_classes


def soft_cross_entropy(logits: torch.Tensor, soft_targets: torch.Tensor) -> torch.Tensor:
    """Batch mean of ``−Σ_i q_i log softmax(logits)_i`` for target distributions ``q``."""
    if logits.shape != soft_targets.shape:
        raise ValueError(
            f"soft_targets must have the logits' shape {tuple(logits.shape)}, "
            f"got {tuple(soft_targets.shape)}"
        )
    return -(soft_targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


class LabelSmoothingCrossEntropy(nn.Module):
    """Cross-entropy against ``smooth_targets(y, K, eps)`` (K = the logits' class dimension);
    equal to ``F.cross_entropy(logits, y, label_smoothing=eps)`` for integer ``y``, and also
    accepts soft targets (e.g. from mixup), which it smooths the same way."""

    def __init__(self, eps: float = 0.1) -> None:
        super().__init__()
        self.eps = _check_eps(eps)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return soft_cross_entropy(logits, smooth_targets(targets, logits.shape[1], self.eps))

    def extra_repr(self) -> str:
        return f"eps={self.eps}"
