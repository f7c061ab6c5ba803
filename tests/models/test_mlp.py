"""MLP: structure and the parameter-count formula Σ (n_{ℓ−1} + 1)·n_ℓ."""

import itertools

import pytest
import torch
from torch import nn

from dlskills.models import create
from dlskills.models.mlp import MLP


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def formula(widths):
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in itertools.pairwise(widths))


@pytest.mark.parametrize(
    ("shape", "depth", "width", "classes"),
    [((1, 8, 8), 2, 128, 10), ((5,), 0, 7, 3), ((2, 3), 3, [9, 4, 6], 2), ((4,), 1, 1, 1)],
)
def test_parameter_count_matches_formula(shape, depth, width, classes):
    model = create("mlp", input_shape=shape, num_classes=classes, depth=depth, width=width)
    widths = [width] * depth if isinstance(width, int) else width
    fan_in = 1
    for size in shape:
        fan_in *= size
    assert n_params(model) == formula([fan_in, *widths, classes])


def test_default_digits_mlp_count_by_hand():
    # 64·128 + 128 + 128·128 + 128 + 128·10 + 10
    model = create("mlp", input_shape=(1, 8, 8), num_classes=10)
    assert isinstance(model, MLP) and n_params(model) == 26_122


def test_norm_replaces_hidden_bias_and_adds_two_per_unit():
    model = create("mlp", input_shape=(6,), num_classes=2, depth=2, width=5, norm="batch")
    # (6·5) + 2·5 + (5·5) + 2·5 + (5·2 + 2)
    assert n_params(model) == 30 + 10 + 25 + 10 + 12
    hidden = [nn.Linear, nn.BatchNorm1d, nn.ReLU]
    assert [type(m) for m in model] == [nn.Flatten, *hidden, *hidden, nn.Linear]


def test_no_bias_and_dropout():
    model = create(
        "mlp", input_shape=(3,), num_classes=2, depth=1, width=4, bias=False, dropout=0.5
    )
    assert n_params(model) == 3 * 4 + 4 * 2
    assert [type(m) for m in model] == [nn.Flatten, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    model.eval()
    x = torch.randn(2, 3)
    assert torch.equal(model(x), model(x))


def test_forward_is_the_layer_formula():
    model = create("mlp", input_shape=(2, 2), num_classes=3, depth=1, width=5, activation="tanh")
    x = torch.randn(4, 2, 2)
    first, last = model[1], model[3]
    expected = last(torch.tanh(first(x.flatten(1))))
    torch.testing.assert_close(model(x), expected)


def test_width_list_must_match_depth():
    with pytest.raises(ValueError, match="width has 2 entries but depth is 3"):
        create("mlp", input_shape=(4,), num_classes=2, depth=3, width=[4, 4])
    with pytest.raises(ValueError, match="depth"):
        create("mlp", input_shape=(4,), num_classes=2, depth=-1)
    with pytest.raises(ValueError, match="width"):
        create("mlp", input_shape=(4,), num_classes=2, width=0)
