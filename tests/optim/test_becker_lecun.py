"""Diagonal pseudo-Newton (becker-lecun-1988): the Hessian-diagonal estimate and the update."""

import copy

import pytest
import torch

from dlskills.bench import surfaces as tf
from dlskills.optim._curvature import finite_difference_hvp, gradients_of
from dlskills.optim.becker_lecun import BeckerLeCun, hutchinson_diagonal


def quadratic_closure(hessian, point):
    def closure():
        point.grad = None
        loss = 0.5 * point @ hessian @ point
        loss.backward()
        return loss

    return closure


def random_hessian(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=g, dtype=torch.float64)
    return a @ a.T + torch.eye(n, dtype=torch.float64)


def test_finite_difference_hvp_matches_exact_product_and_restores_state():
    hessian = random_hessian(6)
    point = torch.randn(6, dtype=torch.float64, requires_grad=True)
    closure = quadratic_closure(hessian, point)
    before = point.detach().clone()
    _, grads = gradients_of(closure, [point])
    vector = torch.randn(6, dtype=torch.float64)
    (product,) = finite_difference_hvp(closure, [point], [vector], grads)
    assert torch.allclose(product, hessian @ vector, rtol=1e-6, atol=1e-6)
    assert torch.equal(point.detach(), before)
    assert torch.equal(point.grad, grads[0])


def test_single_probe_is_exact_for_a_diagonal_hessian():
    hessian = torch.diag(torch.tensor([0.5, 3.0, 40.0], dtype=torch.float64))
    point = torch.randn(3, dtype=torch.float64, requires_grad=True)
    closure = quadratic_closure(hessian, point)
    _, grads = gradients_of(closure, [point])
    (estimate,) = hutchinson_diagonal(closure, [point], grads, torch.Generator().manual_seed(0))
    assert torch.allclose(estimate, hessian.diagonal(), rtol=1e-6)


def test_running_estimate_converges_to_the_exact_hessian_diagonal():
    """A dense 5×5 quadratic: the optimizer's zero-debiased running Hutchinson average (γ = 0.99,
    500 steps at a fixed point, lr tiny) matches diag H within 10 %."""
    hessian = random_hessian(5, seed=1)
    point = torch.randn(5, dtype=torch.float64, requires_grad=True)
    optimizer = BeckerLeCun([point], lr=1e-12, curvature_decay=0.99, probes=2)
    closure = quadratic_closure(hessian, point)
    for _ in range(500):
        optimizer.step(closure)
    state = optimizer.state[point]
    estimate = state["curvature"] / (1 - 0.99 ** state["step"].item())
    relative = (estimate - hessian.diagonal()).abs() / hessian.diagonal()
    assert relative.max() < 0.1


def test_update_rule_with_known_curvature():
    """Diagonal H, γ = 0: the step is exactly lr·g/(h + μ) coordinate by coordinate."""
    h = torch.tensor([2.0, 8.0], dtype=torch.float64)
    point = torch.tensor([1.0, -1.0], dtype=torch.float64, requires_grad=True)
    optimizer = BeckerLeCun([point], lr=0.5, damping=0.1, curvature_decay=0.0)
    loss = optimizer.step(quadratic_closure(torch.diag(h), point))
    assert loss.item() == pytest.approx(5.0)
    grad = h * torch.tensor([1.0, -1.0], dtype=torch.float64)
    expected = torch.tensor([1.0, -1.0], dtype=torch.float64) - 0.5 * grad / (h + 0.1)
    assert torch.allclose(point.detach(), expected, rtol=1e-7)


def test_newton_speed_on_axis_aligned_ill_conditioning():
    """κ = 100 axis-aligned: the diagonal is the Hessian, so one step lands (almost) on the
    minimum, where gradient descent needs hundreds (sutton-1986)."""
    function = tf.ill_conditioned_quadratic(condition_number=100.0, angle=0.0)
    path = tf.run_trajectory("becker_lecun", function, 2, lr=1.0, damping=1e-8)
    assert path[1].norm() < 1e-6


def test_converges_on_rotated_quadratic_and_beale():
    path = tf.run_trajectory("becker_lecun", "ill_conditioned_quadratic", 300, lr=0.5)
    assert path[-1].norm() < 1e-8
    end = tf.run_trajectory("becker_lecun", "beale", 300, lr=0.5)[-1]
    assert torch.allclose(end, torch.tensor([3.0, 0.5], dtype=torch.float64), atol=1e-4)


def test_state_dict_round_trip_includes_the_probe_generator():
    hessian = random_hessian(4, seed=2)
    a = torch.ones(4, dtype=torch.float64, requires_grad=True)
    opt_a = BeckerLeCun([a], lr=0.3, seed=5)
    for _ in range(3):
        opt_a.step(quadratic_closure(hessian, a))
    b = a.detach().clone().requires_grad_(True)
    opt_b = BeckerLeCun([b], lr=0.3, seed=99)
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))
    for _ in range(3):
        opt_a.step(quadratic_closure(hessian, a))
        opt_b.step(quadratic_closure(hessian, b))
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"lr": 0.0}, "lr"),
        ({"damping": 0.0}, "damping"),
        ({"curvature_decay": 1.0}, "curvature_decay"),
        ({"probes": 0}, "probes"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_invalid_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        BeckerLeCun([torch.zeros(1, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError, match="closure"):
        BeckerLeCun([torch.zeros(1, requires_grad=True)]).step()
