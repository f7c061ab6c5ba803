"""PMV (1905.10201): label flipping, the line fit, the sign of the slope on an oracle, and the
known-capacity ranking on a task whose right capacity is known exactly.

The task: x ~ N(0, I₂), y = [x₁x₂ > 0] (XOR of the signs). One hidden ReLU layer of 4 units
represents it exactly (sign(|x₁+x₂| − |x₁−x₂|) = sign(x₁x₂)) and cannot memorise 200 noisy
points; 1 unit cannot represent it; a 3×64 net memorises the flipped labels. Training accuracy
always prefers the oversized net, and so does validation accuracy on this task (wide nets
interpolate a smooth 2-D boundary well), while PMV picks the 4-unit net.
"""

import pytest
import torch
from torch import nn

from dlskills import repro
from dlskills.diagnose.pmv import (
    PMVResult,
    fit_line,
    flip_labels,
    pmv,
    rank_models,
    xor_task,
)


def test_flip_labels_flips_exactly_the_rate_to_other_classes_nested():
    labels = torch.arange(200) % 5
    flips = [flip_labels(labels, rate, 5, seed=3) != labels for rate in (0.0, 0.1, 0.3)]
    assert [int(f.sum()) for f in flips] == [0, 20, 60]
    assert bool((flips[2] | ~flips[1]).all())  # the 10% set is inside the 30% set
    noisy = flip_labels(labels, 0.5, 5, seed=3)
    assert noisy.min() >= 0 and noisy.max() <= 4
    assert torch.equal(noisy, flip_labels(labels, 0.5, 5, seed=3))
    assert not torch.equal(noisy, flip_labels(labels, 0.5, 5, seed=4))


def test_fit_line_recovers_an_exact_line():
    slope, intercept = fit_line([0.0, 0.1, 0.3, 0.5], [0.9 - 0.6 * r for r in (0.0, 0.1, 0.3, 0.5)])
    assert slope == pytest.approx(-0.6, abs=1e-12)
    assert intercept == pytest.approx(0.9, abs=1e-12)


class CleanOracle(nn.Module):
    """Predicts the clean label of x₁ > 0 and learns nothing: its accuracy on labels with a
    fraction r flipped is exactly 1 − r, so the PMV slope is exactly −1 (relevance 1)."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.stack([-x[:, 0], x[:, 0]], dim=1) + 0.0 * self.unused


def test_slope_sign_on_an_oracle_that_ignores_the_noise():
    x = torch.randn(100, 2)
    result = pmv(CleanOracle, (x, (x[:, 0] > 0).long()), (0.0, 0.1, 0.2, 0.4), steps=1)
    assert result.accuracies == pytest.approx((1.0, 0.9, 0.8, 0.6))
    assert result.clean_accuracies == pytest.approx((1.0,) * 4)
    assert result.slope == pytest.approx(-1.0)
    assert result.relevance == pytest.approx(1.0)


def test_fast_repro_pmv_picks_the_capacity_validation_accuracy_misses(tmp_path):
    """Seeds 0, 1, 2 (200 training points, noise rates 0/0.2/0.4, 300 steps): PMV picks the
    4-unit net in every seed with relevance margins 0.66, 0.50, 0.70; training and validation
    accuracy pick the 3×64 net in every seed. Written as result.json with its figure."""
    result = repro.run("1905.10201", out=tmp_path)
    assert result.verdict == repro.fast_verdict("1905.10201") == "reproduced", result.reason
    assert result.quantity("PMV relevance margin").seeds == (0, 1, 2)
    assert result["PMV picks the right capacity"] == 1.0
    assert result["validation accuracy picks it"] == 0.0
    assert result["training accuracy picks it"] == 0.0
    assert result["PMV relevance margin"] > 0.2
    assert (tmp_path / "pmv.png").stat().st_size > 1000
    assert repro.load(tmp_path) == result


@pytest.mark.slow
def test_full_repro_pmv_over_six_seeds():
    """Six noise rates, 300 points, 500 steps, seeds 0-5."""
    result = repro.get("1905.10201")(scale="full")
    assert result.verdict == "reproduced", result.reason


def test_xor_task_and_rank_models_arguments():
    x, y = xor_task(1000, seed=0)
    assert torch.equal(y, (torch.sign(x[:, 0]) == torch.sign(x[:, 1])).long())
    assert 0.45 < y.float().mean().item() < 0.55
    with pytest.raises(ValueError, match="factories"):
        rank_models({}, (x, y))


def test_result_plot_and_dict(tmp_path):
    result = PMVResult("m", (0.0, 0.5), (1.0, 0.6), (1.0, 1.0), -0.8, 1.0)
    assert result.as_dict()["relevance"] == pytest.approx(0.8)
    assert result.plot(tmp_path / "one.png").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"noise_rates": (0.1,)}, "noise_rates"),
        ({"noise_rates": (0.0, 1.0)}, "noise_rates"),
        ({"steps": 0}, "steps"),
        ({"lr": -1.0}, "lr"),
        ({"num_classes": 1}, "num_classes"),
    ],
)
def test_pmv_validates_arguments(kwargs, message):
    x = torch.randn(10, 2)
    with pytest.raises(ValueError, match=message):
        pmv(CleanOracle, (x, (x[:, 0] > 0).long()), **kwargs)


def test_pmv_rejects_float_labels():
    with pytest.raises(ValueError, match="labels"):
        pmv(CleanOracle, (torch.randn(10, 2), torch.randn(10)))
