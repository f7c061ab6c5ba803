"""Fixup ResNet (1901.09321): structure, init, and training without normalisation."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlskills import init
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


def test_depth_32_loss_falls_quickly_without_normalisation():
    torch.manual_seed(0)
    x_train, y_train, _, _ = digits_tensors(seed=0)
    model = FixupResNet(input_shape=(1, 8, 8), num_classes=10, depth=32, width=4)
    optimizer = torch.optim.SGD(fixup_param_groups(model, 0.2), lr=0.2, momentum=0.9)
    first = F.cross_entropy(model(x_train), y_train).item()
    assert first == pytest.approx(math.log(10), abs=1e-6)  # zero classifier: uniform output
    generator = torch.Generator().manual_seed(0)
    for _ in range(60):
        batch = torch.randint(0, len(x_train), (128,), generator=generator)
        loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert F.cross_entropy(model(x_train), y_train).item() < 0.6 * first
    assert all(torch.isfinite(p).all() for p in model.parameters())


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
