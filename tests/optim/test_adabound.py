"""AdaBound/AMSBound: a hand-computed step, the authors' package step for step, base_lr rules."""

import math

import pytest
import torch

from dlskills.optim import AdaBound, create


def _expected_step(p, m, v, vmax, g, t, lr, base_lr, final_lr, gamma, b1, b2, eps, ams):
    """One AdaBound step on Python floats, from the equations in the module docstring."""
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    vmax = max(vmax, v) if ams else v
    step_size = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
    bounded = final_lr * lr / base_lr
    lower = bounded * (1 - 1 / (gamma * t + 1))
    upper = bounded * (1 + 1 / (gamma * t))
    ratio = min(max(step_size / (math.sqrt(vmax) + eps), lower), upper)
    return p - ratio * m, m, v, vmax


@pytest.mark.parametrize("amsbound", [False, True])
@pytest.mark.parametrize("final_lr", [0.1, 0.001])
def test_two_steps_match_hand_computation(amsbound, final_lr):
    values, grads = [1.0, -2.0], [[0.5, 0.1], [-0.2, 0.3]]
    param = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    opt = AdaBound([param], lr=0.1, final_lr=final_lr, amsbound=amsbound)
    expected = [(x, 0.0, 0.0, 0.0) for x in values]
    for t, grad in enumerate(grads, start=1):
        param.grad = torch.tensor(grad, dtype=torch.float64)
        opt.step()
        expected = [
            _expected_step(*state, g, t, 0.1, 0.1, final_lr, 1e-3, 0.9, 0.999, 1e-8, amsbound)
            for state, g in zip(expected, grad)
        ]
        torch.testing.assert_close(
            param.detach(), torch.tensor([e[0] for e in expected], dtype=torch.float64)
        )


def test_upper_bound_clips_the_first_step():
    # t = 1, lr = 0.1, final_lr = 0.001: bounds 0.001·(1 ± …) = [9.99e-7, 1.001]; coordinate 2 has
    # α/(√v + ε) ≈ 0.0316/0.00316 = 10 > 1.001, so it moves by exactly 1.001·m = 1.001·0.01
    param = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = AdaBound([param], lr=0.1, final_lr=0.001)
    param.grad = torch.tensor([0.5, 0.1], dtype=torch.float64)
    opt.step()
    assert param[1].item() == pytest.approx(-2.0 - 1.001 * 0.01, rel=1e-12)


def test_weight_decay_is_coupled_l2():
    param = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    opt = AdaBound([param], lr=0.1, weight_decay=0.5)
    param.grad = torch.tensor([0.0], dtype=torch.float64)
    opt.step()
    expected, *_ = _expected_step(
        2.0, 0, 0, 0, 1.0, 1, 0.1, 0.1, 0.1, 1e-3, 0.9, 0.999, 1e-8, False
    )
    assert param.item() == pytest.approx(expected, rel=1e-12)


def _random_problem(seed):
    generator = torch.Generator().manual_seed(seed)
    shapes = [(7,), (30, 20), (3, 4, 5)]
    return [torch.randn(s, generator=generator) for s in shapes], generator


@pytest.mark.parametrize("amsbound", [False, True])
def test_matches_authors_package_for_100_steps(amsbound):
    adabound = pytest.importorskip("adabound")
    start, generator = _random_problem(1)
    ours = [p.clone().requires_grad_() for p in start]
    theirs = [p.clone().requires_grad_() for p in start]
    kwargs = {"lr": 0.01, "final_lr": 0.05, "weight_decay": 1e-3, "amsbound": amsbound}
    opt_ours = AdaBound(ours, **kwargs)
    opt_theirs = adabound.AdaBound(theirs, **kwargs)
    # a schedule moves lr away from base_lr, so the final_lr·lr/base_lr rescaling is exercised
    sched_ours = torch.optim.lr_scheduler.StepLR(opt_ours, step_size=30, gamma=0.5)
    sched_theirs = torch.optim.lr_scheduler.StepLR(opt_theirs, step_size=30, gamma=0.5)
    for _ in range(100):
        for a, b in zip(ours, theirs):
            grad = torch.randn(a.shape, generator=generator)
            a.grad, b.grad = grad.clone(), grad.clone()
        opt_ours.step()
        _quiet(opt_theirs.step)
        sched_ours.step()
        sched_theirs.step()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.detach(), b.detach(), atol=1e-6, rtol=0)


def test_matches_torch_optimizer_adabound_for_100_steps():
    torch_optimizer = pytest.importorskip("torch_optimizer")
    start, generator = _random_problem(2)
    ours = [p.clone().requires_grad_() for p in start]
    theirs = [p.clone().requires_grad_() for p in start]
    opt_ours = AdaBound(ours, lr=0.01, final_lr=0.05, weight_decay=1e-3)
    opt_theirs = torch_optimizer.AdaBound(theirs, lr=0.01, final_lr=0.05, weight_decay=1e-3)
    for _ in range(100):
        for a, b in zip(ours, theirs):
            grad = torch.randn(a.shape, generator=generator)
            a.grad, b.grad = grad.clone(), grad.clone()
        opt_ours.step()
        opt_theirs.step()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.detach(), b.detach(), atol=1e-6, rtol=0)


def _quiet(function):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the package uses deprecated add() forms
        return function()


def test_base_lr_is_captured_at_construction_and_saved():
    param = torch.zeros(2, requires_grad=True)
    opt = AdaBound([param], lr=0.02)
    opt.param_groups[0]["lr"] = 0.01
    assert opt.param_groups[0]["base_lr"] == 0.02
    restored = AdaBound([torch.zeros(2, requires_grad=True)], lr=0.5)
    restored.load_state_dict(opt.state_dict())
    assert restored.param_groups[0]["base_lr"] == 0.02


def test_amsbound_registry_name_builds_amsbound():
    opt = create("amsbound", [torch.zeros(1, requires_grad=True)])
    assert isinstance(opt, AdaBound) and opt.param_groups[0]["amsbound"] is True


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"lr": 0.0}, "lr"),
        ({"betas": (1.0, 0.999)}, r"betas\[0\]"),
        ({"betas": (0.9, -0.1)}, r"betas\[1\]"),
        ({"final_lr": -1.0}, "final_lr"),
        ({"gamma": 0.0}, "gamma"),
        ({"eps": -1.0}, "eps"),
        ({"weight_decay": -1.0}, "weight_decay"),
    ],
)
def test_invalid_hyper_parameters_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        AdaBound([torch.zeros(1, requires_grad=True)], **kwargs)


def test_complex_parameters_are_refused_by_name():
    with pytest.raises(ValueError, match="AdaBound does not support complex"):
        AdaBound([torch.zeros(2, dtype=torch.complex64, requires_grad=True)])
    optimizer = AdaBound([torch.zeros(2, requires_grad=True)])
    with pytest.raises(ValueError, match="AdaBound does not support complex"):
        optimizer.add_param_group({"params": [torch.zeros(2, dtype=torch.complex64)]})
