"""Catalog 1211.5063 (Pascanu et al. 2012): gradient-norm clipping against the best unclipped
learning rate on the adding task at T = 50 (protocol in dlskills.repro.grad_clipping_1211_5063).
"""

import math
from types import SimpleNamespace

import pytest
import torch

from dlskills import repro
from dlskills.repro.grad_clipping_1211_5063 import population_forward, rnn_model
from dlskills.train.callbacks import GradClip


def test_population_forward_is_each_models_own_forward_and_gradient():
    models = [rnn_model(12, 8, seed) for seed in (0, 1, 2)]
    x = torch.rand(3, 5, 12, 2)
    out = population_forward(models, x)
    expected = torch.stack([model(x[index]) for index, model in enumerate(models)])
    torch.testing.assert_close(out, expected)
    # each network's gradient (and so its clipping) is its own: GradClip on a member after the
    # population backward equals GradClip after that model's own backward
    out.pow(2).sum().backward()
    twin = rnn_model(12, 8, 1)
    twin(x[1]).pow(2).sum().backward()
    for clipped in (models[1], twin):
        GradClip(0.1).on_after_backward(SimpleNamespace(model=clipped))
    for mine, theirs in zip(models[1].parameters(), twin.parameters()):
        torch.testing.assert_close(mine.grad, theirs.grad)


def test_fast_repro_clipping_against_the_best_unclipped_rate():
    """Seed 0, rates 0.01-0.1, 2,000 steps at T = 50: without clipping lr 0.1 diverges, with
    clipping no rate does; the best clipped run (lr 0.01) ends below the best unclipped one
    (0.948 vs 0.983 of the trivial MSE), but neither learns the task (the threshold asks for
    0.8): partial, and the reason says which threshold fails."""
    result = repro.get("1211.5063")(scale="fast")
    assert result.verdict == repro.fast_verdict("1211.5063"), result.reason
    assert result.verdict == "partial"
    assert result["unclipped runs diverged"] >= 1
    assert result["clipped runs diverged"] == 0
    assert result["unclipped minus clipped (MSE / trivial)"] > 0
    assert result["test MSE / trivial, best clipped rate"] < 1.0
    assert "best clipped rate" in result.reason


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_full_repro_clipping_against_the_best_unclipped_rate():
    """Seeds 0-2, rates 0.003-0.1 (measured: clipped beats the best unclipped rate on every seed
    by 0.11 ± 0.09 of the trivial MSE; lr 0.1 diverges unclipped on every seed; the best clipped
    run reaches 0.87 ± 0.07 of the trivial MSE, short of learning the task: partial)."""
    result = repro.get("1211.5063")(scale="full")
    assert result["unclipped minus clipped (MSE / trivial)"] > 0
    assert result["clipped runs diverged"] == 0
    assert not math.isnan(result["test MSE / trivial, best clipped rate"])
