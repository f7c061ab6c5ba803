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


def _reference_run(start, steps, *, workers, lr, alpha, tau, momentum, weight_decay, frozen):
    """The paper's schedule written plainly: per step, each worker in turn is loaded (at its
    look-ahead point), its gradient taken there, its local step made; every τ-th step the
    elastic updates follow, one worker after the other. ``frozen(k, t)``: worker k has no
    gradient for the second tensor at step t."""
    centre = [t.clone() for t in start]
    xs = [[t.clone() for t in start] for _ in range(workers)]
    vs = [[torch.zeros_like(t) for t in start] for _ in range(workers)]
    for step in range(steps):
        for k in range(workers):
            for i, (x, v) in enumerate(zip(xs[k], vs[k])):
                if i == 1 and frozen(k, step):
                    continue
                point = x + momentum * v
                grad = torch.cos(point) + 0.5 + weight_decay * point
                v.copy_(momentum * v - lr * grad)
                x.add_(v)
        if (step + 1) % tau == 0:
            for k in range(workers):
                for x, c in zip(xs[k], centre):
                    diff = alpha * (x - c)
                    x.sub_(diff)
                    c.add_(diff)
    return centre, xs


@pytest.mark.parametrize(
    "workers, tau, momentum, weight_decay",
    [
        (1, 1, 0.0, 0.0),
        (3, 2, 0.0, 1e-2),
        (2, 1, 0.5, 0.0),
        (3, 3, 0.3, 1e-2),
    ],
)
@pytest.mark.parametrize(
    "path",
    [
        {"foreach": False, "fused": False},
        {"foreach": True},
        {"fused": None},
    ],
)
def test_every_path_matches_the_plain_schedule(workers, tau, momentum, weight_decay, path):
    """Against an independent float64 computation, with one tensor large enough for the
    fused kernel's thread split and a tensor some workers leave without a gradient."""
    generator = torch.Generator().manual_seed(3)
    start = [
        torch.randn(70001, generator=generator, dtype=torch.float64),
        torch.randn(5, 3, generator=generator, dtype=torch.float64),
    ]
    params = [t.clone().requires_grad_() for t in start]
    kwargs = dict(
        workers=workers, lr=0.1, alpha=0.3, tau=tau, momentum=momentum, weight_decay=weight_decay
    )
    optimizer = EASGD(params, **kwargs, **path)
    calls = iter(range(10**6))

    def frozen(k, step):
        return (k + step) % 2 == 1

    def closure():
        call = next(calls)
        step, k = divmod(call, workers)
        for i, p in enumerate(params):
            if i == 1 and frozen(k, step):
                p.grad = None
            else:
                p.grad = torch.cos(p.detach()) + 0.5
        return torch.tensor(float(call))

    steps = 7
    for _ in range(steps):
        optimizer.step(closure)
    centre, xs = _reference_run(start, steps, frozen=frozen, **kwargs)
    for p, c in zip(params, centre):
        torch.testing.assert_close(p.detach(), c, rtol=1e-12, atol=1e-12)
    for i, p in enumerate(params):
        expected = torch.stack([xs[k][i] for k in range(workers)])
        torch.testing.assert_close(optimizer.state[p]["workers"], expected, rtol=1e-12, atol=1e-12)
    if not momentum:
        assert not optimizer.state[params[0]]["velocities"].any()


@pytest.mark.parametrize("momentum", [0.0, 0.5])
@pytest.mark.parametrize("path", [{"foreach": False, "fused": False}, {"foreach": True}, {}])
def test_a_failing_closure_leaves_centre_and_workers_in_place(momentum, path):
    """The closure raises at the second worker: the parameters hold the centre again (after
    the first worker's elastic update) and each row its worker, and the step counter stays."""
    param = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    optimizer = EASGD([param], lr=0.1, workers=3, alpha=0.25, momentum=momentum, **path)
    ok = lambda: _set_grad(param)  # noqa: E731
    optimizer.step(ok)
    before = optimizer.state[param]["workers"].clone()
    velocity = optimizer.state[param]["velocities"][0].clone()
    calls = []

    def failing():
        calls.append(param.detach().clone())
        if len(calls) == 2:
            raise KeyboardInterrupt
        return _set_grad(param)

    centre = param.detach().clone()
    with pytest.raises(KeyboardInterrupt):
        optimizer.step(failing)
    workers = optimizer.state[param]["workers"]
    # worker 0 made its step (closure at its look-ahead point) and elastic update; 1 and 2 not
    torch.testing.assert_close(calls[0], before[0] + momentum * velocity)
    velocity = momentum * velocity - 0.1 * (torch.cos(calls[0]) + 0.5)
    torch.testing.assert_close(workers[1:], before[1:], rtol=0, atol=0)
    x0 = before[0] + velocity
    diff = 0.25 * (x0 - centre)
    torch.testing.assert_close(workers[0], x0 - diff)
    torch.testing.assert_close(param.detach(), centre + diff)
    assert int(optimizer.state[param]["step"]) == 1


def test_paths_agree_on_groups_with_different_momentum_and_a_strided_parameter():
    """Two param groups (EASGD and EAMSGD), one parameter non-contiguous (the fused kernel
    refuses it, so the default path splits): every path ends at the same centre and workers."""

    def run(**path):
        generator = torch.Generator().manual_seed(4)
        plain = torch.randn(40000, generator=generator, dtype=torch.float64)
        strided = torch.randn(30, 50, generator=generator, dtype=torch.float64).t()
        nesterov = torch.randn(6, 7, generator=generator, dtype=torch.float64)
        params = [t.requires_grad_() for t in (plain, strided, nesterov)]
        optimizer = EASGD(
            [{"params": params[:2]}, {"params": params[2:], "momentum": 0.6, "lr": 0.02}],
            lr=0.1,
            workers=2,
            tau=2,
            weight_decay=1e-3,
            **path,
        )

        def closure():
            for p in params:
                p.grad = torch.sin(3 * p.detach()) + 0.1
            return torch.tensor(0.0)

        for _ in range(5):
            optimizer.step(closure)
        return [p.detach() for p in params] + [optimizer.state[p]["workers"] for p in params]

    reference = run(foreach=False, fused=False)
    assert not reference[1].is_contiguous()
    for path in ({"foreach": True}, {}):
        for a, b in zip(reference, run(**path)):
            torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)
