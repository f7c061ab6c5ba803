"""EASGD (1412.6651): the elastic update equations and simulated workers on a quadratic."""

import copy

import pytest
import torch

from dlskills.bench import surfaces as tf
from dlskills.optim.easgd import EASGD, elastic_average_, elastic_difference, worker_step_


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


@pytest.mark.parametrize("synchronous", [False, True])
def test_two_steps_by_hand_two_workers(synchronous):
    """Centre 0, two workers with fixed gradients 2 and −4, η = 0.5, α = 0.25, τ = 1. Step 0
    communicates, but every worker still sits at the centre: workers −1 and +2. Step 1: the
    differences are taken at those values, before the local steps."""
    centre = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    gradients = iter([2.0, -4.0] * 2)
    optimizer = EASGD([centre], lr=0.5, workers=2, alpha=0.25, synchronous=synchronous)

    def closure():
        centre.grad = torch.tensor([next(gradients)], dtype=torch.float64)
        return torch.tensor(0.0)

    optimizer.step(closure)
    workers = optimizer.state[centre]["workers"].squeeze(1)
    assert workers.tolist() == [-1.0, 2.0] and centre.item() == 0.0
    optimizer.step(closure)
    workers = optimizer.state[centre]["workers"].squeeze(1).tolist()
    if synchronous:
        # d0 = 0.25·(−1 − 0) = −0.25, d1 = 0.25·(2 − 0) = 0.5; centre 0 + d0 + d1
        # w0 = −1 + 0.25 − 0.5·2 = −1.75, w1 = 2 − 0.5 + 0.5·4 = 3.5
        assert workers == pytest.approx([-1.75, 3.5])
        assert centre.item() == pytest.approx(0.25)
    else:
        # worker 0: d = −0.25 → centre −0.25, w0 = −1 + 0.25 − 1 = −1.75
        # worker 1: d = 0.25·(2 + 0.25) = 0.5625 → centre 0.3125, w1 = 2 − 0.5625 + 2 = 3.4375
        assert workers == pytest.approx([-1.75, 3.4375])
        assert centre.item() == pytest.approx(0.3125)


def test_tau_delays_communication():
    """τ = 3: steps 0 and 3 communicate. At step 0 the workers still sit at the centre, so the
    centre first moves at step 3 (the fourth call), towards the workers."""
    centre = torch.ones(1, requires_grad=True)
    optimizer = EASGD([centre], lr=0.1, workers=2, tau=3)

    def closure():
        centre.grad = torch.ones(1)
        return torch.tensor(0.0)

    for _ in range(3):
        optimizer.step(closure)
        assert centre.item() == 1.0  # no difference exchanged yet
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


@pytest.mark.parametrize("synchronous", [False, True])
def test_state_dict_round_trip_and_foreach_equivalence(synchronous):
    def run(optimizer, param, steps):
        for _ in range(steps):
            optimizer.step(lambda: _set_grad(param))

    kwargs = dict(lr=0.1, workers=3, tau=2, momentum=0.3, synchronous=synchronous)
    results = []
    for foreach in (False, True):
        a = torch.ones(3, requires_grad=True)
        opt_a = EASGD([a], **kwargs, foreach=foreach)
        run(opt_a, a, 5)
        b = a.detach().clone().requires_grad_(True)
        opt_b = EASGD([b], **kwargs, foreach=foreach)
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
        ({"synchronous": 1}, "synchronous"),
    ],
)
def test_invalid_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        EASGD([torch.zeros(1, requires_grad=True)], **kwargs)


def test_step_needs_a_closure():
    with pytest.raises(ValueError, match="closure"):
        EASGD([torch.zeros(1, requires_grad=True)]).step()


# ---- literal ports of the paper's rules (1412.6651), float64, written apart from the library.
# ``grad(k, t, j, point)`` is worker k's gradient of tensor j at step t (without weight decay);
# ``frozen(k, t, j)``: worker k has no gradient for tensor j at step t (no local step for it).


