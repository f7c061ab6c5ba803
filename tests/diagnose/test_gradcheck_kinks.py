"""check_gradients at kinks (issue 16): finite differences that straddle a non-differentiable
point (ReLU/abs at 0, clamp bounds, max-pool ties) are counted as kinks, not errors, while a
wrong backward is still caught; the default CNN on two real digits is checked in seconds."""

import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlskills.data import load
from dlskills.diagnose.gradcheck import check_gradients
from dlskills.models import create


@pytest.fixture
def one_thread():
    # float64 convolutions of two 8×8 images: threads cost more than they give on a busy machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(
    ("fn", "values", "kinks"),
    [
        (torch.relu, [0.0, 1.0, -2.0], 1),  # relu'(0) = 0 in torch; the difference sees v/2
        (torch.abs, [0.0, 0.5, -0.5, 0.0], 2),
        (lambda x: x.clamp(-1.0, 1.0), [-1.0, 0.3, 1.0, 2.0], 2),
        (lambda x: F.hardtanh(x, min_val=-0.5), [-0.5, 0.0, 0.5], 1),
        # x0 and x2 tie; the middle is compared with itself: a tie along every perturbation
        (lambda x: torch.maximum(x, x.flip(0)), [1.0, 2.0, 1.0], 2),
        # windows [1, 1] (a tie) and [0, 2]
        (lambda x: F.max_pool1d(x.view(1, 1, -1), 2), [1.0, 1.0, 0.0, 2.0], 2),
    ],
    ids=["relu", "abs", "clamp", "hardtanh", "maximum", "max_pool1d"],
)
def test_straddled_kinks_are_counted_not_failed(fn, values, kinks):
    x = torch.tensor(values)
    report = check_gradients(fn, x)
    assert report.passed and report.kinks == kinks
    assert report.max_abs_error < 1e-8  # the smooth elements, exactly as before
    assert "kinks" in str(report)


def test_a_kink_inside_the_step_is_a_kink_too():
    # relu's input at 3e-7 < ε = 1e-6: the central difference crosses 0 on its lower side
    report = check_gradients(torch.relu, torch.tensor([3e-7, 0.25]))
    assert report.passed and report.kinks == 1


def test_unlisted_ops_fall_back_to_one_sided_slopes():
    # max over a dimension is not in the recorder's list; at a tie autograd takes one side
    report = check_gradients(lambda x: x.max(dim=0).values, torch.tensor([[1.0, 2.0], [1.0, 0.0]]))
    assert report.passed and report.kinks == 2


class StraightThroughReLU(torch.autograd.Function):
    """ReLU forward with a wrong backward: the identity (the gradient also flows where x < 0)."""

    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        return grad


class WrongReLU(nn.Module):
    def forward(self, x):
        return StraightThroughReLU.apply(x)


def _default_cnn_and_two_digits():
    torch.manual_seed(0)
    model = create("cnn", input_shape=(1, 8, 8), num_classes=10)
    return model, load("digits", seed=0).train.tensors[0][:2]


def test_healthy_default_cnn_on_real_digits_is_ok_with_kinks_in_seconds(one_thread):
    model, digits = _default_cnn_and_two_digits()
    start = time.perf_counter()
    report = check_gradients(model, digits)
    seconds = time.perf_counter() - start
    assert report.passed, str(report)
    # blank pixels tie in the max-pool windows: perturbing such a pixel breaks a tie
    assert report.kinks > 0
    assert report.max_abs_error < 1e-7
    # at most 256 sampled elements per tensor: 1,098 of the 19,562 + 128 elements, ≈ 1 s idle
    assert sum(c.checked for c in report.tensors) == 1098
    assert seconds < 60, f"{seconds:.1f} s"


def test_a_wrong_backward_inside_the_cnn_is_still_caught(one_thread):
    model, digits = _default_cnn_and_two_digits()
    for index, layer in enumerate(model):
        if isinstance(layer, nn.ReLU):
            model[index] = WrongReLU()
    report = check_gradients(model, digits, max_elements=64)
    assert not report.passed
    # the first layers' gradients pass through the wrong backward; the classifier's do not
    failing = {c.name for c in report.tensors if not c.passed}
    assert "param:0.weight" in failing and "input[0]" in failing
    assert not {"param:10.weight", "param:10.bias"} & failing
    assert report.max_abs_error > 1e-3
