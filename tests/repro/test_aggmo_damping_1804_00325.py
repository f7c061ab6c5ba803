import math

import pytest
import torch

from dlskills import repro
from dlskills.repro.aggmo_damping_1804_00325 import envelope_rate, predicted_rate, swings


def test_spectral_radius_reduces_to_heavy_ball_roots_for_one_velocity():
    # K = 1: the map of (θ, v) is heavy ball; complex roots have modulus √β
    assert predicted_rate(1.0, 0.1, (0.999,)) == pytest.approx(math.sqrt(0.999))
    # β = 0: plain gradient descent, |1 − lr·h|
    assert predicted_rate(0.5, 0.4, (0.0,)) == pytest.approx(0.8)


def test_spectral_radius_matches_a_literal_aggmo_recursion():
    # iterate the authors' rule by hand (v_i ← β_i v_i + hθ; θ ← θ − lr/K Σ v_i) on one scalar
    h, lr, betas = 1.0, 0.1, (0.0, 0.9, 0.99, 0.999)
    theta, velocities, norms = 1.0, [0.0] * 4, []
    for _ in range(3000):
        velocities = [b * v + h * theta for b, v in zip(betas, velocities)]
        theta -= lr / 4 * sum(velocities)
        norms.append(abs(theta))
    measured = envelope_rate(torch.tensor(norms[:1500], dtype=torch.float64))
    assert measured == pytest.approx(predicted_rate(h, lr, betas), rel=1e-4)


def test_envelope_rate_of_a_damped_cosine_and_swings_of_an_alternating_sequence():
    t = torch.arange(2000, dtype=torch.float64)
    x = 0.99**t * torch.cos(0.3 * t)
    assert envelope_rate(x) == pytest.approx(0.99, rel=1e-4)
    # (−0.5)^t flips sign every step; |x_t| ≥ 1e-3 for t ≤ 9 (0.5^10 < 1e-3): 10 swings
    assert swings(torch.tensor([(-0.5) ** k for k in range(30)], dtype=torch.float64)) == 10


def test_fast_repro_aggmo_damps_what_classical_momentum_at_0999_cannot():
    """1804.00325 at fast scale (seed 0, lr 0.1, h = (1, 0.001), 2000 steps): CM at β = 0.999
    decays along the steep direction at √β = 0.9995 (202 swings), AggMo (0, 0.9, 0.99, 0.999) at
    its spectral radius 0.9946 (12 swings), 10.8× faster; its late loss is 10× below the better
    of CM β = 0.999 and β = 0.9."""
    result = repro.get("1804.00325")(scale="fast")
    assert result.verdict == repro.fast_verdict("1804.00325") == "reproduced", result.reason
    assert result["decay speed-up along the steep direction, AggMo vs CM"] == pytest.approx(
        math.log(predicted_rate(1.0, 0.1, (0, 0.9, 0.99, 0.999))) / math.log(math.sqrt(0.999)),
        rel=5e-3,  # a 1e-6 error in the rate √0.999 is 0.2 % of its log
    )
    assert (
        result["swings of x above 1e-3, CM β = 0.999"]
        > 10 * result["swings of x above 1e-3, AggMo"]
    )
    assert result["best CM loss / AggMo loss"] >= 5.0
