"""DiCE unit (1906.03516): semantics of the dimension-wise convs, any input size, counts."""

import pytest
import torch
import torch.nn.functional as F

from dlskills import repro
from dlskills.nn.conv.dice import DiCE, DimensionWiseConv2d, StridedDiCE, channel_shuffle


def test_channel_shuffle_interleaves_groups():
    x = torch.arange(6.0).reshape(1, 6, 1, 1)
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]
    with pytest.raises(ValueError, match="divisible"):
        channel_shuffle(x, 4)


def test_dimension_wise_conv_matches_the_authors_transpose_semantics():
    """At the construction size: the height branch is x transposed to (B, H, C, W), a depthwise
    conv with H kernels, transposed back (authors' DICE); likewise for the width branch."""
    layer = DimensionWiseConv2d(4, spatial_size=(5, 6)).double()
    x = torch.randn(2, 4, 5, 6, dtype=torch.float64)
    out = layer(x)
    depth = F.conv2d(x, layer.depth_conv.weight, padding=1, groups=4)
    height = F.conv2d(x.transpose(1, 2), layer.height_weight, padding=1, groups=5).transpose(1, 2)
    width = F.conv2d(x.transpose(1, 3), layer.width_weight, padding=1, groups=6).transpose(1, 3)
    torch.testing.assert_close(out, torch.cat((depth, height, width), 1))
    # one element by hand: height branch, row h mixes channels c±1 and columns w±1 of row h only
    c, h, w = 2, 3, 4
    patch = x[0, c - 1 : c + 2, h, w - 1 : w + 2]
    torch.testing.assert_close(out[0, 4 + c, h, w], (patch * layer.height_weight[h, 0]).sum())


def test_dimension_wise_conv_runs_at_any_size_by_resampling_the_kernel_bank():
    layer = DimensionWiseConv2d(3, spatial_size=(4, 4)).double()
    with torch.no_grad():  # kernels varying linearly with the row index interpolate exactly
        ramp = torch.linspace(0.0, 1.0, 4, dtype=torch.float64)[:, None, None, None]
        layer.height_weight.copy_(ramp * torch.ones(4, 1, 3, 3) + 0.5)
    x = torch.randn(1, 3, 7, 5, dtype=torch.float64)
    out = layer(x)
    assert out.shape == (1, 9, 7, 5)
    bank = torch.linspace(0.0, 1.0, 7, dtype=torch.float64)[:, None, None, None] + 0.5
    expected = F.conv2d(x.transpose(1, 2), bank.expand(7, 1, 3, 3), padding=1, groups=7)
    torch.testing.assert_close(out[:, 3:6], expected.transpose(1, 2))


def test_shared_kernel_variant_is_translation_equivariant_along_height():
    layer = DimensionWiseConv2d(2, spatial_size=None)
    x = torch.zeros(1, 2, 9, 6)
    x[0, :, 3:5, 2:4] = torch.randn(2, 2, 2)
    shifted = torch.roll(x, 2, dims=2)
    torch.testing.assert_close(torch.roll(layer(x), 2, dims=2), layer(shifted))


def test_fast_repro_counts_match_the_paper_and_dicenet_learns_digits():
    """The claim (1906.03516): DiCE units hold the paper's parameter and MAC formulas, cost a
    small fraction of a regular 3×3 conv (measured 0.068), and DiCENet-small learns digits in 3
    epochs (seeds 0-1; measured 88.5 and 85.2 %)."""
    result = repro.get("1906.03516")(scale="fast")
    assert result.verdict == repro.fast_verdict("1906.03516") == "reproduced", result.reason
    assert result["parameters off the closed form"] == result["MACs off the closed form"] == 0
    assert result["DiCE unit MACs / regular 3x3 conv MACs"] < 0.1
    assert result.quantity("DiCENet-small test accuracy").seeds == (0, 1)
    assert result["DiCENet-small test accuracy"] >= 80.0


def test_dice_runs_at_other_sizes_than_its_construction_size():
    unit = DiCE(12, 12, spatial_size=(5, 7))
    assert unit(torch.randn(2, 12, 8, 5)).shape == (2, 12, 8, 5)


def test_dice_output_is_projection_gated_by_sigmoid():
    unit = DiCE(6, 6, spatial_size=(4, 4)).eval()
    x = torch.randn(3, 6, 4, 4)
    fused = unit.local_fusion(channel_shuffle(unit.dim_norm_act(unit.dim_conv(x)), 3))
    gate = unit.gate(fused)
    assert gate.shape == (3, 6, 1, 1) and bool(((gate > 0) & (gate < 1)).all())
    torch.testing.assert_close(unit(x), unit.projection(fused) * gate)


def test_strided_dice_halves_resolution_and_doubles_channels():
    unit = StridedDiCE(8, spatial_size=(4, 4))
    assert unit(torch.randn(2, 8, 8, 8)).shape == (2, 16, 4, 4)
    assert unit(torch.randn(2, 8, 7, 5)).shape == (2, 16, 4, 3)


def test_dimension_wise_conv_gradcheck_float64_with_resampled_bank():
    layer = DimensionWiseConv2d(2, spatial_size=(2, 3)).double()
    x = torch.randn(1, 2, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))
    # gradients reach the stored banks through the interpolation
    layer(x).sum().backward()
    assert layer.height_weight.grad.abs().sum() > 0 and layer.width_weight.grad.abs().sum() > 0


def test_dice_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kernel_size"):
        DimensionWiseConv2d(4, kernel_size=2)
    with pytest.raises(ValueError, match="reduction"):
        DiCE(4, 4, reduction=8)
