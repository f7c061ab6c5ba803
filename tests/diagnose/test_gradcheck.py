"""Gradient checking (rumelhart-1985): exact agreement on correct gradients, detection of a wrong
custom backward, float64 copies that leave the caller's module and inputs untouched."""

import pytest
import torch
from torch import nn

from dlskills.diagnose.gradcheck import check_gradients, gradcheck


class WrongSquare(torch.autograd.Function):
    """x² with a backward that is off by a factor (returns x instead of 2x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x


def test_module_gradients_agree_in_float64():
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
    inputs = torch.randn(6, 4)
    before = [p.detach().clone() for p in model.parameters()]
    report = check_gradients(model, inputs)
    assert report.passed
    assert [c.name for c in report.tensors] == [
        "param:0.weight",
        "param:0.bias",
        "param:2.weight",
        "param:2.bias",
        "input[0]",
    ]
    assert [c.checked for c in report.tensors] == [20, 5, 15, 3, 24]
    assert report.max_abs_error < 1e-8  # central differences in float64 at eps = 1e-6
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_detects_a_wrong_backward_and_measures_its_error():
    x = torch.tensor([1.0, -2.0, 3.0])
    report = gradcheck(WrongSquare.apply, x, seed=0)
    assert not report.passed
    # with s = ⟨v, x²⟩: numeric ∂s/∂x = 2·v·x, the wrong analytic one is v·x; relative error 1/2
    v = torch.randn(3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert report.tensors[0].max_abs_error == pytest.approx(float((v * x).abs().max()), rel=1e-6)
    assert report.tensors[0].max_rel_error == pytest.approx(0.5, rel=1e-6)


def test_plain_function_of_several_inputs_and_integer_inputs_are_skipped():
    def fn(a, b, index):
        return (a @ b).sin()[index]

    report = check_gradients(fn, (torch.randn(3, 4), torch.randn(4, 2), torch.tensor([0, 2])))
    assert report.passed
    assert [c.name for c in report.tensors] == ["input[0]", "input[1]"]
    assert "input[1]" in str(report)


def test_max_elements_samples_large_tensors():
    report = check_gradients(nn.Linear(30, 20), torch.randn(2, 30), max_elements=10)
    assert [c.checked for c in report.tensors] == [10, 10, 10]
    assert report.passed


def test_validates_arguments():
    with pytest.raises(ValueError, match="eps"):
        check_gradients(torch.sin, torch.randn(2), eps=0)
    with pytest.raises(ValueError, match="nothing to check"):
        check_gradients(torch.sin, torch.randn(2), check_inputs=False)
    with pytest.raises(TypeError, match="callable"):
        check_gradients(3, torch.randn(2))
