import math

import pytest
import torch
from diagnose_nets import HE, build_mlp, scaled_init
from torch import nn

from dlskills import repro
from dlskills.diagnose.init_check import init_check
from dlskills.repro.init_check_1803_01719 import CONSTANT, NARROW_WIDE, law_estimates, law_ratio


def test_lengths_match_a_hand_computation(classification_batch):
    model = build_mlp([8, 8], weight_scale=HE)
    result = init_check(model, classification_batch, n_inits=2, init_fn=scaled_init(HE), seed=3)
    x = classification_batch[0][0]
    for index in range(2):
        clone = build_mlp([8, 8])
        torch.manual_seed(3 + index)
        scaled_init(HE)(clone)
        z1 = torch.relu(clone[0](x))
        z2 = torch.relu(clone[2](z1))
        expected = torch.stack([z1.pow(2).mean(1), z2.pow(2).mean(1)], dim=1)
        torch.testing.assert_close(result.lengths[index], expected)
    assert result.widths == [8, 8]
    assert result.layers == ["1", "3"]
    torch.testing.assert_close(result.sum_inverse_width, torch.tensor([1 / 8, 2 / 8]).double())


def test_user_model_is_not_modified(classification_batch):
    model = build_mlp([8, 8])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    init_check(model, classification_batch, n_inits=3)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


def test_law_estimator_matches_the_product_law_where_tails_are_light():
    """The repro's thresholds come from sampling the length chain M_j = M_{j-1}·(2/n)Σ relu(ξ)²;
    for two width-32 layers its estimator's mean must approach ∏(1 + 5/n) - 1 = 0.337 (light
    tails), and the product law at the repro's nets is 3.27 and 85.0 (by hand: 1.15625¹⁰ - 1,
    2.25⁵·(13/12)⁵ - 1)."""
    estimates = law_estimates([32, 32], inits=2000, draws=20, seed=0)
    assert float(estimates.mean()) == pytest.approx((37 / 32) ** 2 - 1, rel=0.05)
    assert law_ratio(CONSTANT) == pytest.approx(1.15625**10 - 1)
    assert law_ratio(NARROW_WIDE) == pytest.approx(2.25**5 * (13 / 12) ** 5 - 1)


def test_fast_repro_reproduces_fm1_and_fm2_against_the_law_at_this_scale():
    """FM1: He init keeps the mean length level (drift 0.12 decades), 2x the variance drifts by
    9 doublings (law 2.71, measured 2.59). FM2 (100 inits, seeds 0 and 1): Var/E² = 2.2 for
    constant width 32 and 23 for narrow-then-wide (ratio 10): below the product law's 3.27 and
    85 (26x) exactly as the law's own estimator at 100 inits is (5-95 % bands), not the ~200x
    of exp(5β)."""
    result = repro.get("1803.01719")(scale="fast")
    assert result.verdict == repro.fast_verdict("1803.01719") == "reproduced", result.reason
    assert result["FM1 drift, He init"] < 0.3
    assert abs(result["FM1 drift, 2× He variance"] - 9 * math.log10(2)) < 0.5
    assert result["FM2 ratio narrow-then-wide / constant"] > 4
    assert result.quantity("FM2 Var/E², narrow-then-wide").seeds == (0, 1)


def test_default_reset_parameters_and_plot(tmp_path, classification_batch):
    result = init_check(build_mlp([16, 16], activation=nn.Tanh), classification_batch, 3)
    assert result.lengths.shape == (3, 64, 2)
    path = result.plot(tmp_path / "init.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert set(result.to_dict()) >= {"fm1", "fm2", "mean_length"}


def test_validates_arguments(classification_batch):
    with pytest.raises(ValueError, match="n_inits"):
        init_check(build_mlp([4]), classification_batch, n_inits=1)
    with pytest.raises(ValueError, match="layers"):
        init_check(build_mlp([4]), classification_batch, 2, layers=["nope"])


def _result(means):
    """An InitCheckResult whose every init and example has the layer lengths ``means``."""
    from dlskills.diagnose.init_check import InitCheckResult

    lengths = torch.tensor(means, dtype=torch.float32).expand(3, 4, len(means)).clone()
    names = [f"act{j}" for j in range(len(means))]
    return InitCheckResult(names, [8] * len(means), lengths, torch.ones(4))


def test_fm1_message_matches_the_numbers():
    """Equal first and last lengths (the issue's E[M_1] = E[M_L] = 0.0367) are 'level', not
    'shrinks'; a drift in the middle is reported where it is largest."""
    level = _result([0.0367, 0.0368, 0.0367]).checks()[0]
    assert "stays level" in level.message and "shrinks" not in level.message
    assert "E[M_1]=0.0367, E[M_L]=0.0367" in level.message
    dip = _result([0.5, 0.001, 0.45]).checks()[0]
    assert dip.value == pytest.approx(math.log10(500), rel=1e-5)
    assert "shrinks across depth" in dip.message and "furthest at act1: 0.001" in dip.message
    grows = _result([0.1, 1.0, 100.0]).checks()[0]
    assert "grows across depth" in grows.message and grows.verdict == "FAIL"
