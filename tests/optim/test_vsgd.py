"""vSGD-l (1206.1106): the update equations by hand and the no-tuning claim."""

import copy

import pytest
import torch

from dlskills.optim import test_functions as tf
from dlskills.optim.vsgd import VSGD


def diagonal_quadratic(h, point):
    def closure():
        point.grad = None
        loss = 0.5 * (h * point * point).sum()
        loss.backward()
        return loss

    return closure


H = torch.tensor([1.0, 4.0, 25.0], dtype=torch.float64)


def test_noiseless_single_sample_is_a_diagonal_newton_step():
    """n0 = 1, C = 1, diagonal H: ḡ² = v̄, so η* = 1/h and τ = 1; θ lands on the minimum."""
    point = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    optimizer = VSGD([point], init_samples=1, variance_scale=1.0)
    optimizer.step(diagonal_quadratic(H, point))
    assert point.detach().abs().max() < 1e-6
    assert torch.allclose(optimizer.state[point]["memory"], torch.ones(3, dtype=torch.float64))


def test_two_steps_by_hand():
    """n0 = 2, C = 2 on a deterministic diagonal quadratic (curvature exact: v_i² = 1).
    Step 1: ḡ = g0, v̄ = 2g0², η = 1/(2h), τ = (1 − ½)·2 + 1 = 2, θ1 = θ0 − g0/(2h) = θ0/2.
    Step 2: g1 = g0/2; ḡ = ¾g0, v̄ = (2g0² + g0²/4)/2 = 9/8 g0², η = (9/16)/(9/8)/h = 1/(2h),
    τ = 2 again, θ2 = θ1 − g1/(2h) = θ0/4."""
    theta0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    point = theta0.clone().requires_grad_(True)
    optimizer = VSGD([point], init_samples=2, variance_scale=2.0)
    closure = diagonal_quadratic(H, point)
    optimizer.step(closure)
    assert torch.allclose(point.detach(), theta0 / 2, rtol=1e-6)
    assert torch.allclose(optimizer.state[point]["memory"], torch.full((3,), 2.0).double())
    optimizer.step(closure)
    state = optimizer.state[point]
    assert torch.allclose(state["grad_avg"], 0.75 * H * theta0, rtol=1e-6)
    assert torch.allclose(state["sq_avg"], 9 / 8 * (H * theta0) ** 2, rtol=1e-6)
    assert torch.allclose(point.detach(), theta0 / 4, rtol=1e-6)


def _regression_excess_loss(make_optimizer, steps=300, batch=16):
    data = torch.Generator().manual_seed(0)
    n, d = 1000, 10
    scales = torch.logspace(-1, 1, d, dtype=torch.float64)
    x = torch.randn(n, d, generator=data, dtype=torch.float64) * scales
    y = x @ torch.randn(d, generator=data, dtype=torch.float64)
    y = y + 0.5 * torch.randn(n, generator=data, dtype=torch.float64)
    best = torch.linalg.lstsq(x, y.unsqueeze(1)).solution.squeeze(1)
    weights = torch.zeros(d, dtype=torch.float64, requires_grad=True)
    optimizer = make_optimizer([weights])
    batches = torch.Generator().manual_seed(1)
    for _ in range(steps):
        index = torch.randint(0, n, (batch,), generator=batches)

        def closure(index=index):
            weights.grad = None
            loss = 0.5 * (x[index] @ weights - y[index]).square().mean()
            loss.backward()
            return loss

        optimizer.step(closure)
    with torch.no_grad():
        loss = lambda w: 0.5 * (x @ w - y).square().mean().item()  # noqa: E731
        excess = loss(weights) - loss(best)
    return excess if excess == excess else float("inf")


def test_no_tuning_beats_the_best_sgd_rate_on_a_badly_scaled_stochastic_problem():
    """The paper's claim: vSGD's automatic rates do as well as a tuned SGD. Feature scales span
    0.1–10 (curvature 0.01–100): one global SGD rate is either unstable for the steep
    coordinates or crawls on the flat ones; vSGD's per-coordinate rates are not."""
    sgd = min(
        _regression_excess_loss(lambda p, lr=lr: torch.optim.SGD(p, lr=lr))
        for lr in (0.001, 0.003, 0.01, 0.02)
    )
    vsgd = _regression_excess_loss(VSGD)
    assert vsgd < 0.1 * sgd
    assert vsgd < 0.01


def test_converges_on_beale_and_keeps_dtype():
    end = tf.run_trajectory("vsgd", "beale", 500, dtype=torch.float32)[-1]
    assert end.dtype == torch.float32
    assert torch.allclose(end, torch.tensor([3.0, 0.5]), atol=1e-4)


def test_state_dict_round_trip():
    a = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    opt_a = VSGD([a], seed=3)
    hessian = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 3.0]], dtype=torch.float64)

    def closure_for(point):
        def closure():
            point.grad = None
            loss = 0.5 * point @ hessian @ point + torch.sin(point).sum()
            loss.backward()
            return loss

        return closure

    for _ in range(4):
        opt_a.step(closure_for(a))
    b = a.detach().clone().requires_grad_(True)
    opt_b = VSGD([b], seed=0)
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))
    for _ in range(4):
        opt_a.step(closure_for(a))
        opt_b.step(closure_for(b))
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"lr": -1.0}, "lr"),
        ({"init_samples": 0}, "init_samples"),
        ({"variance_scale": 0.5}, "variance_scale"),
        ({"min_curvature": 0.0}, "min_curvature"),
    ],
)
def test_invalid_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        VSGD([torch.zeros(1, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError, match="closure"):
        VSGD([torch.zeros(1, requires_grad=True)]).step()
