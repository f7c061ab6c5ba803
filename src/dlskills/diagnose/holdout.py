"""Holdout-reuse guard (catalog 1511.05219, Russo & Zou, "How much does your data exploration
overfit? Controlling bias via information usage", 2015; catalog 1905.10360, Feldman, Frostig &
Hardt, "The advantages of multiple classes for reducing overfitting from test set reuse", 2019).

Every accuracy read from a test set that then steers the next model leaks information about that
set; the bias of the final estimate grows with that information (1511.05219). The guard wraps a
holdout set, counts the queries, answers them through Thresholdout (Dwork, Feldman, Hardt,
Pitassi, Reingold & Roth, "The reusable holdout", Science 2015) and warns past a budget.

Thresholdout, for a query φ (a model, or its holdout predictions) with training value a_t and
holdout value a_h, threshold T and noise scale σ:

    T̂ = T + γ,  γ ~ Lap(2σ)               (drawn at start and after every revealed answer)
    η ~ Lap(4σ)
    if |a_h − a_t| > T̂ + η:  answer a_h + ξ, ξ ~ Lap(σ), redraw γ, revealed += 1
    else:                    answer a_t

All draws come from one seeded ``torch.Generator``. ``mechanism="plain"`` answers a_h
exactly and every answer counts as revealed.

Budget (1905.10360): after k adaptively chosen accuracy queries on n samples with m classes,
the worst-case bias of any classifier built from the answers is Õ(max(√(k·ln n/(m·n)), k/n)).
Dropping the constants and log factors hidden in Õ, the bias stays below a tolerance τ while

    k ≤ budget(n, m, τ) = max(1, ⌊min(τ²·m·n / ln n, τ·n)⌋)

so m classes buy m/2 times the binary budget (τ²·n·2/ln n). The guard warns (``warnings.warn``,
``HoldoutBudgetWarning``) once the number of revealed answers passes the budget. This is a
worst-case count, deliberately conservative; pass ``budget=`` to override.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import nn

MECHANISMS = ("thresholdout", "plain")


class HoldoutBudgetWarning(UserWarning):
    """The holdout set has answered more adaptive queries than its reuse budget allows."""


def reuse_budget(n: int, num_classes: int, tolerance: float) -> int:
    """max(1, ⌊min(τ²·m·n / ln n, τ·n)⌋): queries on n samples and m classes whose worst-case
    bias stays below τ by the 1905.10360 bound (constants dropped)."""
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an int ≥ 2, got {n!r}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int ≥ 2, got {num_classes!r}")
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance must be in (0, 1), got {tolerance!r}")
    return max(1, math.floor(min(tolerance**2 * num_classes * n / math.log(n), tolerance * n)))


class HoldoutGuard:
    """Reusable-holdout access to ``(x_holdout, y_holdout)``.

    ``query(model_or_predictions, train_accuracy=None)`` returns an accuracy: a model is run on
    the holdout inputs (eval mode, no grad); a tensor is taken as its holdout predictions
    (class indices (N,) or scores (N, K)). The training value a_t is ``train_accuracy`` or, for
    a model, its accuracy on ``(x_train, y_train)``.
    """

    def __init__(
        self,
        x_holdout: torch.Tensor,
        y_holdout: torch.Tensor,
        *,
        x_train: torch.Tensor | None = None,
        y_train: torch.Tensor | None = None,
        num_classes: int | None = None,
        threshold: float = 0.04,
        sigma: float = 0.01,
        tolerance: float = 0.05,
        budget: int | None = None,
        mechanism: str = "thresholdout",
        seed: int = 0,
    ) -> None:
        if not isinstance(y_holdout, torch.Tensor) or y_holdout.dim() != 1:
            raise ValueError("y_holdout must be a 1-D tensor of class indices")
        if len(x_holdout) != len(y_holdout) or len(y_holdout) < 2:
            raise ValueError("x_holdout and y_holdout must hold the same number (≥ 2) of samples")
        if (x_train is None) != (y_train is None):
            raise ValueError("give both x_train and y_train, or neither")
        if mechanism not in MECHANISMS:
            raise ValueError(f"mechanism must be one of {MECHANISMS}, got {mechanism!r}")
        if threshold < 0 or sigma < 0:
            raise ValueError(f"threshold and sigma must be ≥ 0, got {threshold}, {sigma}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.x_holdout, self.y_holdout = x_holdout, y_holdout
        self.x_train, self.y_train = x_train, y_train
        self.num_classes = int(y_holdout.max()) + 1 if num_classes is None else num_classes
        self.threshold, self.sigma, self.mechanism = float(threshold), float(sigma), mechanism
        if budget is None:
            budget = reuse_budget(len(y_holdout), max(self.num_classes, 2), tolerance)
        elif not isinstance(budget, int) or budget < 1:
            raise ValueError(f"budget must be a positive int or None, got {budget!r}")
        self.budget = budget
        self.queries = 0
        self.revealed = 0
        self._generator = torch.Generator().manual_seed(seed)
        self._noisy_threshold = self.threshold + self._laplace(2 * self.sigma)

    @property
    def remaining(self) -> int:
        """Revealed answers left before the guard warns."""
        return max(0, self.budget - self.revealed)

    def query(self, model_or_predictions: Any, train_accuracy: float | None = None) -> float:
        """The guarded holdout accuracy of a model or of its holdout predictions."""
        holdout_accuracy = self._accuracy(model_or_predictions, self.x_holdout, self.y_holdout)
        self.queries += 1
        if self.mechanism == "plain":
            return self._reveal(holdout_accuracy)
        if train_accuracy is None:
            if not isinstance(model_or_predictions, nn.Module) or self.x_train is None:
                raise ValueError(
                    "Thresholdout needs the training value: pass train_accuracy, or a model "
                    "and build the guard with x_train/y_train"
                )
            train_accuracy = self._accuracy(model_or_predictions, self.x_train, self.y_train)
        if abs(holdout_accuracy - train_accuracy) > self._noisy_threshold + self._laplace(
            4 * self.sigma
        ):
            self._noisy_threshold = self.threshold + self._laplace(2 * self.sigma)
            return self._reveal(holdout_accuracy + self._laplace(self.sigma))
        return float(train_accuracy)

    def _reveal(self, answer: float) -> float:
        self.revealed += 1
        if self.revealed > self.budget:
            warnings.warn(
                f"holdout set reused past its budget: {self.revealed} revealed answers > "
                f"budget {self.budget} (n={len(self.y_holdout)}, {self.num_classes} classes); "
                "further decisions based on it may overfit the holdout — use fresh data",
                HoldoutBudgetWarning,
                stacklevel=3,
            )
        return float(answer)

    def _laplace(self, scale: float) -> float:
        """One Lap(0, scale) draw by inverse CDF from the guard's generator."""
        if scale == 0:
            return 0.0
        u = float(torch.rand((), generator=self._generator, dtype=torch.float64)) - 0.5
        return -scale * math.copysign(1.0, u) * math.log1p(-2 * abs(u))

    @staticmethod
    def _accuracy(query: Any, inputs: torch.Tensor, labels: torch.Tensor) -> float:
        if isinstance(query, nn.Module):
            was_training = query.training
            query.eval()
            with torch.no_grad():
                predictions = query(inputs)
            query.train(was_training)
        elif isinstance(query, torch.Tensor):
            predictions = query
        else:
            raise TypeError("query must be an nn.Module or a tensor of predictions")
        if predictions.dim() == 2:
            predictions = predictions.argmax(1)
        if predictions.shape != labels.shape:
            raise ValueError(
                f"predictions of shape {tuple(predictions.shape)} do not match the "
                f"{len(labels)} labels"
            )
        return float((predictions == labels).double().mean())
