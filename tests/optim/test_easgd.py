"""EASGD (1412.6651): the elastic update equations and simulated workers on a quadratic."""

import copy

import pytest
import torch

from dlskills.optim import test_functions as tf
from dlskills.optim.easgd import EASGD, elastic_average_


@pytest.mark.parametrize("foreach", [False, True])
def test_elastic_update_numbers(foreach):
    workers = [torch.tensor([1.0, 2.0]), torch.tensor([[4.0]])]
    centres = [torch.tensor([0.0, 0.0]), torch.tensor([[0.0]])]
    elastic_average_(workers, centres, 0.25, foreach=foreach)
    # diff = 0.25·(w − c) = (0.25, 0.5) and 1.0
    assert torch.equal(workers[0], torch.tensor([0.75, 1.5]))
    assert torch.equal(centres[0], torch.tensor([0.25, 0.5]))
    assert torch.equal(workers[1], torch.tensor([[3.0]]))
    assert torch.equal(centres[1], torch.tensor([[1.0]]))


def test_elastic_update_conserves_the_sum_and_validates():
    worker, centre = torch.randn(5), torch.randn(5)
    total = worker + centre
    elastic_average_([worker], [centre], 0.5)
    assert torch.allclose(worker + centre, total)
    assert torch.allclose(worker, centre)  # α = 1/2 meets in the middle
    with pytest.raises(ValueError, match="alpha"):
        elastic_average_([worker], [centre], 1.5)
    with pytest.raises(ValueError, match="lengths"):
        elastic_average_([worker], [], 0.5)


def test_one_step_by_hand_two_workers():
    """Centre 0, two workers with different (fixed) gradients: after one step with τ = 1 the
    workers are x_k = −η·g_k, then the elastic updates run one worker after the other."""
    centre = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    gradients = iter([2.0, -4.0])
    optimizer = EASGD([centre], lr=0.5, workers=2, alpha=0.25)

    def closure():
        centre.grad = torch.tensor([next(gradients)], dtype=torch.float64)
        return torch.tensor(0.0)

    optimizer.step(closure)
    # workers −1 and +2; worker 0: diff = 0.25·(−1 − 0) = −0.25 → w0 = −0.75, c = −0.25
    # worker 1: diff = 0.25·(2 + 0.25) = 0.5625 → w1 = 1.4375, c = 0.3125
    workers = optimizer.state[centre]["workers"].squeeze(1)
    assert torch.allclose(workers, torch.tensor([-0.75, 1.4375], dtype=torch.float64))
    assert centre.item() == pytest.approx(0.3125)


def test_tau_delays_communication():
    centre = torch.ones(1, requires_grad=True)
    optimizer = EASGD([centre], lr=0.1, workers=2, tau=3)

    def closure():
        centre.grad = torch.ones(1)
        return torch.tensor(0.0)

    for _ in range(2):
        optimizer.step(closure)
        assert centre.item() == 1.0  # no communication yet
    optimizer.step(closure)
    assert centre.item() < 1.0


def test_centre_converges_and_averages_out_the_noise():
    """Four workers on the noisy quadratic (each closure call draws fresh noise): the centre
    reaches the minimum's neighbourhood and fluctuates less than the workers do."""
    function = tf.noisy_quadratic(noise=0.5, seed=1)
    point = torch.tensor(function.start, dtype=torch.float64, requires_grad=True)
    optimizer = EASGD([point], lr=0.05, workers=4)
    closure = tf.closure_for(function, point, "backward")
    centre_sq, worker_sq = [], []
    for step in range(800):
        optimizer.step(closure)
        if step >= 400:
            centre_sq.append(point.detach().square().sum())
            worker_sq.append(optimizer.state[point]["workers"].square().sum(-1).mean())
    centre_msd = torch.stack(centre_sq).mean().item()
    worker_msd = torch.stack(worker_sq).mean().item()
    start_sq = sum(c * c for c in function.start)
    assert centre_msd < 1e-2 * start_sq
    assert centre_msd < 0.7 * worker_msd


def test_deterministic_quadratic_converges_with_momentum():
    path = tf.run_trajectory("eamsgd", "ill_conditioned_quadratic", 400, lr=0.05, momentum=0.5)
    assert path[-1].norm() < 1e-8


def test_state_dict_round_trip_and_foreach_equivalence():
    def run(optimizer, param, steps):
        for _ in range(steps):
            optimizer.step(lambda: _set_grad(param))

    results = []
    for foreach in (False, True):
        a = torch.ones(3, requires_grad=True)
        opt_a = EASGD([a], lr=0.1, workers=3, tau=2, momentum=0.3, foreach=foreach)
        run(opt_a, a, 5)
        b = a.detach().clone().requires_grad_(True)
        opt_b = EASGD([b], lr=0.1, workers=3, tau=2, momentum=0.3, foreach=foreach)
        opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))
        run(opt_a, a, 5)
        run(opt_b, b, 5)
        assert torch.equal(a, b)
        results.append(a.detach().clone())
    assert torch.equal(*results)


def _set_grad(param):
    param.grad = torch.cos(param.detach()) + 0.5
    return torch.tensor(0.0)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"lr": -1.0}, "lr"),
        ({"workers": 0}, "workers"),
        ({"tau": 0}, "tau"),
        ({"alpha": 2.0}, "alpha"),
        ({"momentum": 1.0}, "momentum"),
    ],
)
def test_invalid_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        EASGD([torch.zeros(1, requires_grad=True)], **kwargs)


def test_step_needs_a_closure():
    with pytest.raises(ValueError, match="closure"):
        EASGD([torch.zeros(1, requires_grad=True)]).step()
