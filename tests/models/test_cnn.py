"""Small CNN: structure, parameter count by hand, and (slow) the ≥ 98 % digits recipe."""

import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlskills.data import load
from dlskills.models import create


def test_default_parameter_count_by_hand():
    model = create("cnn", input_shape=(1, 8, 8), num_classes=10)
    # conv 1→32 (no bias, BN follows) + BN(32) + conv 32→64 + BN(64) + Linear 64→10
    expected = 1 * 32 * 9 + 2 * 32 + 32 * 64 * 9 + 2 * 64 + 64 * 10 + 10
    assert sum(p.numel() for p in model.parameters()) == expected == 19_562


def test_structure_and_pooling_stops_at_one_pixel():
    model = create("cnn", input_shape=(1, 8, 8), num_classes=3, channels=(4, 4, 4, 4))
    assert sum(isinstance(m, nn.MaxPool2d) for m in model) == 3  # 8 → 4 → 2 → 1
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    doubled = create("cnn", input_shape=(3, 28, 20), num_classes=3, convs_per_stage=2, dropout=0.3)
    assert sum(isinstance(m, nn.Conv2d) for m in doubled) == 4
    assert sum(isinstance(m, nn.Dropout) for m in doubled) == 1
    assert doubled(torch.randn(2, 3, 28, 20)).shape == (2, 3)
    plain = create("cnn", input_shape=(1, 8, 8), num_classes=3, norm="none")
    assert all(m.bias is not None for m in plain if isinstance(m, nn.Conv2d))


def test_argument_errors():
    with pytest.raises(ValueError, match="channels"):
        create("cnn", input_shape=(1, 8, 8), num_classes=3, channels=())
    with pytest.raises(ValueError, match="channels"):
        create("cnn", input_shape=(1, 8, 8), num_classes=3, channels=(8, 0))
    with pytest.raises(ValueError, match="convs_per_stage"):
        create("cnn", input_shape=(1, 8, 8), num_classes=3, convs_per_stage=0)


def train_digits_cnn(seed, epochs=20, lr=3e-3, batch_size=64):
    """The plain model-level recipe: Adam, constant lr, no augmentation (`dlskills train`'s
    default recipe, with schedule, label smoothing and EMA, is benchmarks/default_recipe.py)."""
    torch.manual_seed(seed)
    splits = load("digits", seed=seed)
    train, _, test = splits.loaders(batch_size, seed=seed, eval_batch_size=512)
    model = create("cnn", input_shape=splits.input_shape, num_classes=splits.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for x, y in train:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        correct = sum((model(x).argmax(1) == y).sum().item() for x, y in test)
    return correct / len(splits.test), seconds


@pytest.mark.slow
def test_digits_cnn_reaches_98_percent_over_three_seeds():
    results = [train_digits_cnn(seed) for seed in range(3)]
    print("digits CNN test accuracy / train seconds:", results)
    assert all(accuracy >= 0.98 for accuracy, _ in results)
