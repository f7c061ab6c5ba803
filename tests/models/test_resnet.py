"""CIFAR-style ResNet: the paper's parameter counts, option-A shortcut, zero-init residual."""

import pytest
import torch
from torch import nn

from dlskills.models import create
from dlskills.models.resnet import BasicBlock


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("depth", "count"), [(20, 269_722), (32, 464_154)])
def test_parameter_counts_of_the_paper(depth, count):
    # He et al. 2016 Table 6: ResNet-20 0.27M, ResNet-32 0.46M (option A shortcuts, BN)
    model = create("resnet", input_shape=(3, 32, 32), num_classes=10, depth=depth)
    assert n_params(model) == count
    assert sum(isinstance(m, BasicBlock) for m in model.modules()) == (depth - 2) // 2


def test_shapes_through_the_stages():
    model = create("resnet", input_shape=(3, 32, 32), num_classes=10, depth=8, width=4)
    x = torch.randn(2, 3, 32, 32)
    for name, channels, size in (("stage1", 4, 32), ("stage2", 8, 16), ("stage3", 16, 8)):
        x = model.get_submodule(name)(x if name != "stage1" else model[:3](x))
        assert x.shape == (2, channels, size, size)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_option_a_shortcut_subsamples_and_zero_pads():
    block = BasicBlock(2, 4, 2, activation="relu", norm="none")
    x = torch.randn(1, 2, 4, 4)
    shortcut = block.shortcut(x)
    assert shortcut.shape == (1, 4, 2, 2)
    torch.testing.assert_close(shortcut[:, :2], x[:, :, ::2, ::2])
    assert torch.count_nonzero(shortcut[:, 2:]) == 0


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_zero_init_residual_makes_blocks_identities(norm):
    model = create(
        "resnet", input_shape=(3, 8, 8), num_classes=2, depth=8, width=4, norm=norm,
        zero_init_residual=True,
    )  # fmt: skip
    model.eval()
    block = model.stage1[0]
    expected_zero = block.norm2.weight if norm != "none" else block.conv2.weight
    assert torch.count_nonzero(expected_zero) == 0 and block.residual_last is not None
    if norm == "none":
        nn.init.zeros_(block.conv2.bias)
    stem_out = model[:3](torch.randn(2, 3, 8, 8))  # after ReLU: non-negative
    torch.testing.assert_close(block(stem_out), stem_out)


def test_plain_resnet_has_no_norm_layers_and_biased_convs():
    model = create("resnet", input_shape=(3, 8, 8), num_classes=2, depth=8, norm="none")
    assert not any(isinstance(m, nn.BatchNorm2d | nn.GroupNorm) for m in model.modules())
    assert all(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv2d))


def test_argument_errors():
    with pytest.raises(ValueError, match="6n \\+ 2"):
        create("resnet", input_shape=(3, 8, 8), num_classes=2, depth=10)
    with pytest.raises(ValueError, match="zero_init_residual cannot be combined"):
        create(
            "resnet", input_shape=(3, 8, 8), num_classes=2, norm="weight", zero_init_residual=True
        )


def test_convs_use_he_fan_out_init():
    model = create("resnet", input_shape=(3, 32, 32), num_classes=10, depth=8)
    weight = model.stage3[0].conv2.weight  # 64 → 64, 3×3: fan_out = 576, 36,864 weights
    assert weight.std().item() == pytest.approx((2 / 576) ** 0.5, rel=0.03)
    assert weight.mean().item() == pytest.approx(0.0, abs=3e-3)
