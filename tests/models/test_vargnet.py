"""VarGNet-small (1907.05653): registry, fixed channels per group everywhere, trains on digits."""

import pytest
import torch
from torch import nn

from dlskills.models import MODELS, create
from dlskills.models._quickfit import digits_tensors, quick_fit
from dlskills.models.vargnet import VarGNetSmall
from dlskills.nn.conv.vargroup import VarGroupConv2d


def test_registered_and_every_group_conv_has_s_channels_per_group():
    assert MODELS.entry("vargnet_small").catalog_id == "1907.05653"
    model = create("vargnet_small", input_shape=(3, 16, 16), num_classes=7, width=16)
    grouped = [m for m in model.modules() if isinstance(m, VarGroupConv2d)]
    assert len(grouped) == 2 * (4 + 2)  # two stages of (down block: 4 units, normal block: 2)
    assert {m.in_channels // m.groups for m in grouped} == {8}
    # the variable part: the group count grows with the width, S stays 8
    assert sorted({m.groups for m in grouped}) == [2, 4, 8]
    assert model.eval()(torch.randn(2, 3, 16, 16)).shape == (2, 7)
    assert model(torch.randn(2, 3, 9, 13)).shape == (2, 7)


def test_width_must_be_a_multiple_of_s():
    with pytest.raises(ValueError, match="channels_per_group"):
        VarGNetSmall(input_shape=(1, 8, 8), width=12)


def test_trains_on_digits_quickly():
    torch.manual_seed(0)
    model = VarGNetSmall(input_shape=(1, 8, 8), num_classes=10, width=8)
    accuracy = quick_fit(model, digits_tensors(seed=0), epochs=3, lr=0.05, weight_decay=5e-4)
    assert accuracy >= 0.8
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_vargnet_small_reaches_95_percent_on_digits():
    """width 16, SGD lr 0.05 momentum 0.9 wd 5e-4, 10 epochs, mean over seeds 0-2 ≥ 0.95."""
    data = digits_tensors(seed=0)
    accuracies = []
    for seed in range(3):
        torch.manual_seed(seed)
        model = VarGNetSmall(input_shape=(1, 8, 8), num_classes=10)
        accuracies.append(quick_fit(model, data, epochs=10, lr=0.05, seed=seed, weight_decay=5e-4))
    print("vargnet_small digits accuracies:", [round(a, 4) for a in accuracies])
    assert sum(accuracies) / 3 >= 0.95
