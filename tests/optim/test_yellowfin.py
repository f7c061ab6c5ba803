"""YellowFin (1706.03471): closed-form cubic, tuner equations, statistics, guards."""

import copy
import math

import numpy as np
import pytest
import torch

from dlskills.optim import create
from dlskills.optim import test_functions as tf
from dlskills.optim.yellowfin import YellowFin, cubic_root, tune


def test_cubic_root_matches_numpy_roots_on_random_inputs():
    rng = np.random.default_rng(0)
    for p in np.exp(rng.uniform(-8, 8, size=200)):
        roots = np.roots([1.0, 0.0, p, p])
        real = roots[np.abs(roots.imag) < 1e-9 * max(1.0, p)].real
        assert len(real) == 1
        assert cubic_root(p) - 1.0 == pytest.approx(real[0], rel=1e-6, abs=1e-9)
        assert 0.0 < cubic_root(p) < 1.0


def test_root_minimises_the_noisy_quadratic_objective():
    distance, variance, h_min = 0.7, 3.0, 2.0
    objective = lambda x: x * x * distance**2 + (1 - x) ** 4 * variance / h_min**2  # noqa: E731
    p = distance**2 * h_min**2 / (2 * variance)
    x = cubic_root(p)
    grid = np.linspace(0, 1, 100001)
    assert x == pytest.approx(grid[np.argmin(objective(grid))], abs=1e-4)


def test_noiseless_quadratic_gives_polyaks_optimal_heavy_ball():
    h_min, h_max = 1.0, 100.0
    mu, lr = tune(h_min, h_max, variance=0.0, distance=1.0)
    kappa = h_max / h_min
    assert mu == pytest.approx(((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2)
    assert lr == pytest.approx(4 / (math.sqrt(h_max) + math.sqrt(h_min)) ** 2)


def test_noisy_regime_uses_the_cubic_root():
    mu, lr = tune(h_min=1.0, h_max=1.0, variance=10.0, distance=1.0)  # κ = 1: no range bound
    x = cubic_root(1.0 / 20.0)
    assert mu == pytest.approx(x * x)
    assert lr == pytest.approx((1 - x) ** 2)


def test_statistics_without_smoothing_follow_the_definitions():
    """β = 0: h_min/h_max are the window's extremes of ‖g‖², the variance is ~0, the distance
    1/‖g‖, so the tuned (μ, lr) after a step must equal tune() on those numbers."""
    param = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    optimizer = YellowFin([param], lr=0.01, beta=0.0, curvature_window=3, clip_factor=None)
    norms = [1.0, 3.0, 2.0, 0.5]
    for norm in norms:
        param.grad = torch.tensor([norm, 0.0, 0.0], dtype=torch.float64)
        optimizer.step()
    tuner = optimizer.state[param]
    h_min, h_max = optimizer.h_range(tuner)
    assert (h_min, h_max) == pytest.approx((0.25, 9.0))  # window holds 3², 2², 0.5²
    mu, lr = tune(0.25, 9.0, variance=1e-15, distance=1 / 0.5)
    assert optimizer.param_groups[0]["momentum"] == pytest.approx(mu)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(lr)


def test_first_step_is_plain_sgd_with_slow_start():
    param = torch.ones(2, requires_grad=True)
    optimizer = YellowFin([param], lr=0.5, curvature_window=20)
    param.grad = torch.tensor([1.0, -2.0])
    optimizer.step()
    slow = 0.5 * 1 / 200  # lr · (t + 1)/(10·W)
    assert torch.allclose(param, torch.tensor([1 - slow, 1 + 2 * slow]))


def test_gradient_clipped_at_sqrt_clip_factor_h_max():
    param = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = YellowFin([param], lr=1.0, beta=0.0, slow_start=False, clip_factor=4.0)
    param.grad = torch.tensor([1.0], dtype=torch.float64)
    optimizer.step()  # h_max = 1 → threshold √4 = 2
    before = param.detach().clone()
    lr, mu = optimizer.state[param]["tuned_lr"], optimizer.state[param]["tuned_momentum"]
    buffer = optimizer.state[param]["momentum_buffer"].clone()
    param.grad = torch.tensor([100.0], dtype=torch.float64)
    optimizer.step()
    expected_buffer = mu * buffer + 2.0
    assert param.item() == pytest.approx((before - lr * expected_buffer).item(), rel=1e-5)


def test_non_finite_gradient_skips_the_step():
    param = torch.ones(2, requires_grad=True)
    optimizer = YellowFin([param])
    param.grad = torch.tensor([float("nan"), 1.0])
    optimizer.step()
    assert torch.equal(param.detach(), torch.ones(2))
    assert optimizer.state[param]["skipped_steps"] == 1


def test_runaway_lr_is_capped():
    param = torch.ones(1, dtype=torch.float64, requires_grad=True)
    optimizer = YellowFin([param], beta=0.0, max_lr=0.3, clip_factor=None)
    for _ in range(5):
        param.grad = torch.tensor([1e-9], dtype=torch.float64)  # h_min ~ 1e-18: lr_t ~ 1e18
        optimizer.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.3)


def test_converges_on_the_quadratic_and_keeps_dtype():
    path = tf.run_trajectory("yellowfin", "ill_conditioned_quadratic", 600, lr=0.05)
    assert path[-1].norm() < 1e-6
    param = torch.ones(2, dtype=torch.float64, requires_grad=True)
    optimizer = create("yellowfin", [param])
    param.grad = torch.ones(2, dtype=torch.float64)
    optimizer.step()
    assert param.dtype == torch.float64


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"lr": 0.0}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"beta": -0.1}, "beta"),
        ({"curvature_window": 0}, "curvature_window"),
        ({"clip_factor": -1.0}, "clip_factor"),
    ],
)
def test_invalid_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        YellowFin([torch.zeros(1, requires_grad=True)], **kwargs)


def test_state_dict_round_trip_continues_identically():
    def run(optimizer, param, steps):
        for _ in range(steps):
            param.grad = torch.sin(param.detach() * 3) + 0.1
            optimizer.step()

    a = torch.ones(4, requires_grad=True)
    opt_a = YellowFin([a], lr=0.1, beta=0.9)
    run(opt_a, a, 30)
    b = a.detach().clone().requires_grad_(True)
    opt_b = YellowFin([b], lr=0.1, beta=0.9)
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))
    run(opt_a, a, 10)
    run(opt_b, b, 10)
    assert torch.equal(a, b)
