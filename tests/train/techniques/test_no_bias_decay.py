import pytest
import torch
from torch import nn

from dlskills.train.techniques import param_groups_no_bias_decay


def _model():
    shared = nn.Linear(4, 4)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3),
        nn.BatchNorm2d(2),
        nn.Flatten(),
        nn.LayerNorm(2 * 2 * 2),
        nn.Linear(8, 4, bias=False),
        nn.GroupNorm(2, 4),
        shared,
        shared,  # shared module: its parameters must appear once
        nn.Linear(4, 3),
    )


def test_groups_partition_parameters_exactly():
    model = _model()
    decay, no_decay = param_groups_no_bias_decay(model, 5e-4)
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    ids = [id(p) for p in decay["params"] + no_decay["params"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters()}
    expected_decay = {id(model[i].weight) for i in (0, 4, 6, 8)}
    assert {id(p) for p in decay["params"]} == expected_decay
    expected_no_decay = {id(model[i].bias) for i in (0, 1, 3, 5, 6, 8)} | {
        id(model[i].weight) for i in (1, 3, 5)
    }
    assert {id(p) for p in no_decay["params"]} == expected_no_decay


def test_optimizer_decays_only_weights():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(param_groups_no_bias_decay(model, 0.5), lr=0.1)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    weight, bias, gamma, beta = model.parameters()
    torch.testing.assert_close(weight, before[0] * (1 - 0.1 * 0.5))
    for after, start in zip((bias, gamma, beta), before[1:], strict=True):
        torch.testing.assert_close(after, start)


def test_frozen_parameters_are_left_out_and_arguments_checked():
    model = nn.Linear(2, 2)
    model.bias.requires_grad_(False)
    decay, no_decay = param_groups_no_bias_decay(model, 0.1)
    assert decay["params"] == [model.weight] and no_decay["params"] == []
    with pytest.raises(ValueError, match="weight_decay"):
        param_groups_no_bias_decay(model, -1.0)
    with pytest.raises(TypeError, match="model"):
        param_groups_no_bias_decay("model", 0.1)
