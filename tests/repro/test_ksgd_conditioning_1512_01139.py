import pytest
import torch

from dlskills import repro
from dlskills.repro.ksgd_conditioning_1512_01139 import NOISE, excess_risk, one_pass, regression


def test_regression_has_the_condition_number_asked_for():
    _, _, _, scales = regression(0, 1e4)
    variances = scales.square()
    assert (variances.max() / variances.min()).item() == pytest.approx(1e4)


def test_one_ksgd_pass_is_the_ridge_solution():
    # the Kalman filter over all batches = (XᵀX + σ²/p₀ I)⁻¹ Xᵀy, σ² = NOISE², p₀ = 1e3
    x, y, theta, scales = regression(1, 1e3)
    ridge = torch.linalg.solve(x.T @ x + NOISE**2 / 1e3 * torch.eye(x.shape[1]), x.T @ y)
    assert one_pass("ksgd", 1.0, x, y).tolist() == pytest.approx(ridge.tolist(), abs=1e-8)
    assert excess_risk(theta, theta, scales) == 0.0


def test_fast_repro_ksgd_is_insensitive_to_conditioning():
    """1512.01139 at fast scale (seed 0): kSGD's excess risk after one pass is 4.95e-5 at κ = 10,
    10³ and 10⁵ (growth 1.000×); tuned SGD's 5.5e-4, 2.1e-3, 1.6e-3 (growth 2.9×)."""
    result = repro.get("1512.01139")(scale="fast")
    assert result.verdict == repro.fast_verdict("1512.01139") == "reproduced", result.reason
    assert result["risk growth κ = 10 → 1e5, kSGD"] == pytest.approx(1.0, abs=0.01)
    assert (
        result["excess risk, tuned SGD, κ = 100000"] > 10 * result["excess risk, kSGD, κ = 100000"]
    )