def _port_algorithms_1_2(centre, xs, vs, steps, *, tau, lr, alpha, delta, wd, grad, frozen):
    """Algorithm 1 (δ = 0) / Algorithm 2 (δ > 0), the workers taking turns in the order
    1 … K within each step; every worker's clock tⁱ equals the step t."""
    c = [a.clone() for a in centre]
    xs = [[a.clone() for a in x] for x in xs]
    vs = [[a.clone() for a in v] for v in vs]
    for t in range(steps):
        for i in range(len(xs)):
            x = [a.clone() for a in xs[i]]  # x ← xⁱ
            if t % tau == 0:  # τ divides tⁱ
                for j in range(len(c)):
                    xs[i][j] = xs[i][j] - alpha * (x[j] - c[j])
                    c[j] = c[j] + alpha * (x[j] - c[j])
            for j in range(len(c)):
                if frozen(i, t, j):
                    continue
                if delta:
                    point = x[j] + delta * vs[i][j]
                    vs[i][j] = delta * vs[i][j] - lr * (grad(i, t, j, point) + wd * point)
                    xs[i][j] = xs[i][j] + vs[i][j]
                else:
                    xs[i][j] = xs[i][j] - lr * (grad(i, t, j, x[j]) + wd * x[j])
    return c, xs


def _port_equations_5_6(centre, xs, vs, steps, *, tau, lr, alpha, delta, wd, grad, frozen):
    """Eqs. 5–6 with period τ: every worker against x̃_t, x̃ moved by the sum; with δ > 0 the
    EAMSGD velocity step in place of the plain gradient step."""
    c = [a.clone() for a in centre]
    xs = [[a.clone() for a in x] for x in xs]
    vs = [[a.clone() for a in v] for v in vs]
    for t in range(steps):
        talk = t % tau == 0
        new_xs = []
        for i in range(len(xs)):
            new = []
            for j in range(len(c)):
                x = xs[i][j]
                elastic = alpha * (x - c[j]) if talk else torch.zeros_like(x)
                if frozen(i, t, j):
                    new.append(x - elastic)
                elif delta:
                    point = x + delta * vs[i][j]
                    vs[i][j] = delta * vs[i][j] - lr * (grad(i, t, j, point) + wd * point)
                    new.append(x + vs[i][j] - elastic)
                else:
                    new.append(x - lr * (grad(i, t, j, x) + wd * x) - elastic)
            new_xs.append(new)
        if talk:
            c = [c[j] + alpha * sum(xs[i][j] - c[j] for i in range(len(xs))) for j in range(len(c))]
        xs = new_xs
    return c, xs


def _port(synchronous, *args, **kwargs):
    port = _port_equations_5_6 if synchronous else _port_algorithms_1_2
    return port(*args, **kwargs)


def _grad(k, t, j, point):
    return torch.cos(point * (1.0 + 0.1 * k)) + 0.3 * k - 0.05 * t + 0.1 * j


def _never(k, t, j):
    return False


def _closure(params, workers, frozen=_never):
    """Calls the optimizer's closure makes: call number → (step, worker); sets each tensor's
    gradient at the point the parameters hold."""
    calls = iter(range(10**6))

    def closure():
        call = next(calls)
        t, k = divmod(call, workers)
        for j, p in enumerate(params):
            p.grad = None if frozen(k, t, j) else _grad(k, t, j, p.detach())
        return torch.tensor(float(call))

    return closure


def _load_workers(optimizer, workers, velocities):
    """Start the workers (and velocities) elsewhere than the centre, through the public
    state_dict: step 0 then has differences to exchange."""
    state = optimizer.state_dict()
    state["state"] = {
        j: {
            "step": torch.tensor(0.0),
            "workers": torch.stack([w[j] for w in workers]),
            "velocities": torch.stack([v[j] for v in velocities]),
        }
        for j in range(len(workers[0]))
    }
    optimizer.load_state_dict(state)


PATHS = {
    "for-loop": {"foreach": False, "fused": False},
    "foreach": {"foreach": True},
    "fused": {"fused": True},
}


