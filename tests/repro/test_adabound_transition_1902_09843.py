import pytest
import torch

from dlskills import repro
from dlskills.optim.adabound import AdaBound
from dlskills.repro.adabound_transition_1902_09843 import RateProbe, rate_spread


def test_rate_spread_is_the_ratio_of_the_90th_to_the_10th_percentile():
    rates = torch.arange(1, 102, dtype=torch.float64)  # 1..101: p90 = 91, p10 = 11
    assert rate_spread(rates) == pytest.approx(91 / 11)


def test_probe_reads_the_clipped_rate_of_a_step_taken_by_hand():
    # one AdaBound step at t = 1 from m = v = 0 with g = (1, 1e-4): m = 0.1·g, v = 0.001·g²;
    # α₁/(√v + ε) = lr·√0.001/0.1/(√0.001·|g| + ε), clipped to [η*(1 − 1/(γ + 1)), η*(1 + 1/γ)]
    lr, final_lr, gamma = 1e-3, 0.1, 1e-3
    weight = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    model = torch.nn.Module()
    model.weight = weight
    optimizer = AdaBound([weight], lr=lr, final_lr=final_lr, gamma=gamma)
    probe = RateProbe(model, optimizer, at=(1,))
    probe.before = probe.snapshot()
    weight.grad = torch.tensor([1.0, 1e-4], dtype=torch.float64)
    optimizer.step()
    probe(1)
    alpha = lr * 0.001**0.5 / 0.1
    lower, upper = final_lr * (1 - 1 / (gamma + 1)), final_lr * (1 + 1 / gamma)
    expected = [min(max(alpha / (0.001**0.5 * g + 1e-8), lower), upper) for g in (1.0, 1e-4)]
    assert probe.rates[1].tolist() == pytest.approx(expected)


def test_fast_repro_adabound_is_adam_like_early_and_sgd_like_at_the_end():
    """1902.09843 at fast scale (seed 0, 3000 steps of 32 on digits): training loss at step
    200 0.381 vs Adam's 0.383; per-coordinate rate spread p90/p10 4.59 at step 50 (Adam 4.59),
    1.25 at the end (Adam 3.06, the band allows 1.78); test accuracy 97.0 %, as its SGD limit."""
    result = repro.get("1902.09843")(scale="fast")
    assert result.verdict == repro.fast_verdict("1902.09843") == "reproduced", result.reason
    assert result["early loss ratio AdaBound / Adam"] == pytest.approx(1.0, abs=0.1)
    assert result["early rate spread ratio AdaBound / Adam"] == pytest.approx(1.0, abs=0.1)
    assert result["rate spread p90/p10 at the end, AdaBound"] <= 1.78
    # at the end the band [0.075, 0.133] holds every coordinate: the median sits inside it
    assert 0.75 <= result["median rate at the end / final_lr, AdaBound"] <= 1.34
    assert abs(result["test accuracy, AdaBound − SGD limit"]) <= 1.0
