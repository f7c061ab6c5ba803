"""STORM: two steps by hand on per-batch quadratics, the closure contract, convergence on noise."""

import math

import pytest
import torch

from dlskills.optim import STORM

K, W, C, G_MAX = 1.0, 10.0, 100.0, 0.01


def _storm_by_hand(theta0, batches):
    """The authors' rule on f_ξ(θ) = ½‖θ − ξ‖², per coordinate, in Python floats."""
    theta, previous = list(theta0), list(theta0)
    estimate = [0.0] * len(theta)
    sums = [G_MAX**3] * len(theta)
    max_norm = G_MAX
    for xi in batches:
        grad = [t - x for t, x in zip(theta, xi)]
        prev_grad = [p - x for p, x in zip(previous, xi)]
        max_norm = max(max_norm, math.sqrt(sum(g * g for g in grad)))
        new_theta = []
        for i, g in enumerate(grad):
            sums[i] += g * g
            eta = K * (W + sums[i]) ** (-1 / 3)
            a = min(1.0, C * eta * eta)
            d = g + (1 - a) * (estimate[i] - prev_grad[i])
            estimate[i] = min(max(d, -max_norm), max_norm)
            new_theta.append(theta[i] - eta * estimate[i])
        previous, theta = theta, new_theta
    return theta


PATHS = [{"foreach": False, "fused": False}, {"foreach": True}, {}]  # {}: the fused kernel


@pytest.mark.parametrize("path", PATHS)
def test_three_steps_match_hand_computation(path):
    batches = [[1.0, -2.0], [0.5, 0.0], [-1.0, 3.0]]
    theta = torch.tensor([0.3, 0.7], dtype=torch.float64, requires_grad=True)
    opt = STORM([theta], **path)
    batch = {}

    def closure():
        theta.grad = None
        loss = 0.5 * (theta - torch.tensor(batch["xi"], dtype=torch.float64)).square().sum()
        loss.backward()
        return loss

    for xi in batches:
        batch["xi"] = xi
        opt.step(closure)
    expected = _storm_by_hand([0.3, 0.7], batches)
    torch.testing.assert_close(theta.detach(), torch.tensor(expected, dtype=torch.float64))


def test_closure_is_evaluated_at_the_previous_iterate_on_the_same_batch():
    theta = torch.tensor([1.0], requires_grad=True)
    opt = STORM([theta])
    seen = []

    def closure():
        seen.append(theta.item())
        theta.grad = None
        loss = (theta**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    first = theta.item()
    opt.step(closure)
    # step 1: one evaluation at θ0 (the previous iterate is θ0 itself); step 2: θ1, then θ0
    assert seen == [1.0, first, 1.0]
    assert theta.grad is not None  # the gradient at the current iterate is left in .grad


def test_step_without_closure_raises():
    opt = STORM([torch.zeros(1, requires_grad=True)])
    with pytest.raises(ValueError, match="closure"):
        opt.step()


def _noisy_quadratic_error(c: float, steps: int = 400) -> float:
    """Mean squared distance to the optimum 0 of f_ξ(θ) = ½‖θ − ξ‖², ξ ~ N(0, I)."""
    generator = torch.Generator().manual_seed(0)
    theta = torch.full((200,), 3.0, dtype=torch.float64, requires_grad=True)
    opt = STORM([theta], c=c)
    batch = {}

    def closure():
        theta.grad = None
        loss = 0.5 * (theta - batch["xi"]).square().sum()
        loss.backward()
        return loss

    for _ in range(steps):
        batch["xi"] = torch.randn(200, generator=generator, dtype=torch.float64)
        opt.step(closure)
    return theta.detach().square().mean().item()


def test_the_recursive_correction_reduces_noise():
    # c = 1e6 forces a = 1, i.e. d = g: SGD with the same adaptive step sizes η_t. With c = 1 the
    # correction (1 − a)(d − g_prev) is active and averages the noise: measured 0.0099 vs 0.072
    sgd_like = _noisy_quadratic_error(c=1e6)
    storm = _noisy_quadratic_error(c=1.0)
    assert storm < sgd_like / 4


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [({"lr": 0.0}, "lr"), ({"w": -1.0}, "w"), ({"c": -1.0}, "c"), ({"g_max": 0.0}, "g_max")],
)
def test_invalid_hyper_parameters_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=rf"\b{argument}\b"):
        STORM([torch.zeros(1, requires_grad=True)], **kwargs)


@pytest.mark.parametrize("path", PATHS)
def test_a_failing_second_evaluation_restores_the_iterate(path):
    """The closure raises while the parameters hold θ_{t−1}: θ_t and its gradient come back,
    and the next step runs as if the failed one had not started."""
    theta = torch.tensor([0.3, 0.7], dtype=torch.float64, requires_grad=True)
    twin = theta.detach().clone().requires_grad_()
    opts = STORM([theta], **path), STORM([twin], **path)

    def closure_for(param, fail_at_previous=False):
        def closure():
            if fail_at_previous and not torch.equal(param.detach(), current):
                raise RuntimeError("data loader died")
            param.grad = None
            loss = 0.5 * (param - 1.0).square().sum()
            loss.backward()
            return loss

        return closure

    for opt, param in zip(opts, (theta, twin)):
        opt.step(closure_for(param))
    current = theta.detach().clone()
    with pytest.raises(RuntimeError, match="loader"):
        opts[0].step(closure_for(theta, fail_at_previous=True))
    assert torch.equal(theta.detach(), current)
    torch.testing.assert_close(theta.grad, current - 1.0)
    for opt, param in zip(opts, (theta, twin)):
        opt.step(closure_for(param))
    assert torch.equal(theta.detach(), twin.detach())


@pytest.mark.parametrize("path", PATHS)
def test_functional_with_the_parameters_as_iterates(path):
    """storm(..., iterates=params): θ ← θ − η·d in place, equal on every path."""
    from dlskills.optim.storm import storm

    results = []
    for p in (PATHS[0], path):
        generator = torch.Generator().manual_seed(0)
        params = [torch.randn(70001, generator=generator, dtype=torch.float64)]
        grads = [torch.randn(70001, generator=generator, dtype=torch.float64)]
        state = (
            [torch.zeros_like(params[0])],
            [torch.full_like(params[0], 1e-6)],
            [torch.tensor(0.01, dtype=torch.float64)],
        )
        storm(params, grads, grads, params, *state, k=K, w=W, c=C, **p)
        results.append(params[0])
    torch.testing.assert_close(results[1], results[0], rtol=1e-12, atol=1e-12)
    assert not torch.equal(
        results[0],
        torch.randn(70001, generator=torch.Generator().manual_seed(0), dtype=torch.float64),
    )


def test_complex_parameters_are_refused_by_name():
    with pytest.raises(ValueError, match="STORM does not support complex"):
        STORM([torch.zeros(2, dtype=torch.complex64, requires_grad=True)])
