"""Activation zoo (1905.08618): every entry against its formula at hand-picked points."""

import math

import pytest
import torch
from torch import nn

from dlskills.nn.activations import ACTIVATIONS, get_activation

POINTS = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 7.0], dtype=torch.float64)
ALPHA, LAMBDA = 1.6732632423543772, 1.0507009873554805


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def softplus(x):
    return math.log1p(math.exp(x))


FORMULAS = {
    "relu": lambda x: max(0.0, x),
    "leaky_relu": lambda x: x if x > 0 else 0.01 * x,
    "prelu": lambda x: x if x > 0 else 0.25 * x,  # torch's initial a = 0.25
    "elu": lambda x: x if x > 0 else math.exp(x) - 1,
    "selu": lambda x: LAMBDA * (x if x > 0 else ALPHA * (math.exp(x) - 1)),
    "celu": lambda x: max(0.0, x) + min(0.0, math.exp(x) - 1),
    "gelu": lambda x: x * 0.5 * (1 + math.erf(x / math.sqrt(2))),
    "silu": lambda x: x * sigmoid(x),
    "mish": lambda x: x * math.tanh(softplus(x)),
    "softplus": softplus,
    "tanh": math.tanh,
    "sigmoid": sigmoid,
    "hardtanh": lambda x: min(1.0, max(-1.0, x)),
    "hardswish": lambda x: x * min(max(x + 3, 0.0), 6.0) / 6,
    "hardsigmoid": lambda x: min(max(x + 3, 0.0), 6.0) / 6,
    "relu6": lambda x: min(max(x, 0.0), 6.0),
    "softsign": lambda x: x / (1 + abs(x)),
    "identity": lambda x: x,
}


def test_zoo_has_the_listed_activations():
    assert set(ACTIVATIONS.names()) == set(FORMULAS)


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_activation_matches_formula(name):
    module = get_activation(name).double()
    expected = torch.tensor([FORMULAS[name](float(x)) for x in POINTS], dtype=torch.float64)
    torch.testing.assert_close(module(POINTS), expected, rtol=1e-12, atol=1e-12)


def test_mish_hand_values():
    # x·tanh(ln(1 + eˣ)): at 1, tanh(ln(1 + e)) = tanh(1.31326169) = 0.86509839
    mish = get_activation("mish")
    torch.testing.assert_close(
        mish(torch.tensor([1.0, 0.0, -1.0])), torch.tensor([0.8650984, 0.0, -0.3034015])
    )


def test_aliases_and_kwargs():
    assert isinstance(get_activation("swish"), nn.SiLU)
    assert isinstance(get_activation("Leaky-ReLU"), nn.LeakyReLU)
    leaky = get_activation("leaky_relu", negative_slope=0.2)
    assert leaky(torch.tensor([-1.0])).item() == pytest.approx(-0.2)
    celu = get_activation("celu", alpha=2.0)
    assert celu(torch.tensor([-1.0])).item() == pytest.approx(2 * (math.exp(-0.5) - 1))


def test_fresh_instance_every_call():
    first, second = get_activation("prelu"), get_activation("prelu")
    assert first is not second and first.weight is not second.weight


def test_registry_metadata_and_errors():
    for entry in ACTIVATIONS.entries():
        assert entry.catalog_id == "1905.08618" and entry.meta["formula"]
        assert issubclass(entry.obj, nn.Module)
    with pytest.raises(ValueError, match="did you mean 'mish'"):
        get_activation("mishh")
    with pytest.raises(TypeError, match="activation 'relu'"):
        get_activation("relu", slope=1)
