"""Initializers by name (1803.01719, 1706.02515, 1901.09321): each variance against its formula.

A sample variance of n i.i.d. draws has relative standard error √(2/(n − 1)) (normal) and
√(0.8/(n − 1)) (uniform: excess kurtosis −1.2); tolerances are 5 standard errors.
"""

import math

import pytest
import torch
from torch import nn

from dlskills import init
from dlskills.init import INITIALIZERS
from dlskills.nn.fixup import FixupBasicBlock


def _model():
    return nn.Sequential(
        nn.Conv2d(32, 64, 3),  # fan_in 288, fan_out 576, 18 432 weights
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(200, 300),  # fan_in 200, fan_out 300, 60 000 weights
    )


def _check_variance(weight: torch.Tensor, expected: float, uniform: bool) -> None:
    n = weight.numel()
    relative_se = math.sqrt((0.8 if uniform else 2.0) / (n - 1))
    assert abs(weight.var().item() / expected - 1) < 5 * relative_se
    assert abs(weight.mean().item()) < 5 * math.sqrt(expected / n)
    if uniform:
        bound = math.sqrt(3 * expected)
        assert weight.abs().max().item() <= bound + 1e-7
        assert weight.abs().max().item() > 0.99 * bound


@pytest.mark.parametrize(
    ("name", "kwargs", "variance", "uniform"),
    [
        ("xavier_uniform", {}, lambda fi, fo: 2 / (fi + fo), True),
        ("xavier_normal", {}, lambda fi, fo: 2 / (fi + fo), False),
        ("xavier_normal", {"gain": 2.0}, lambda fi, fo: 8 / (fi + fo), False),
        ("he_normal", {}, lambda fi, fo: 2 / fi, False),
        ("kaiming_normal", {"mode": "fan_out"}, lambda fi, fo: 2 / fo, False),
        ("he_uniform", {}, lambda fi, fo: 2 / fi, True),
        ("he_normal", {"negative_slope": 0.2}, lambda fi, fo: 2 / (1.04 * fi), False),
        ("lecun_normal", {}, lambda fi, fo: 1 / fi, False),
        ("lecun_uniform", {}, lambda fi, fo: 1 / fi, True),
    ],
)
def test_weight_variance_matches_formula(name, kwargs, variance, uniform):
    model = _model()
    init.apply(model, name, **kwargs)
    for layer, (fan_in, fan_out) in ((model[0], (288, 576)), (model[3], (200, 300))):
        _check_variance(layer.weight.detach(), variance(fan_in, fan_out), uniform)
        assert layer.bias.abs().sum() == 0


def test_orthogonal_rows_or_columns_are_orthonormal_times_gain():
    model = nn.Sequential(nn.Linear(50, 20), nn.Linear(20, 50), nn.Conv2d(8, 16, 3))
    init.apply(model, "orthogonal", gain=1.5)
    float32 = {"atol": 1e-5, "rtol": 0}
    wide = model[0].weight.detach().double()  # 20 × 50: rows orthonormal
    torch.testing.assert_close(wide @ wide.T, 2.25 * torch.eye(20).double(), **float32)
    tall = model[1].weight.detach().double()  # 50 × 20: columns orthonormal
    torch.testing.assert_close(tall.T @ tall, 2.25 * torch.eye(20).double(), **float32)
    conv = model[2].weight.detach().double().reshape(16, 72)
    torch.testing.assert_close(conv @ conv.T, 2.25 * torch.eye(16).double(), **float32)
    # Var(w) = gain² / max(rows, columns): every row has squared norm gain² over its 50 entries
    assert wide.pow(2).sum().item() == pytest.approx(20 * 2.25, rel=1e-5)


def test_registry_entries_carry_catalog_ids_and_validate():
    assert INITIALIZERS.entry("kaiming").name == "he_normal"
    assert INITIALIZERS.entry("lecun").catalog_id == "1706.02515"
    assert INITIALIZERS.entry("fixup").catalog_id == "1901.09321"
    assert INITIALIZERS.entry("lsuv").meta["needs_data"] is True
    assert {e.name for e in INITIALIZERS.by_catalog_id("1803.01719")} >= {
        "xavier_uniform",
        "he_normal",
        "orthogonal",
        "lsuv",
        "zero_init_residual",
    }
    with pytest.raises(ValueError, match="unknown initializer"):
        init.apply(_model(), "glorot_magic")
    with pytest.raises(ValueError, match="mode"):
        init.apply(_model(), "he_normal", mode="fan_avg")
    with pytest.raises(TypeError, match="model"):
        init.apply("not a model", "he_normal")
    with pytest.raises(ValueError, match="no Linear/Conv"):
        init.apply(nn.ReLU(), "xavier_normal")


class _BasicBlock(nn.Module):
    """torchvision-style naming, recognised without a ``residual_last`` attribute."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)

    def forward(self, x):
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


def test_zero_init_residual_makes_blocks_identity():
    model = nn.Sequential(_BasicBlock(), _BasicBlock(), FixupBasicBlock(4, 4))
    with torch.no_grad():
        model[2].conv2.weight.normal_()
    init.apply(model, "zero_init_residual")
    assert all(block.bn2.weight.abs().sum() == 0 for block in model[:2])
    assert model[0].bn1.weight.abs().sum() > 0
    assert model[2].conv2.weight.abs().sum() == 0
    x = torch.randn(2, 4, 5, 5).relu()
    model.eval()
    bn_shift = [block.bn2.bias for block in model[:2]]
    assert all(b.abs().sum() == 0 for b in bn_shift)
    torch.testing.assert_close(model(x), x)
    with pytest.raises(ValueError, match="residual"):
        init.apply(nn.Sequential(nn.Linear(2, 2)), "zero_init_residual")


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_zero_init_residual_on_the_model_zoo_resnet(norm):
    from dlskills.models import create

    model = create("resnet", input_shape=(1, 8, 8), num_classes=10, depth=8, norm=norm)
    init.apply(model, "zero_init_residual")
    blocks = [m for m in model.modules() if hasattr(m, "residual_last")]
    assert blocks and all(b.residual_last.weight.abs().sum() == 0 for b in blocks)
