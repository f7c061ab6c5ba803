"""Test functions (1609.04747) and the sutton-1986 claim: steepest descent is slow on an
ill-conditioned quadratic; momentum and a Newton-like step fix it."""

import math

import pytest
import torch

from dlskills.optim import test_functions as tf


@pytest.mark.parametrize("name", ["rosenbrock", "beale", "ill_conditioned_quadratic"])
def test_minimum_is_a_zero_gradient_zero_value_point(name):
    function = tf.get(name)
    point = torch.tensor(function.minimum, dtype=torch.float64, requires_grad=True)
    value = function(point)
    (grad,) = torch.autograd.grad(value, point)
    assert value.item() == pytest.approx(0.0, abs=1e-12)
    assert grad.abs().max().item() < 1e-10
    assert function(torch.tensor(function.start, dtype=torch.float64)).item() > 1.0


def test_values_against_hand_computed_numbers():
    assert tf.rosenbrock()(torch.tensor([0.0, 0.0])).item() == pytest.approx(1.0)
    assert tf.rosenbrock()(torch.tensor([-1.5, 2.0])).item() == pytest.approx(6.25 + 100 * 0.0625)
    # Beale at (0, 0): 1.5² + 2.25² + 2.625²
    assert tf.beale()(torch.tensor([0.0, 0.0])).item() == pytest.approx(14.203125)
    assert tf.saddle()(torch.tensor([2.0, 3.0])).item() == pytest.approx(-5.0)
    assert tf.saddle().minimum is None


def test_functions_are_batched_over_leading_dimensions():
    function = tf.beale()
    grid = torch.randn(4, 5, 2, dtype=torch.float64)
    values = function(grid)
    assert values.shape == (4, 5)
    assert values[2, 3].item() == pytest.approx(function(grid[2, 3]).item())


def test_quadratic_matches_its_hessian_and_condition_number():
    kappa = 50.0
    function = tf.ill_conditioned_quadratic(condition_number=kappa)
    hessian = tf.quadratic_hessian(condition_number=kappa)
    eigenvalues = torch.linalg.eigvalsh(hessian)
    assert eigenvalues.max() / eigenvalues.min() == pytest.approx(kappa)
    x = torch.randn(2, dtype=torch.float64)
    assert function(x).item() == pytest.approx(0.5 * (x @ hessian @ x).item())
    residuals = function.residuals(x)
    assert residuals.square().sum().item() == pytest.approx(function(x).item())
    with pytest.raises(ValueError, match="condition_number"):
        tf.ill_conditioned_quadratic(condition_number=0.5)


def test_noisy_quadratic_is_seeded_and_unbiased():
    x = torch.tensor([0.3, -0.2], dtype=torch.float64)
    a, b = tf.noisy_quadratic(seed=3), tf.noisy_quadratic(seed=3)
    assert [a(x).item() for _ in range(3)] == [b(x).item() for _ in range(3)]
    assert a(x).item() != a(x).item()  # fresh noise per evaluation
    noisy = tf.noisy_quadratic(noise=0.5, seed=0)
    grads = []
    for _ in range(4000):
        point = x.clone().requires_grad_(True)
        noisy(point).backward()
        grads.append(point.grad)
    mean_grad = torch.stack(grads).mean(0)
    exact = tf.quadratic_hessian() @ x
    # standard error of the mean: 0.5 / √4000 ≈ 0.008
    assert torch.allclose(mean_grad, exact, atol=0.04)


def test_get_rejects_unknown_names_and_bad_input():
    with pytest.raises(ValueError, match="unknown test function"):
        tf.get("himmelblau")
    with pytest.raises(ValueError, match="xy"):
        tf.beale()(torch.zeros(3))


def test_closure_kinds():
    function = tf.rosenbrock()
    point = torch.tensor([0.5, 0.5], dtype=torch.float64, requires_grad=True)
    loss = tf.closure_for(function, point, "backward")()
    assert point.grad is not None and loss.item() == pytest.approx(0.25 + 100 * 0.0625)
    loss, residuals = tf.closure_for(function, point, "graph")()
    assert loss.requires_grad and residuals.shape == (2,)
    assert tf.closure_for(function, point, "residuals")().shape == (2,)
    with pytest.raises(ValueError, match="no residuals"):
        tf.closure_for(tf.saddle(), point, "residuals")
    with pytest.raises(ValueError, match="closure kind"):
        tf.closure_for(function, point, "magic")


def test_run_trajectory_shape_start_and_gradient_descent_numbers():
    path = tf.run_trajectory("sgd", "ill_conditioned_quadratic", 3, lr=0.1)
    assert path.shape == (4, 2)
    hessian = tf.quadratic_hessian()
    expected = torch.tensor(tf.ill_conditioned_quadratic().start, dtype=torch.float64)
    assert torch.equal(path[0], expected)
    for step in range(1, 4):
        expected = expected - 0.1 * hessian @ expected
        assert torch.allclose(path[step], expected)
    with pytest.raises(ValueError, match="steps"):
        tf.run_trajectory("sgd", "beale", -1, lr=0.1)


def steps_to_tolerance(path, tol=1e-6):
    distance = path.norm(dim=-1)
    below = (distance < tol).nonzero()
    return int(below[0]) if len(below) else math.inf


def test_sutton_1986_steepest_descent_slow_momentum_and_newton_fix_it():
    """κ = 100: GD at its best fixed rate 2/(λmin+λmax) contracts by (κ−1)/(κ+1) per step
    (≈ 690 steps to 1e-6); heavy ball with Polyak's optimal (lr, μ) contracts by (√κ−1)/(√κ+1)
    (≈ 70 steps); Newton's step H⁻¹g lands on the minimum in one. Measured: GD 721 steps,
    momentum 98, natural gradient (= Gauss-Newton here) 1, CurveBall 21."""
    kappa = 100.0
    function = tf.ill_conditioned_quadratic(condition_number=kappa)
    gd = tf.run_trajectory("sgd", function, 1000, lr=2 / (1 + kappa))
    momentum = tf.run_trajectory(
        "momentum",
        function,
        1000,
        lr=4 / (1 + math.sqrt(kappa)) ** 2,
        momentum=((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2,
    )
    hessian = tf.quadratic_hessian(condition_number=kappa)
    start = torch.tensor(function.start, dtype=torch.float64)
    newton = start - torch.linalg.solve(hessian, hessian @ start)
    gd_steps, momentum_steps = steps_to_tolerance(gd), steps_to_tolerance(momentum)
    assert 550 < gd_steps < 800
    assert momentum_steps < 120
    assert momentum_steps * 5 < gd_steps
    assert newton.norm().item() < 1e-12
    # the package's second-order optimizers on the same problem (measured: 1 and 21 steps)
    natural = tf.run_trajectory("natural_gradient", function, 3, damping=1e-8)
    curveball = tf.run_trajectory("curveball", function, 100)
    assert steps_to_tolerance(natural) <= 2
    assert steps_to_tolerance(curveball) < 60


def test_trajectory_figure_is_readable(tmp_path, saved_figures):
    optimizers = {"sgd": {"lr": 0.01}, "adam": {"lr": 0.1}}
    tf.plot_trajectories("beale", optimizers, 5, tmp_path / "b.png", resolution=40)
    [fig] = saved_figures
    assert saved_figures.readable(fig)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["sgd lr=0.01", "adam lr=0.1"] and "start" in labels
    [bar] = [a for a in fig.axes if hasattr(a, "_colorbar")]
    assert bar.get_ylabel().startswith("f(x, y)")
