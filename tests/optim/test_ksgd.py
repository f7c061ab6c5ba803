"""kSGD (1512.01139): the Kalman filter on least squares against closed forms."""

import copy

import pytest
import torch

from dlskills.bench import surfaces as tf
from dlskills.optim.ksgd import KSGD


def regression(n=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    scales = torch.tensor([0.01, 1.0, 100.0], dtype=torch.float64)  # cond(XᵀX) ≈ 1e8
    x = torch.randn(n, 3, generator=g, dtype=torch.float64) * scales
    y = x @ torch.tensor([2.0, -1.0, 0.03], dtype=torch.float64)
    return x, y + 0.05 * torch.randn(n, generator=g, dtype=torch.float64)


def one_pass(optimizer, weights, x, y, batch):
    for start in range(0, len(x), batch):
        xb, yb = x[start : start + batch], y[start : start + batch]
        optimizer.step(lambda xb=xb, yb=yb: xb @ weights - yb)


@pytest.mark.parametrize("batch", [1, 10])
def test_one_pass_equals_the_ridge_closed_form_despite_conditioning(batch):
    """Static-state Kalman filter = recursive least squares: after one pass θ is exactly
    (XᵀX + σ²/p₀·I)⁻¹Xᵀy and P = (I/p₀ + XᵀX/σ²)⁻¹, for any batching and cond(XᵀX) ≈ 1e8."""
    x, y = regression()
    p0, noise = 1e4, 0.5
    weights = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    optimizer = KSGD([weights], prior_variance=p0, observation_noise=noise)
    one_pass(optimizer, weights, x, y, batch)
    gram = x.T @ x
    ridge = torch.linalg.solve(gram + noise / p0 * torch.eye(3, dtype=torch.float64), x.T @ y)
    assert torch.allclose(weights.detach(), ridge, rtol=1e-7, atol=1e-9)
    posterior = torch.linalg.inv(torch.eye(3, dtype=torch.float64) / p0 + gram / noise)
    assert optimizer.uncertainty == pytest.approx(posterior.trace().item(), rel=1e-6)


def test_one_pass_beats_a_pass_of_sgd_by_orders_of_magnitude():
    x, y = regression()
    least_squares = torch.linalg.lstsq(x, y.unsqueeze(1)).solution.squeeze(1)
    errors = {}
    for name in ("ksgd", "sgd"):
        weights = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        if name == "ksgd":
            one_pass(KSGD([weights], prior_variance=1e6), weights, x, y, batch=10)
        else:
            sgd = torch.optim.SGD([weights], lr=1e-5)  # larger rates diverge on the 100× feature
            for start in range(0, len(x), 10):
                sgd.zero_grad()
                (
                    0.5 * (x[start : start + 10] @ weights - y[start : start + 10]).square().mean()
                ).backward()
                sgd.step()
        errors[name] = (weights.detach() - least_squares).norm().item()
    assert errors["ksgd"] < 1e-3
    assert errors["sgd"] > 1.0


def test_nonlinear_least_squares_converges_in_a_few_passes():
    """Extended filter on y = tanh(a·x + b): three passes recover (a, b) from clean data. The
    linearised filter counts re-visited data as new evidence and P collapses (measured: a = 1.43
    after three passes with q = 0); a little process noise q keeps it learning."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, generator=g, dtype=torch.float64)
    y = torch.tanh(1.5 * x - 0.3)
    theta = torch.tensor([0.5, 0.0], dtype=torch.float64, requires_grad=True)
    optimizer = KSGD([theta], prior_variance=1.0, observation_noise=0.01, process_noise=1e-3)
    for _ in range(3):
        for start in range(0, 200, 20):
            xb, yb = x[start : start + 20], y[start : start + 20]
            optimizer.step(lambda xb=xb, yb=yb: torch.tanh(theta[0] * xb + theta[1]) - yb)
    assert torch.allclose(theta.detach(), torch.tensor([1.5, -0.3], dtype=torch.float64), atol=1e-3)


def test_returns_half_mean_squared_residual_and_keeps_dtype():
    weights = torch.ones(2, requires_grad=True)
    optimizer = KSGD([weights])
    loss = optimizer.step(lambda: weights * torch.tensor([1.0, 2.0]) - torch.tensor([0.0, 1.0]))
    assert loss.item() == pytest.approx(0.5 * (1 + 1) / 2)
    assert weights.dtype == torch.float32
    end = tf.run_trajectory("ksgd", "ill_conditioned_quadratic", 20)[-1]
    assert end.norm() < 1e-3


def test_state_dict_round_trip():
    x, y = regression(40)
    a = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt_a = KSGD([a], process_noise=1e-3)
    one_pass(opt_a, a, x[:20], y[:20], 5)
    b = a.detach().clone().requires_grad_(True)
    opt_b = KSGD([b], process_noise=1e-3)
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))
    one_pass(opt_a, a, x[20:], y[20:], 5)
    one_pass(opt_b, b, x[20:], y[20:], 5)
    assert torch.equal(a, b)


def test_size_limit_and_arguments():
    with pytest.raises(ValueError, match="max_params"):
        KSGD([torch.zeros(50, 50, requires_grad=True)])
    KSGD([torch.zeros(50, 50, requires_grad=True)], max_params=2500)
    p = [torch.zeros(2, requires_grad=True)]
    for kwargs, name in [
        ({"lr": 0.0}, "lr"),
        ({"lr": float("inf")}, "lr"),
        ({"lr": True}, "lr"),
        ({"prior_variance": 0.0}, "prior_variance"),
        ({"observation_noise": -1.0}, "observation_noise"),
        ({"process_noise": -1.0}, "process_noise"),
    ]:
        with pytest.raises(ValueError, match=name):
            KSGD(p, **kwargs)
    optimizer = KSGD(p)
    with pytest.raises(ValueError, match="closure"):
        optimizer.step()
    with pytest.raises(ValueError, match="residual"):
        optimizer.step(lambda: p[0].detach() - 1)


def test_sparse_gradients_are_refused_by_name():
    embedding = torch.nn.Embedding(5, 2, sparse=True).double()
    optimizer = KSGD(embedding.parameters())
    with pytest.raises(RuntimeError, match="KSGD does not support sparse gradients"):
        optimizer.step(lambda: embedding(torch.tensor([0, 3])).reshape(-1) - 1.0)
