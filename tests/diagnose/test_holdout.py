"""Holdout guard (1511.05219, 1905.10360): the budget formula, Thresholdout's answers with the
noise switched off (exact) and on (its Laplace scale), query counting and the warning."""

import warnings

import pytest
import torch
from torch import nn

from dlskills.diagnose.holdout import HoldoutBudgetWarning, HoldoutGuard, reuse_budget


def labels_with_accuracy(labels, accuracy, num_classes=2):
    """Predictions that get exactly ``accuracy`` of ``labels`` right."""
    predictions = labels.clone()
    wrong = round((1 - accuracy) * len(labels))
    predictions[:wrong] = (labels[:wrong] + 1) % num_classes
    return predictions


@pytest.fixture
def holdout():
    y = torch.arange(100) % 2
    return torch.randn(100, 3), y


def test_reuse_budget_formula():
    # by hand: τ² m n / ln n = 0.0025 · 10 · 10⁴ / 9.2103 = 27.14 < τ n = 500 → 27
    assert reuse_budget(10_000, 10, 0.05) == 27
    assert reuse_budget(10_000, 2, 0.05) == 5  # 0.0025 · 2 · 10⁴ / 9.2103 = 5.43
    assert reuse_budget(1_000, 4, 0.1) == 5  # 0.01 · 4 · 1000 / 6.9078 = 5.79 < τ n = 100
    assert reuse_budget(100, 1000, 0.05) == 5  # 54.3 capped by τ n = 5
    assert reuse_budget(100, 2, 0.01) == 1  # 0.0043 rounds to 0: never below one query
    with pytest.raises(ValueError, match="tolerance"):
        reuse_budget(100, 2, 1.5)


def test_default_budget_grows_with_the_number_of_classes():
    x = torch.randn(10_000, 1)
    binary = HoldoutGuard(x, torch.arange(10_000) % 2)
    ten = HoldoutGuard(x, torch.arange(10_000) % 10)
    assert (binary.budget, ten.budget) == (5, 27)


def test_thresholdout_without_noise_is_exact(holdout):
    x, y = holdout
    guard = HoldoutGuard(x, y, threshold=0.04, sigma=0.0)
    predictions = labels_with_accuracy(y, 0.85)
    # |0.85 − 0.87| ≤ T: the training value comes back and the holdout is not revealed
    assert guard.query(predictions, train_accuracy=0.87) == 0.87
    assert (guard.queries, guard.revealed) == (1, 0)
    # |0.85 − 0.95| > T: the holdout value comes back
    assert guard.query(predictions, train_accuracy=0.95) == pytest.approx(0.85)
    assert (guard.queries, guard.revealed, guard.remaining) == (2, 1, guard.budget - 1)


def test_thresholdout_noise_has_the_laplace_scale(holdout):
    x, y = holdout
    sigma = 0.01
    guard = HoldoutGuard(x, y, sigma=sigma, budget=10_000, seed=3)
    predictions = labels_with_accuracy(y, 0.6)
    answers = torch.tensor(
        [guard.query(predictions, train_accuracy=1.0) for _ in range(4000)], dtype=torch.float64
    )
    revealed = answers != 1.0
    noise = answers[revealed] - 0.6
    assert guard.revealed == int(revealed.sum()) > 3990  # a gap of 0.4 ≫ T + noise (nearly always)
    assert abs(float(noise.mean())) < 0.1 * sigma
    assert float(noise.abs().mean()) == pytest.approx(sigma, rel=0.06)  # E|Lap(σ)| = σ
    again = HoldoutGuard(x, y, sigma=sigma, budget=10_000, seed=3)
    assert again.query(predictions, train_accuracy=1.0) == answers[0].item()


def test_small_gaps_rarely_reveal_the_holdout(holdout):
    x, y = holdout
    guard = HoldoutGuard(x, y, threshold=0.04, sigma=0.01, budget=10_000, seed=0)
    predictions = labels_with_accuracy(y, 0.8)
    answers = [guard.query(predictions, train_accuracy=0.8) for _ in range(2000)]
    # a reveal needs γ + η < −T with γ ~ Lap(0.02), η ~ Lap(0.04): probability well under 0.25
    assert 0 < guard.revealed < 0.25 * 2000
    assert answers.count(0.8) == 2000 - guard.revealed


def test_model_queries_use_the_training_split():
    model = nn.Linear(2, 2)
    x_train, x_hold = torch.randn(50, 2), torch.randn(50, 2)
    with torch.no_grad():
        y_train, y_hold = model(x_train).argmax(1), 1 - model(x_hold).argmax(1)
    guard = HoldoutGuard(x_hold, y_hold, x_train=x_train, y_train=y_train, sigma=0.0)
    assert guard.query(model) == 0.0  # train accuracy 1, holdout 0: the holdout value
    with pytest.raises(ValueError, match="train_accuracy"):
        HoldoutGuard(x_hold, y_hold).query(model)


def test_warns_past_the_budget(holdout):
    x, y = holdout
    guard = HoldoutGuard(x, y, mechanism="plain", budget=2)
    predictions = labels_with_accuracy(y, 0.7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert guard.query(predictions) == pytest.approx(0.7)
        guard.query(predictions)
    with pytest.warns(HoldoutBudgetWarning, match=r"3 revealed answers > budget 2"):
        guard.query(predictions)
    assert guard.queries == 3


def test_validates_arguments(holdout):
    x, y = holdout
    with pytest.raises(ValueError, match="mechanism"):
        HoldoutGuard(x, y, mechanism="ladder")
    with pytest.raises(ValueError, match="x_train"):
        HoldoutGuard(x, y, x_train=x)
    with pytest.raises(ValueError, match="predictions"):
        HoldoutGuard(x, y, mechanism="plain").query(torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="query"):
        HoldoutGuard(x, y, mechanism="plain").query([1, 0])
