"""AggMo: hand-computed steps, the exponential form, torch_optimizer.AggMo over 100 steps."""

import pytest
import torch

from dlskills.optim import AggMo


def test_two_steps_match_hand_computation():
    # betas (0, 0.5), lr 1, K = 2, constant gradient 1:
    # step 1: v = (1, 1),   θ = 1 − ½·(1 + 1)   = 0
    # step 2: v = (1, 1.5), θ = 0 − ½·(1 + 1.5) = −1.25
    param = torch.tensor([1.0], requires_grad=True)
    opt = AggMo([param], lr=1.0, betas=(0.0, 0.5))
    for expected in (0.0, -1.25):
        param.grad = torch.ones(1)
        opt.step()
        assert param.item() == pytest.approx(expected)


def test_weight_decay_adds_to_the_gradient():
    # g = 0 + 0.5·2 = 1, betas (0.9,) so v = 1, θ = 2 − 0.1·1
    param = torch.tensor([2.0], requires_grad=True)
    opt = AggMo([param], lr=0.1, betas=(0.9,), weight_decay=0.5)
    param.grad = torch.zeros(1)
    opt.step()
    assert param.item() == pytest.approx(1.9)


def test_exp_form_gives_one_minus_a_to_the_i():
    opt = AggMo.from_exp_form([torch.zeros(1, requires_grad=True)], lr=0.1, a=0.5, K=4)
    assert opt.param_groups[0]["betas"] == pytest.approx((0.0, 0.5, 0.75, 0.875))
    default = AggMo.from_exp_form([torch.zeros(1, requires_grad=True)], lr=0.1)
    assert default.param_groups[0]["betas"] == pytest.approx((0.0, 0.9, 0.99))


def test_matches_torch_optimizer_for_100_steps():
    torch_optimizer = pytest.importorskip("torch_optimizer")
    generator = torch.Generator().manual_seed(3)
    start = [torch.randn(s, generator=generator) for s in [(5,), (20, 30), (2, 3, 4)]]
    ours = [p.clone().requires_grad_() for p in start]
    theirs = [p.clone().requires_grad_() for p in start]
    opt_ours = AggMo(ours, lr=0.01, weight_decay=1e-3)
    opt_theirs = torch_optimizer.AggMo(theirs, lr=0.01, weight_decay=1e-3)
    for _ in range(100):
        for a, b in zip(ours, theirs):
            grad = torch.randn(a.shape, generator=generator)
            a.grad, b.grad = grad.clone(), grad.clone()
        opt_ours.step()
        opt_theirs.step()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.detach(), b.detach(), atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"lr": -1.0}, "lr"),
        ({"betas": ()}, "betas"),
        ({"betas": (0.0, 1.0)}, r"betas\[1\]"),
        ({"weight_decay": -1.0}, "weight_decay"),
    ],
)
def test_invalid_hyper_parameters_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        AggMo([torch.zeros(1, requires_grad=True)], **{"lr": 0.1, **kwargs})


@pytest.mark.parametrize(("kwargs", "argument"), [({"a": 1.0}, "a"), ({"K": 0}, "K")])
def test_invalid_exp_form_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=rf"\b{argument}\b"):
        AggMo.from_exp_form([torch.zeros(1, requires_grad=True)], lr=0.1, **kwargs)


def test_lr_is_required_and_must_be_a_finite_number():
    with pytest.raises(TypeError, match="lr"):
        AggMo([torch.zeros(1, requires_grad=True)])
    with pytest.raises(TypeError, match="lr"):
        AggMo.from_exp_form([torch.zeros(1, requires_grad=True)])
    for lr in (True, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="lr"):
            AggMo([torch.zeros(1, requires_grad=True)], lr=lr)
