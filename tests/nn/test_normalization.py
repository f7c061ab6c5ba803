"""Normalisation by name (norm-layers): each layer standardises over its set S (module doc)."""

import pytest
import torch
from torch import nn

from dlskills.nn.normalization import (
    NORMS,
    apply_weight_norm,
    default_num_groups,
    is_weight_norm,
    make_norm,
    normalizes_outputs,
)


def assert_standardised(y, dims):
    mean = y.mean(dim=dims)
    var = y.var(dim=dims, unbiased=False)
    torch.testing.assert_close(mean, torch.zeros_like(mean), atol=1e-5, rtol=0)
    torch.testing.assert_close(var, torch.ones_like(var), atol=1e-3, rtol=0)


@pytest.fixture
def images():
    return 3 + 2 * torch.randn(8, 6, 5, 5, dtype=torch.float64)


def test_batch_norm_per_channel(images):
    norm = make_norm("batch", 6, spatial=True).double().train()
    assert isinstance(norm, nn.BatchNorm2d)
    assert_standardised(norm(images), (0, 2, 3))
    flat = make_norm("batch", 6, spatial=False).double().train()
    assert_standardised(flat(images[:, :, 0, 0]), (0,))


def test_layer_norm_per_sample(images):
    assert_standardised(make_norm("layer", 6, spatial=True).double()(images), (1, 2, 3))
    assert_standardised(make_norm("layer", 6, spatial=False).double()(images[:, :, 0, 0]), (1,))


def test_group_norm_per_sample_and_group(images):
    norm = make_norm("group", 6, spatial=True, num_groups=3).double()
    y = norm(images).reshape(8, 3, 2, 5, 5)
    assert_standardised(y, (2, 3, 4))
    assert default_num_groups(64) == 32 and default_num_groups(48) == 24
    assert default_num_groups(6) == 6 and default_num_groups(7) == 7
    assert make_norm("group", 48, spatial=True).num_groups == 24
    with pytest.raises(ValueError, match="num_groups must be a positive divisor of 6"):
        make_norm("group", 6, spatial=True, num_groups=4)


def test_instance_norm_per_sample_and_channel(images):
    assert_standardised(make_norm("instance", 6, spatial=True).double()(images), (2, 3))
    with pytest.raises(ValueError, match="spatial"):
        make_norm("instance", 6, spatial=False)


def test_none_and_weight_are_identity_layers(images):
    for name in ("none", "weight"):
        assert torch.equal(make_norm(name, 6, spatial=True)(images), images)
    assert is_weight_norm("weight") and is_weight_norm("WN") and not is_weight_norm("batch")
    assert [n for n in NORMS.names() if normalizes_outputs(n)] == [
        "batch",
        "group",
        "instance",
        "layer",
    ]


def test_apply_weight_norm_reparametrises_and_keeps_outputs():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Conv1d(3, 2, 1)).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    before = model[0](x)
    apply_weight_norm(model)
    torch.testing.assert_close(model[0](x), before)
    g = model[0].parametrizations.weight.original0
    v = model[0].parametrizations.weight.original1
    torch.testing.assert_close(model[0].weight, g * v / v.norm(dim=1, keepdim=True))
    with torch.no_grad():
        v.mul_(3.0)  # w depends on v only through its direction
    torch.testing.assert_close(model[0](x), before)
    assert nn.utils.parametrize.is_parametrized(model[2], "weight")
    with pytest.raises(ValueError, match="no Linear/Conv"):
        apply_weight_norm(nn.ReLU())


def test_argument_errors():
    with pytest.raises(ValueError, match="unknown normalization 'btach'"):
        make_norm("btach", 4, spatial=True)
    with pytest.raises(ValueError, match="num_features"):
        make_norm("batch", 0, spatial=True)
    with pytest.raises(TypeError, match="spatial"):
        make_norm("batch", 4, spatial="yes")
