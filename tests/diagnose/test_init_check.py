import math

import pytest
import torch
from diagnose_nets import HE, build_mlp, scaled_init
from torch import nn

from dlskills.diagnose.init_check import FM1_FAIL_DECADES, FM2_FAIL, FM2_WARN, init_check


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


def test_he_init_keeps_the_mean_length_and_a_large_init_explodes(classification_batch):
    """FM1 (Hanin & Rolnick): E[M_j] is constant in depth only at Var[W] = 2/fan_in; at 4/fan_in
    it doubles per ReLU layer, so 10 layers drift by ~9 doublings = 2.7 decades."""
    he = init_check(build_mlp([32] * 10), classification_batch, 20, init_fn=scaled_init(HE))
    large = init_check(build_mlp([32] * 10), classification_batch, 20, init_fn=scaled_init(2.0))
    assert he.fm1 < 0.3
    assert large.fm1 > FM1_FAIL_DECADES
    assert abs(large.fm1 - 9 * math.log10(2)) < 0.5
    assert {c.name: c.verdict for c in he.checks()}["init_fm1"] == "OK"
    assert {c.name: c.verdict for c in large.checks()}["init_fm1"] == "FAIL"


def test_fm2_narrow_then_wide_vs_constant_width(classification_batch):
    """FM2: with the same 10 layers and 320 neurons, five layers of 4 then five of 60
    (Σ 1/n = 1.33) have a far larger length variance across inits than constant width 32
    (Σ 1/n = 0.31); the paper's law exp(5 Σ 1/n) - 1 predicts 785 vs 3.8."""
    constant = init_check(build_mlp([32] * 10), classification_batch, 100, init_fn=scaled_init(HE))
    narrow_wide = init_check(
        build_mlp([4] * 5 + [60] * 5), classification_batch, 100, init_fn=scaled_init(HE)
    )
    assert sum(constant.widths) == sum(narrow_wide.widths) == 320
    assert float(narrow_wide.sum_inverse_width[-1]) == pytest.approx(5 / 4 + 5 / 60)
    assert narrow_wide.fm2 > 4 * constant.fm2
    assert constant.fm2 < FM2_WARN
    assert narrow_wide.fm2 > FM2_FAIL
    verdicts = {c.name: c.verdict for c in narrow_wide.checks()}
    assert verdicts["init_fm2"] == "FAIL"


def test_fm2_grows_with_sum_of_inverse_widths(classification_batch):
    values = [
        init_check(build_mlp([w] * 8), classification_batch, 60, init_fn=scaled_init(HE)).fm2
        for w in (64, 16, 6)
    ]
    assert values[0] < values[1] < values[2]


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
