import math

import pytest
import torch

from dlskills import repro
from dlskills.repro.momentum_rate_qian_1999 import measured_rate, predicted_rate, run_momentum


def test_predicted_rate_has_the_closed_forms_of_the_roots():
    # p = 0: plain gradient descent contracts by |1 − εk| in each direction
    assert predicted_rate(0.5, 0.0, (1.0, 0.1)) == pytest.approx(0.95)
    assert predicted_rate(1.5, 0.0, (1.0,)) == pytest.approx(0.5)
    # complex roots (under-damped): |λ| = √p whatever εk
    assert predicted_rate(1.0, 0.5, (1.0,)) == pytest.approx(math.sqrt(0.5))
    # real roots: the larger of ((1 + p − εk) ± √((1 + p − εk)² − 4p))/2, here ε = 0.01, p = 0.5
    b = 1.5 - 0.01
    assert predicted_rate(0.01, 0.5, (1.0,)) == pytest.approx((b + math.sqrt(b * b - 2.0)) / 2)


def test_heavy_ball_recursion_by_hand_matches_the_run():
    # x1 = x0 − εk x0; x2 = x1 − εk x1 + p (x1 − x0): ε = 0.2, p = 0.5, k = 1, x0 = 1
    norms = run_momentum(0.2, 0.5, (1.0,), torch.tensor([1.0]), 2)
    assert norms[1] == pytest.approx(0.8)
    assert norms[2] == pytest.approx(0.8 - 0.16 + 0.5 * (0.8 - 1.0))


def test_measured_rate_of_a_geometric_sequence():
    assert measured_rate([3 * 0.9**t for t in range(50)]) == pytest.approx(0.9)


def test_fast_repro_rate_stable_range_and_effective_learning_rate_match_the_analysis():
    """qian-1999 at fast scale (seed 0, 600 steps): 12 (ε, p) settings' rates within 1.1e-4 of
    max|λ|; 6/6 stability settings as εk < 2(1 + p) predicts; a slow direction decays at 1.009×
    εk/(1 − p)."""
    result = repro.get("qian-1999")(scale="fast")
    assert result.verdict == repro.fast_verdict("qian-1999") == "reproduced", result.reason
    assert result["largest relative error, measured vs predicted rate"] < 1e-3
    assert result["stability settings as predicted"] == 1.0
    assert result["slow-direction decay / (εk/(1-p))"] == pytest.approx(1.0, abs=0.02)