@pytest.mark.parametrize("synchronous", [False, True], ids=["async", "sync"])
@pytest.mark.parametrize("delta", [0.0, 0.5])
@pytest.mark.parametrize("tau", [1, 2, 3])
@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("path", PATHS)
def test_every_path_matches_the_literal_port(path, workers, tau, delta, synchronous):
    """Workers and velocities start apart from the centre, so t = 0 exchanges; 7 steps cover
    three communication rounds at τ = 3."""
    generator = torch.Generator().manual_seed(workers * 10 + tau)

    def draw():
        return [torch.randn(s, generator=generator, dtype=torch.float64) for s in ((9,), (2, 3))]

    centre, xs, vs = draw(), [draw() for _ in range(workers)], [draw() for _ in range(workers)]
    if not delta:
        vs = [[torch.zeros_like(a) for a in v] for v in vs]
    hyper = dict(lr=0.1, alpha=0.3, tau=tau, wd=1e-2)
    params = [a.clone().requires_grad_() for a in centre]
    optimizer = EASGD(
        params,
        lr=hyper["lr"],
        workers=workers,
        alpha=hyper["alpha"],
        tau=tau,
        momentum=delta,
        weight_decay=hyper["wd"],
        synchronous=synchronous,
        **PATHS[path],
    )
    _load_workers(optimizer, xs, vs)
    closure = _closure(params, workers)
    steps = 7
    for _ in range(steps):
        optimizer.step(closure)
    c, port_xs = _port(
        synchronous, centre, xs, vs, steps, delta=delta, grad=_grad, frozen=_never, **hyper
    )
    for j, p in enumerate(params):
        torch.testing.assert_close(p.detach(), c[j], rtol=1e-12, atol=1e-12)
        expected = torch.stack([port_xs[k][j] for k in range(workers)])
        torch.testing.assert_close(optimizer.state[p]["workers"], expected, rtol=1e-12, atol=1e-12)
    assert int(optimizer.state[params[0]]["step"]) == steps


@pytest.mark.parametrize("synchronous", [False, True], ids=["async", "sync"])
@pytest.mark.parametrize(
    "workers, tau, momentum, weight_decay",
    [(1, 1, 0.0, 0.0), (3, 2, 0.0, 1e-2), (2, 1, 0.5, 0.0), (3, 3, 0.3, 1e-2)],
)
@pytest.mark.parametrize("path", [*PATHS, "default"])
def test_large_and_gradientless_tensors_match_the_port(
    path, workers, tau, momentum, weight_decay, synchronous
):
    """The workers start at the centre (the optimizer's own start); one tensor large enough
    for the fused kernel's thread split, one that some workers leave without a gradient."""
    generator = torch.Generator().manual_seed(3)
    start = [
        torch.randn(70001, generator=generator, dtype=torch.float64),
        torch.randn(5, 3, generator=generator, dtype=torch.float64),
    ]
    params = [t.clone().requires_grad_() for t in start]

    def frozen(k, t, j):
        return j == 1 and (k + t) % 2 == 1

    optimizer = EASGD(
        params,
        lr=0.1,
        workers=workers,
        alpha=0.3,
        tau=tau,
        momentum=momentum,
        weight_decay=weight_decay,
        synchronous=synchronous,
        **PATHS.get(path, {}),
    )
    closure = _closure(params, workers, frozen)
    steps = 7
    for _ in range(steps):
        optimizer.step(closure)
    zeros = [[torch.zeros_like(t) for t in start] for _ in range(workers)]
    centre, xs = _port(
        synchronous,
        start,
        [start] * workers,
        zeros,
        steps,
        tau=tau,
        lr=0.1,
        alpha=0.3,
        delta=momentum,
        wd=weight_decay,
        grad=_grad,
        frozen=frozen,
    )
    for p, c in zip(params, centre):
        torch.testing.assert_close(p.detach(), c, rtol=1e-12, atol=1e-12)
    for j, p in enumerate(params):
        expected = torch.stack([xs[k][j] for k in range(workers)])
        torch.testing.assert_close(optimizer.state[p]["workers"], expected, rtol=1e-12, atol=1e-12)
    if not momentum:
        assert not optimizer.state[params[0]]["velocities"].any()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("momentum", [0.0, 0.5])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
