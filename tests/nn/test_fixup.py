"""Fixup building blocks (1901.09321): init rule, forward rule, lr/10 scalar groups."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlskills.nn.fixup import (
    FixupBasicBlock,
    ScalarBias,
    ScalarScale,
    fixup_initialize,
    fixup_param_groups,
)


def test_scalar_modules_start_as_identity_and_learn_one_number():
    x = torch.randn(2, 3, 4, 4)
    bias, scale = ScalarBias(), ScalarScale()
    torch.testing.assert_close(scale(bias(x)), x)
    with torch.no_grad():
        bias.bias.fill_(0.5)
        scale.scale.fill_(2.0)
    torch.testing.assert_close(scale(bias(x)), 2 * (x + 0.5))
    assert bias.bias.numel() == 1 and scale.scale.numel() == 1


@pytest.mark.parametrize("branches", [1, 4, 16])
def test_branch_init_variance_follows_l_to_minus_one_half(branches):
    block = FixupBasicBlock(64, 64)
    block.reset_parameters(num_branches=branches)
    weight = block.conv1.weight.detach()
    expected = 2.0 / (64 * 9) / branches  # He fan-out × (L^(−1/(2m−2)))², m = 2
    n = weight.numel()
    assert abs(weight.var().item() / expected - 1) < 5 * math.sqrt(2 / (n - 1))
    assert block.conv2.weight.abs().sum() == 0 and block.residual_last is block.conv2


def test_block_forward_rule_with_nonzero_scalars():
    block = FixupBasicBlock(4, 8, stride=2)
    with torch.no_grad():
        block.conv2.weight.normal_()
        for value, module in zip((0.1, -0.2, 0.3, 0.4), ("bias1a", "bias1b", "bias2a", "bias2b")):
            getattr(block, module).bias.fill_(value)
        block.scale.scale.fill_(1.5)
    x = torch.randn(2, 4, 6, 6)
    shifted = x + 0.1
    hidden = F.relu(F.conv2d(shifted, block.conv1.weight, stride=2, padding=1) - 0.2)
    branch = 1.5 * F.conv2d(hidden + 0.3, block.conv2.weight, padding=1) + 0.4
    shortcut = F.pad(shifted[:, :, ::2, ::2], (0, 0, 0, 0, 0, 4))
    torch.testing.assert_close(block(x), F.relu(branch + shortcut))


def test_block_is_identity_path_at_init():
    block = FixupBasicBlock(4, 4)
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(block(x), F.relu(x))


def test_fixup_initialize_counts_branches_and_zeroes_classifier():
    model = nn.Sequential(
        FixupBasicBlock(4, 4), FixupBasicBlock(4, 4), nn.Flatten(), nn.Linear(4 * 36, 3)
    )
    fixup_initialize(model)
    assert model[3].weight.abs().sum() == 0 and model[3].bias.abs().sum() == 0
    n = model[0].conv1.weight.numel()
    pooled = torch.cat([model[i].conv1.weight.flatten() for i in (0, 1)]).var().item()
    assert abs(pooled / (2 / 36 / 2) - 1) < 5 * math.sqrt(2 / (2 * n - 1))
    with pytest.raises(ValueError, match="FixupBasicBlock"):
        fixup_initialize(nn.Linear(2, 2))


def test_param_groups_train_scalars_at_a_tenth_of_the_lr():
    block = FixupBasicBlock(4, 4)
    groups = fixup_param_groups(block, 0.2)
    assert groups[0]["lr"] == 0.2 and groups[1]["lr"] == pytest.approx(0.02)
    assert {id(p) for p in groups[1]["params"]} == {
        id(p)
        for m in block.modules()
        if isinstance(m, (ScalarBias, ScalarScale))
        for p in m.parameters()
    }
    assert len(groups[0]["params"]) == 2 and len(groups[1]["params"]) == 5
    torch.optim.SGD(groups, lr=0.2)  # valid param groups
    with pytest.raises(ValueError, match="lr"):
        fixup_param_groups(block, 0.0)


def test_block_validation():
    with pytest.raises(ValueError, match="out_channels"):
        FixupBasicBlock(8, 4)
    with pytest.raises(ValueError, match="stride"):
        FixupBasicBlock(4, 4, stride=3)
    with pytest.raises(ValueError, match="num_branches"):
        FixupBasicBlock(4, 4).reset_parameters(0)
