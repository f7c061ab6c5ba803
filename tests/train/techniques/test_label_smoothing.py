import math

import pytest
import torch
import torch.nn.functional as F

from dlskills.train.techniques import (
    LabelSmoothingCrossEntropy,
    smooth_targets,
    soft_cross_entropy,
)


def test_smooth_targets_by_hand_and_sum_to_one():
    q = smooth_targets(torch.tensor([2, 0]), num_classes=4, eps=0.2)
    expected = torch.tensor([[0.05, 0.05, 0.85, 0.05], [0.85, 0.05, 0.05, 0.05]])
    torch.testing.assert_close(q, expected)
    torch.testing.assert_close(q.sum(1), torch.ones(2))


def test_smooth_soft_targets_keeps_distribution():
    soft = torch.tensor([[0.3, 0.7, 0.0]])
    q = smooth_targets(soft, 3, 0.3)
    torch.testing.assert_close(q, torch.tensor([[0.31, 0.59, 0.1]]))


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.37])
def test_label_smoothing_loss_equals_torch(eps):
    logits = torch.randn(7, 5, dtype=torch.float64)
    y = torch.randint(0, 5, (7,))
    ours = LabelSmoothingCrossEntropy(eps)(logits, y)
    torch.testing.assert_close(ours, F.cross_entropy(logits, y, label_smoothing=eps))


def test_soft_cross_entropy_by_hand():
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    q = torch.tensor([[1.0, 0.0], [0.25, 0.75]])
    # row 0: p = (1/2, 1/2); row 1: p = (e²/(1+e²), 1/(1+e²))
    row0 = -math.log(0.5)
    row1 = -(0.25 * math.log(math.e**2 / (1 + math.e**2)) + 0.75 * math.log(1 / (1 + math.e**2)))
    expected = torch.tensor((row0 + row1) / 2)
    torch.testing.assert_close(soft_cross_entropy(logits, q), expected)


def test_soft_cross_entropy_gradient_is_softmax_minus_target():
    logits = torch.randn(3, 4, requires_grad=True)
    q = torch.softmax(torch.randn(3, 4), 1)
    soft_cross_entropy(logits, q).backward()
    torch.testing.assert_close(logits.grad, (torch.softmax(logits.detach(), 1) - q) / 3)


def test_arguments_are_validated():
    with pytest.raises(ValueError, match="eps"):
        LabelSmoothingCrossEntropy(1.5)
    with pytest.raises(ValueError, match="num_classes"):
        smooth_targets(torch.tensor([0]), 0, 0.1)
    with pytest.raises(ValueError, match="soft_targets"):
        soft_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 4))
