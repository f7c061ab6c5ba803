"""vSGD-l (1206.1106): the update equations by hand and the no-tuning claim."""

import copy

import numpy as np
import pytest
import torch

from dlskills.bench import surfaces as tf
from dlskills.optim import vsgd as vsgd_module
from dlskills.optim.vsgd import VSGD


def diagonal_quadratic(h, point):
    def closure():
        point.grad = None
        loss = 0.5 * (h * point * point).sum()
        loss.backward()
        return loss

    return closure


H = torch.tensor([1.0, 4.0, 25.0], dtype=torch.float64)


class AuthorsVSGD:
    """A literal float64 port of py-optim's ``vSGD_original`` (Tom Schaul; algorithms/vsgd.py:
    ``vSGD`` with ``outlier_level = None``; batch_size 1, slow_constant 2, init_samples 10,
    epsilon 1e-9) on a flat parameter vector. ``sample(theta)`` returns one (gradient,
    |diagonal curvature|) pair, as py-optim's provider and ``BbpropHessians`` do."""

    slow_constant, init_samples, epsilon = 2, 10, 1e-9

    def __init__(self, theta, sample):
        self.parameters, self.sample = theta.copy(), sample
        gradients, curvatures = zip(*(sample(self.parameters) for _ in range(self.init_samples)))
        gradients, curvatures = np.array(gradients), np.array(curvatures)
        self._gbar = np.mean(gradients, axis=0)
        self._vbar = (np.mean(gradients**2, axis=0) + self.epsilon) * self.slow_constant
        self._hbar = np.mean(curvatures, axis=0)
        self._taus = (np.ones_like(self.parameters) + self.epsilon) * 2

    def one_step(self):
        gradient, curvature = self.sample(self.parameters)
        fract = 1.0 / self._taus
        self._gbar *= 1.0 - fract
        self._gbar += fract * gradient
        self._vbar *= 1.0 - fract
        self._vbar += fract * gradient**2 + self.epsilon
        self._hbar *= 1.0 - fract
        self._hbar += fract * curvature
        vpart = self._gbar**2 / self._vbar
        self._taus *= 1.0 - vpart
        self._taus += 1 + self.epsilon
        self.parameters -= vpart / (self._hbar + self.epsilon) * gradient


def _run_against_port(monkeypatch, exact_curvature):
    """Stochastic separable quadratics f_k(θ) = ½ Σ a_k (θ − c_k)² (curvature a_k varies per
    sample), sample k at step k, on a (3,) and a (2, 2) tensor; returns the largest relative
    difference between our parameters and the port's over 60 updates after n0 = 10."""
    shapes, size, samples = [(3,), (2, 2)], 7, 10 + 60
    data = torch.Generator().manual_seed(5)
    a = torch.rand(samples, size, generator=data, dtype=torch.float64) * 4 + 0.5
    c = torch.randn(samples, size, generator=data, dtype=torch.float64) + 1.0
    theta0 = torch.randn(size, generator=data, dtype=torch.float64)
    counter, probes = [0], torch.Generator().manual_seed(11)

    def port_sample(theta):
        k = counter[0]
        counter[0] += 1
        a_k, c_k = a[k].numpy(), c[k].numpy()
        gradient = a_k * (theta - c_k)
        if exact_curvature:  # bbprop's diagonal, exact for this separable problem
            return gradient, a_k.copy()
        # our estimator, written out: |v ⊙ (∇f(θ + δv) − ∇f(θ))/δ|, Rademacher v drawn per
        # tensor from the seeded generator, δ = √(float64 eps)·(1 + max|θ|)
        v = np.concatenate(
            [
                (torch.randint(0, 2, s, generator=probes) * 2 - 1).double().reshape(-1).numpy()
                for s in shapes
            ]
        )
        delta = np.finfo(np.float64).eps ** 0.5 * (1.0 + np.abs(theta).max())
        shifted = a_k * ((theta + delta * v) - c_k)
        return gradient, np.abs(v * ((shifted - gradient) / delta))

    port = AuthorsVSGD(theta0.numpy(), port_sample)

    params = [theta0[:3].clone().requires_grad_(), theta0[3:].reshape(2, 2).clone()]
    params[1].requires_grad_()
    current = [0]
    if exact_curvature:

        def exact_sample(closure, params, generator):
            loss = closure()
            grads = [p.grad.detach().clone() for p in params]
            a_k = a[current[0]]
            return loss, grads, [a_k[:3].clone(), a_k[3:].reshape(2, 2).clone()]

        monkeypatch.setattr(vsgd_module, "_sample", exact_sample)
    optimizer = VSGD(params, seed=11)

    def closure():
        for p in params:
            p.grad = None
        with torch.enable_grad():
            flat = torch.cat([p.reshape(-1) for p in params])
            loss = 0.5 * (a[current[0]] * (flat - c[current[0]]) ** 2).sum()
            loss.backward()
        return loss

    for current[0] in range(10):  # the initialisation samples: no move
        optimizer.step(closure)
    assert torch.equal(torch.cat([p.detach().reshape(-1) for p in params]), theta0)
    worst = 0.0
    for current[0] in range(10, samples):
        optimizer.step(closure)
        port.one_step()
        ours = torch.cat([p.detach().reshape(-1) for p in params]).numpy()
        worst = max(worst, np.abs(ours - port.parameters).max() / np.abs(port.parameters).max())
    assert counter[0] == samples
    assert not np.allclose(port.parameters, theta0.numpy(), atol=0.1)  # it moved
    return worst