@pytest.mark.parametrize("exchanged", [False, True])
def test_worker_step_matches_the_rule(path, momentum, weight_decay, exchanged):
    """``worker_step_`` (what a distributed worker runs after its exchange) against the update
    written out: g ← g + λθ, x ← x − d, v ← δv − ηg, x ← x + v, θ ← x + δv (δ = 0: θ = x)."""
    generator = torch.Generator().manual_seed(5)

    def draw():
        return [torch.randn(s, generator=generator, dtype=torch.float64) for s in ((40000,), (3,))]

    x, v, g, d = draw(), draw(), draw(), draw()
    theta = [a + momentum * b for a, b in zip(x, v)]  # x itself when δ = 0
    params, xs, vs = [a.clone() for a in theta], [a.clone() for a in x], [a.clone() for a in v]
    worker_step_(
        params,
        g,
        xs if momentum else [],
        vs if momentum else [],
        d if exchanged else None,
        lr=0.1,
        momentum=momentum,
        weight_decay=weight_decay,
        **PATHS[path],
    )
    for j in range(2):
        grad = g[j] + weight_decay * theta[j]
        new_x = x[j] - (d[j] if exchanged else 0)
        if momentum:
            new_v = momentum * v[j] - 0.1 * grad
            new_x = new_x + new_v
            torch.testing.assert_close(vs[j], new_v, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(xs[j], new_x, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(params[j], new_x + momentum * new_v, rtol=1e-12, atol=1e-12)
        else:
            torch.testing.assert_close(params[j], new_x - 0.1 * grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("delta", [0.0, 0.5])
def test_one_worker_built_from_the_shared_pieces_matches_algorithm_2(delta):
    """A worker as dlskills.distributed runs it (θ holds the look-ahead point, the exchange
    returns d = α(x − x̃) and moves x̃, then ``worker_step_``) equals the port with K = 1."""
    generator = torch.Generator().manual_seed(6)
    centre = [torch.randn(7, generator=generator, dtype=torch.float64)]
    x = [torch.randn(7, generator=generator, dtype=torch.float64)]
    v = [torch.randn(7, generator=generator, dtype=torch.float64) * (delta != 0)]
    c, xs, vs = [centre[0].clone()], [x[0].clone()], [v[0].clone()]
    theta = [x[0] + delta * v[0]]
    for t in range(6):
        grads = [_grad(0, t, 0, theta[0])]
        diffs = None
        if t % 2 == 0:
            diffs = elastic_difference(xs if delta else theta, c, 0.3)
            torch._foreach_add_(c, diffs)
        worker_step_(theta, grads, xs, vs, diffs, lr=0.1, momentum=delta, weight_decay=1e-2)
    port_c, port_xs = _port_algorithms_1_2(
        centre,
        [x],
        [v],
        6,
        tau=2,
        lr=0.1,
        alpha=0.3,
        delta=delta,
        wd=1e-2,
        grad=_grad,
        frozen=_never,
    )
    torch.testing.assert_close(c[0], port_c[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(xs[0] if delta else theta[0], port_xs[0][0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("synchronous", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
@pytest.mark.parametrize("path", [{"foreach": False, "fused": False}, {"foreach": True}, {}])
def test_a_failing_closure_leaves_centre_and_workers_in_place(momentum, path, synchronous):
    """The closure raises at the second worker of a communication step: the parameters hold
    the centre again (with the first worker's difference, in both modes) and each row its
    worker, and the step counter stays."""
    param = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    optimizer = EASGD(
        [param],
        lr=0.1,
        workers=3,
        alpha=0.25,
        momentum=momentum,
        synchronous=synchronous,
        **path,
    )
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
    # worker 0 exchanged (at its value before the step) and stepped (gradient at its
    # look-ahead point); 1 and 2 did nothing
    torch.testing.assert_close(calls[0], before[0] + momentum * velocity)
    velocity = momentum * velocity - 0.1 * (torch.cos(calls[0]) + 0.5)
    torch.testing.assert_close(workers[1:], before[1:], rtol=0, atol=0)
    diff = 0.25 * (before[0] - centre)
    torch.testing.assert_close(workers[0], before[0] - diff + velocity)
    torch.testing.assert_close(param.detach(), centre + diff)
    assert int(optimizer.state[param]["step"]) == 1


@pytest.mark.parametrize("synchronous", [False, True])
def test_paths_agree_on_groups_with_different_momentum_and_a_strided_parameter(synchronous):
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
            synchronous=synchronous,
            **path,
        )
        closure = _closure(params, 2)
        for _ in range(5):
            optimizer.step(closure)
        return [p.detach() for p in params] + [optimizer.state[p]["workers"] for p in params]

    reference = run(foreach=False, fused=False)
    assert not reference[1].is_contiguous()
    for path in ({"foreach": True}, {}):
        for a, b in zip(reference, run(**path)):
            torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)


def test_a_zero_learning_rate_from_a_warm_up_is_accepted_and_moves_nothing():
    # a linear warm-up's first step has lr 0 (torch.optim accepts lr >= 0): workers that start
    # at the centre take no gradient step, so no elastic force arises and nothing moves
    start = torch.tensor([0.3, -1.2])
    centre = start.clone().requires_grad_(True)
    optimizer = EASGD([centre], lr=0.0, workers=2, alpha=0.25, tau=1)
    for _ in range(3):
        optimizer.step(lambda: _set_grad(centre))
    assert torch.equal(centre.detach(), start)
