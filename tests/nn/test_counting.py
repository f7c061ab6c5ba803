"""MAC/parameter counter used by the 1808.05517, 1906.03516 and 1907.05653 count checks."""

import pytest
import torch
from torch import nn

from dlskills.nn._counting import count_macs, count_params


class _Functional(nn.Module):
    """A module doing a matmul functionally and declaring its MACs."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(5, 3))

    def forward(self, x):
        return x @ self.weight.T

    def functional_macs(self, input, output):
        return output[0].numel() * self.weight.shape[1]


def test_conv_linear_and_functional_macs_by_hand():
    model = nn.Sequential(
        nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2),  # out 6×4×4, 2 inputs per output
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(96, 3),
        _Functional(),
    ).train()
    counts = count_macs(model, (4, 8, 8))
    assert counts.per_module == {"0": 96 * 2 * 9, "3": 96 * 3, "4": 5 * 3}
    assert counts.macs == 1728 + 288 + 15
    assert counts.params == (6 * 2 * 9 + 6) + (96 * 3 + 3) + 15 == count_params(model)
    assert model.training  # restored after the eval-mode pass
    assert not any(m._forward_hooks for m in model.modules())  # hooks removed


def test_macs_scale_with_sequence_positions_and_validation():
    model = nn.Linear(10, 4)
    assert count_macs(model, (7, 10)).macs == 7 * 10 * 4
    frozen = nn.Linear(3, 3)
    frozen.weight.requires_grad_(False)
    assert count_params(frozen, trainable_only=True) == 3
    with pytest.raises(ValueError, match="input_shape"):
        count_macs(model, (0, 10))
    with pytest.raises(TypeError, match="model"):
        count_macs(lambda x: x, (3,))