def test_matches_a_float64_port_of_py_optims_vsgd_original(monkeypatch):
    """The rule, with the exact curvature in both (the estimator is our deviation)."""
    worst = _run_against_port(monkeypatch, exact_curvature=True)
    assert worst < 1e-10, worst


def test_with_our_curvature_estimate_the_port_agrees_to_its_rounding(monkeypatch):
    """The forward difference turns last-bit differences in θ + δv into ~1e-8 relative noise
    in h, so the two runs agree to that level, not to 1e-10."""
    worst = _run_against_port(monkeypatch, exact_curvature=False)
    assert worst < 1e-6, worst


def test_noiseless_single_sample_is_a_diagonal_newton_step():
    """n0 = 1, C = 1, diagonal H: the first call only initialises; the second (same gradient)
    has ḡ² ≈ v̄, so the rate is ≈ 1/h and θ lands on the minimum."""
    point = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    optimizer = VSGD([point], init_samples=1, variance_scale=1.0)
    closure = diagonal_quadratic(H, point)
    optimizer.step(closure)
    assert torch.equal(point.detach(), torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    optimizer.step(closure)
    assert point.detach().abs().max() < 1e-6
    assert torch.allclose(optimizer.state[point]["memory"], torch.ones(3, dtype=torch.float64))


def test_two_updates_by_hand():
    """n0 = 2, C = 2, τ₀ = 2 on a deterministic diagonal quadratic (curvature exact: v_i² = 1),
    ε negligible. Calls 1–2 initialise: ḡ = g0, v̄ = 2g0², τ = 2.
    Call 3 (g = g0): f = ½, ḡ = g0, v̄ = (2g0² + g0²)/2 = 3/2 g0², r = 2/3, τ = 2/3 + 1 = 5/3,
    θ1 = θ0 − (2/3)·g0/h = θ0/3.
    Call 4 (g1 = g0/3): f = 3/5, ḡ = (2/5 + 1/5)g0 = 3/5 g0, v̄ = 3/5 g0² + 1/15 g0² = 2/3 g0²,
    r = (9/25)/(2/3) = 27/50, θ2 = θ1 − (27/50)·θ1 = 23/150 θ0."""
    theta0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    point = theta0.clone().requires_grad_(True)
    optimizer = VSGD([point], init_samples=2, variance_scale=2.0)
    closure = diagonal_quadratic(H, point)
    optimizer.step(closure)
    optimizer.step(closure)
    assert torch.equal(point.detach(), theta0)
    optimizer.step(closure)
    assert torch.allclose(point.detach(), theta0 / 3, rtol=1e-6)
    assert torch.allclose(optimizer.state[point]["memory"], torch.full((3,), 5 / 3).double())
    optimizer.step(closure)
    state = optimizer.state[point]
    assert torch.allclose(state["grad_avg"], 0.6 * H * theta0, rtol=1e-6)
    assert torch.allclose(state["sq_avg"], 2 / 3 * (H * theta0) ** 2, rtol=1e-6)
    assert torch.allclose(point.detach(), 23 / 150 * theta0, rtol=1e-6)


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
        ({"init_memory": 0.5}, "init_memory"),
        ({"eps": 0.0}, "eps"),
        ({"lr": float("inf")}, "lr"),
        ({"lr": True}, "lr"),
    ],
)
def test_invalid_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        VSGD([torch.zeros(1, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError, match="closure"):
        VSGD([torch.zeros(1, requires_grad=True)]).step()


def test_sparse_gradients_and_complex_parameters_are_refused_by_name():
    embedding = torch.nn.Embedding(5, 2, sparse=True).double()
    optimizer = VSGD(embedding.parameters())

    def closure():
        embedding.zero_grad()
        loss = embedding(torch.tensor([0, 3])).square().sum()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="VSGD does not support sparse gradients"):
        optimizer.step(closure)
    with pytest.raises(ValueError, match="VSGD does not support complex"):
        VSGD([torch.zeros(2, dtype=torch.complex64, requires_grad=True)])
