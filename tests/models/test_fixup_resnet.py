"""Fixup ResNet (1901.09321): structure, init, and training without normalisation."""

import math

import pytest
import torch
from torch import nn

from dlskills import init, repro
from dlskills.models import create
from dlskills.models._quickfit import digits_tensors, quick_fit
from dlskills.models.fixup_resnet import FixupResNet
from dlskills.nn.fixup import fixup_param_groups


def test_depth_32_structure_and_init():
    model = create("fixup_resnet", input_shape=(1, 8, 8), num_classes=10, depth=32, width=8)
    assert isinstance(model, FixupResNet) and model.num_branches == 15
    assert not any(isinstance(m, nn.modules.batchnorm._NormBase) for m in model.modules())
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 31  # stem + 2 per branch; + classifier = 32 weighted layers
    assert model.classifier.weight.abs().sum() == 0
    assert all(block.conv2.weight.abs().sum() == 0 for block in model.blocks)
    # first conv of each branch: He fan-out scaled by L^(−1/2), pooled over the last stage
    last_stage = [b.conv1.weight.detach().flatten() for b in model.blocks[11:]]
    pooled = torch.cat(last_stage)
    expected = 2 / (32 * 9) / 15
    assert abs(pooled.var().item() / expected - 1) < 5 * math.sqrt(2 / (pooled.numel() - 1))
    out = model(torch.randn(4, 1, 8, 8))
    assert out.shape == (4, 10) and out.abs().sum() == 0


def test_init_apply_fixup_restores_the_rule_after_another_init():
    model = FixupResNet(input_shape=(1, 8, 8), num_classes=10, depth=14, width=4)
    init.apply(model, "he_normal")
    assert model.classifier.weight.abs().sum() > 0
    init.apply(model, "fixup")
    assert model.classifier.weight.abs().sum() == 0
    assert all(block.conv2.weight.abs().sum() == 0 for block in model.blocks)


def test_fast_repro_fixup_trains_where_the_standard_init_does_not():
    """ResNet-32 without normalisation, seeds 0-1, 60 SGD steps at lr 0.2: from Fixup the loss
    starts at exactly ln 10 (zero classifier) and falls to 0.50 ln 10 (test accuracy 0.54); from
    He init (the control) it starts at 5.2 and stays at ln 10 (accuracy 0.10)."""
    result = repro.get("1901.09321")(scale="fast")
    assert result.verdict == repro.fast_verdict("1901.09321") == "reproduced", result.reason
    assert result["loss at init, Fixup"] == pytest.approx(math.log(10), abs=1e-6)
    assert result["training loss / ln 10, Fixup"] < 0.6
    assert result["training loss / ln 10, He (no norm)"] > 0.9
    assert result["test accuracy, He (no norm)"] < 0.2


def test_validation():
    with pytest.raises(ValueError, match="depth"):
        FixupResNet(input_shape=(1, 8, 8), depth=30)
    with pytest.raises(ValueError, match="input_shape"):
        FixupResNet(input_shape=(8, 8))


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_fixup_resnet_32_trains_on_digits_without_normalisation():
    """Depth 32 (15 branches), width 8, no norm layer; SGD lr 0.05 (scalars 0.005), momentum
    0.9, wd 5e-4, 15 epochs; mean test accuracy over seeds 0-2 ≥ 0.93."""
    data = digits_tensors(seed=0)
    accuracies = []
    for seed in range(3):
        torch.manual_seed(seed)
        model = FixupResNet(input_shape=(1, 8, 8), num_classes=10, depth=32, width=8)
        accuracies.append(
            quick_fit(
                model,
                data,
                epochs=15,
                lr=0.05,
                seed=seed,
                weight_decay=5e-4,
                param_groups=fixup_param_groups,
            )
        )
    print("fixup resnet-32 digits accuracies:", [round(a, 4) for a in accuracies])
    assert sum(accuracies) / 3 >= 0.93
