"""Variable group convolution and VarGNet blocks (1907.05653): counts match the paper."""

import pytest
import torch
import torch.nn.functional as F

from dlskills.nn._counting import count_macs
from dlskills.nn.conv.vargroup import (
    VarGDownBlock,
    VarGNormalBlock,
    VarGroupConv2d,
    VarGSeparableConv2d,
)


@pytest.mark.parametrize("in_channels", [8, 16, 64])
def test_variable_group_conv_fixes_channels_per_group(in_channels):
    conv = VarGroupConv2d(in_channels, 2 * in_channels, 3, channels_per_group=8)
    assert conv.groups == in_channels // 8
    assert conv.weight.shape == (2 * in_channels, 8, 3, 3)
    h = w = 6
    counts = count_macs(conv, (in_channels, h, w))
    # paper: params k²·S·C_out, MACs k²·S·C_out·H·W — the same per-layer intensity H·W
    assert counts.params == 9 * 8 * 2 * in_channels
    assert counts.macs == 9 * 8 * 2 * in_channels * h * w
    assert counts.macs / counts.params == h * w


def test_variable_group_conv_equals_grouped_conv_and_keeps_size():
    conv = VarGroupConv2d(16, 32, 3, channels_per_group=4, stride=2)
    x = torch.randn(2, 16, 9, 9)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight, stride=2, padding=1, groups=4))
    assert conv(x).shape == (2, 32, 5, 5)


def test_variable_group_conv_rejects_incompatible_channels():
    with pytest.raises(ValueError, match="channels_per_group"):
        VarGroupConv2d(12, 12, 3, channels_per_group=8)
    with pytest.raises(ValueError, match="group count"):
        VarGroupConv2d(16, 9, 3, channels_per_group=8)


def _sep_counts(c_in: int, c_out: int, s: int, hw_out: int, act: bool = True):
    expanded = 2 * c_in
    params = 9 * s * expanded + expanded * c_out + 3 * expanded + 2 * c_out + (c_out if act else 0)
    macs = hw_out * (9 * s * expanded + expanded * c_out)
    return params, macs


def test_normal_block_counts_and_identity_shortcut():
    block = VarGNormalBlock(16, channels_per_group=8)
    params, macs = _sep_counts(16, 16, 8, 36)
    counts = count_macs(block, (16, 6, 6))
    assert counts.macs == 2 * macs
    assert counts.params == 2 * params - 16 + 16  # 2nd unit has no PReLU; block PReLU after add
    torch.nn.init.zeros_(block.residual_last.weight)
    torch.nn.init.zeros_(block.residual_last.bias)
    x = torch.randn(2, 16, 6, 6)
    torch.testing.assert_close(block.eval()(x), block.activation(x))


def test_down_block_counts_and_shape():
    block = VarGDownBlock(8, channels_per_group=8)
    assert block(torch.randn(2, 8, 8, 8)).shape == (2, 16, 4, 4)
    p_s2, m_s2 = _sep_counts(8, 16, 8, 16)  # three stride-2 units from C = 8 (4×4 outputs)
    p_fuse, m_fuse = _sep_counts(16, 16, 8, 16, act=False)
    counts = count_macs(block, (8, 8, 8))
    assert counts.macs == 3 * m_s2 + m_fuse
    assert counts.params == 3 * p_s2 - 16 + p_fuse + 2 * 16  # shortcut without PReLU; 2 PReLUs


def test_separable_unit_layout():
    unit = VarGSeparableConv2d(16, 24, channels_per_group=8, activation=False)
    assert [type(m).__name__ for m in unit] == [
        "VarGroupConv2d",
        "BatchNorm2d",
        "PReLU",
        "Conv2d",
        "BatchNorm2d",
    ]
    assert unit[0].groups == 2 and unit[0].out_channels == 32
