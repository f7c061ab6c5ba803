"""YellowFin (1706.03471): step for step against a float64 port of the authors' PyTorch code,
the closed-form cubic, the tuner equations, the guards."""

import copy
import math

import numpy as np
import pytest
import torch

from dlskills.bench import surfaces as tf
from dlskills.optim import create
from dlskills.optim.yellowfin import YellowFin, cubic_root, tune

EPS = 1e-6


class AuthorsYellowFin:
    """A literal float64 port of ``YFOptimizer.step`` (JianGoForIt/YellowFin_Pytorch,
    tuner_utils/yellowfin.py) with its defaults: zero_debias, log-smoothed h_min/h_max,
    adapt_clip, no sparsity debias, no manual/auto clip threshold, force_non_inc_step off. It wraps
    torch's SGD and clips with torch's clip_grad_norm_ in place, as the authors do; the only
    changes are float64 throughout (their window and variance are float32) and
    ``smoothed=True``, which hands the smoothed lr/mu to the SGD (the switch their TensorFlow
    code calls ``use_unsmoothed_lr_mu=False``). Counters record which guards fired."""

    def __init__(self, params, lr, mu, weight_decay=0.0, lr_factor=1.0, smoothed=False):
        self.params = list(params)
        self.sgd = torch.optim.SGD(self.params, lr=lr, momentum=mu, weight_decay=weight_decay)
        self.lr, self.mu, self.lr_t, self.mu_t = lr, mu, lr, mu
        self.beta, self.width, self.lr_factor, self.smoothed = 0.999, 20, lr_factor, smoothed
        self.stat_protect_fac, self.catastrophic_move_thresh = 100.0, 100.0
        self.iter = 0
        self.exploding = False
        self.h_min = self.h_max = 0.0
        self.fired = {"stat_protect": 0, "exploding": 0, "catastrophic": 0}

    def _clip(self, max_norm, name):
        norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)
        if max_norm / (float(norm) + 1e-6) < 1:
            self.fired[name] += 1

    def step(self):
        beta, it = self.beta, self.iter
        if it > 1:
            self._clip(math.sqrt(self.stat_protect_fac * self.h_max) + EPS, "stat_protect")
        # before_apply
        if it == 0:
            self.gns_avg = 0.0
        gns = sum(float(torch.sum(p.grad * p.grad)) for p in self.params)
        if it >= 1:
            self.exploding = gns >= self.h_max
            target = math.sqrt(self.h_max)
        self.gns_avg = self.gns_avg * beta + (1 - beta) * gns
        debias = 1.0 - beta ** (it + 1)
        # curvature_range
        if it == 0:
            self.window = np.zeros(self.width)
            self.h_min_avg = self.h_max_avg = 0.0
        self.window[it % self.width] = gns
        valid = self.window[: min(self.width, it + 1)]
        self.h_min_avg = self.h_min_avg * beta + (1 - beta) * np.min(np.log(valid + EPS))
        self.h_max_avg = self.h_max_avg * beta + (1 - beta) * np.max(np.log(valid + EPS))
        self.h_min = float(np.exp(self.h_min_avg / debias))
        self.h_max = float(np.exp(self.h_max_avg / debias))
        # grad_variance
        if it == 0:
            self.grad_avg = [torch.zeros_like(p) for p in self.params]
        var = 0.0
        for avg, p in zip(self.grad_avg, self.params):
            avg.mul_(beta).add_(p.grad, alpha=1 - beta)
            var += float(torch.sum(avg * avg))
        var /= -(debias**2)
        var += self.gns_avg / debias
        var = max(var, EPS)
        # dist_to_opt
        if it == 0:
            self.grad_norm_avg = self.dist_avg = 0.0
        self.grad_norm_avg = self.grad_norm_avg * beta + (1 - beta) * math.sqrt(gns)
        self.dist_avg = self.dist_avg * beta + (1 - beta) * self.grad_norm_avg / (
            self.gns_avg + EPS
        )
        dist = self.dist_avg / debias
        if it > 0:
            # get_mu (get_cubic_root), get_lr, then the smoothing
            p = (dist + EPS) ** 2 * (self.h_min + EPS) ** 2 / 2 / (var + EPS)
            w3 = (-math.sqrt(p**2 + 4.0 / 27.0 * p**3) - p) / 2.0
            w = math.copysign(1.0, w3) * math.pow(math.fabs(w3), 1.0 / 3.0)
            x = w - p / 3.0 / (w + EPS) + 1
            dr = max((self.h_max + EPS) / (self.h_min + EPS), 1.0 + EPS)
            self.mu_t = max(x**2, ((np.sqrt(dr) - 1) / (np.sqrt(dr) + 1)) ** 2)
            self.lr_t = (1.0 - math.sqrt(self.mu_t)) ** 2 / (self.h_min + EPS)
            self.lr_t = min(self.lr_t, self.lr_t * (it + 1) / float(10.0 * self.width))
            self.lr = beta * self.lr + (1 - beta) * self.lr_t
            self.mu = beta * self.mu + (1 - beta) * self.mu_t
        # update_hyper_param
        for group in self.sgd.param_groups:
            group["momentum"] = self.mu if self.smoothed else self.mu_t
            group["lr"] = (self.lr if self.smoothed else self.lr_t) * self.lr_factor
            if group["lr"] * math.sqrt(gns) >= self.catastrophic_move_thresh:
                group["lr"] = self.catastrophic_move_thresh / math.sqrt(gns + EPS)
                self.fired["catastrophic"] += 1
        if self.exploding:
            self._clip(target + EPS, "exploding")
        self.sgd.step()
        self.iter += 1


def _problem():
    """Minibatch least squares on 2 tensors (5×3 weight, 3 bias), with gradient spikes."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, generator=generator, dtype=torch.float64)
    y = x @ torch.randn(5, 3, generator=generator, dtype=torch.float64) + 0.3 * torch.randn(
        64, 3, generator=generator, dtype=torch.float64
    )
    start = [
        torch.randn(5, 3, generator=generator, dtype=torch.float64),
        torch.randn(3, generator=generator, dtype=torch.float64),
    ]
    batches = torch.randint(0, 64, (400, 8), generator=torch.Generator().manual_seed(1))
    spikes = {0: 50.0, 40: 30.0, 41: 30.0, 90: 1e3, 150: 0.01}

    def set_gradients(params, step):
        for p in params:
            p.grad = None
        index = batches[step]
        loss = 0.5 * (x[index] @ params[0] + params[1] - y[index]).square().mean()
        (loss * spikes.get(step, 1.0)).backward()

    return start, set_gradients


@pytest.mark.parametrize(
    "options",
    [
        {"lr": 10.0, "momentum": 0.0},  # the first step hits the lr·‖g‖ clamp
        {"lr": 1e-4, "momentum": 0.5, "weight_decay": 1e-2},  # b starts at the first step
        {"lr": 0.3, "momentum": 0.0, "lr_factor": 0.7},
        {"lr": 1.0, "momentum": 0.0, "smoothed": True},
        {"lr": 0.1, "momentum": 0.2, "smoothed": True, "weight_decay": 1e-3},
    ],
)
@pytest.mark.parametrize("foreach", [False, True])
def test_matches_a_float64_port_of_the_authors_code_step_for_step(options, foreach):
    steps = 300
    start, set_gradients = _problem()
    theirs = [p.clone().requires_grad_() for p in start]
    ours = [p.clone().requires_grad_() for p in start]
    port = AuthorsYellowFin(
        theirs,
        lr=options["lr"],
        mu=options["momentum"],
        weight_decay=options.get("weight_decay", 0.0),
        lr_factor=options.get("lr_factor", 1.0),
        smoothed=options.get("smoothed", False),
    )
    optimizer = YellowFin(ours, foreach=foreach, **options)
    worst_param = worst_lr = worst_mu = 0.0
    for step in range(steps):
        set_gradients(theirs, step)
        set_gradients(ours, step)
        port.step()
        optimizer.step()
        group, reference = optimizer.param_groups[0], port.sgd.param_groups[0]
        worst_lr = max(worst_lr, abs(group["lr"] - reference["lr"]) / reference["lr"])
        worst_mu = max(worst_mu, abs(group["momentum"] - reference["momentum"]))
        for a, b in zip(ours, theirs):
            scale = float(b.detach().abs().max())
            worst_param = max(worst_param, float((a - b).detach().abs().max()) / scale)
    assert worst_param < 1e-10, worst_param
    assert worst_lr < 1e-10, worst_lr
    assert worst_mu < 1e-12, worst_mu
    if options["lr"] == 10.0:  # every guard of the authors' code took part in this run
        assert all(count > 0 for count in port.fired.values()), port.fired


def test_default_applies_this_steps_tuned_values_not_the_smoothed_ones():
    """The authors' code: from the second step on, the SGD runs at μ_t and lr_t (the smoothed
    values would stay ≈ the initial ones for ~1/(1 − β) = 1000 steps)."""
    start, set_gradients = _problem()
    params = [p.clone().requires_grad_() for p in start]
    optimizer = YellowFin(params, lr=1e-4)
    for step in range(60):
        set_gradients(params, step)
        optimizer.step()
    tuner = optimizer.state[params[0]]
    assert optimizer.param_groups[0]["lr"] == pytest.approx(tuner["lr_t"], rel=1e-15)
    assert optimizer.param_groups[0]["momentum"] == tuner["momentum_t"]
    assert abs(math.log(tuner["lr_t"] / tuner["tuned_lr"])) > math.log(5.0)


def test_first_step_is_plain_sgd_at_the_initial_lr():
    param = torch.ones(2, dtype=torch.float64, requires_grad=True)
    optimizer = YellowFin([param], lr=0.5, curvature_window=20)
    param.grad = torch.tensor([1.0, -2.0], dtype=torch.float64)
    optimizer.step()
    torch.testing.assert_close(param.detach(), torch.tensor([0.5, 2.0], dtype=torch.float64))
    assert "momentum_buffer" not in optimizer.state[param]  # μ = 0: torch's SGD keeps none


def test_second_step_uses_the_tuner_on_two_gradients():
    """β = 0 (no averaging, c_t = 1), W = 2, by hand: after g₀ = (3, 0), g₁ = (0, 1),
    N = 1, window {9, 1}: h_min = 1 + ε, h_max = 9 + ε, ḡ = g₁ so C = max(1 − 1, ε) = ε,
    D = ‖g₁‖/(N + ε); μ_t, lr_t = tune(...), slow start (t + 1)/(10W) = 2/20."""
    param = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    optimizer = YellowFin([param], lr=0.1, beta=0.0, curvature_window=2)
    param.grad = torch.tensor([3.0, 0.0], dtype=torch.float64)
    optimizer.step()
    after_first = param.detach().clone()
    param.grad = torch.tensor([0.0, 1.0], dtype=torch.float64)
    optimizer.step()
    h_min, h_max = 1 + EPS, 9 + EPS
    distance = 1 / (1 + EPS)
    p = (distance + EPS) ** 2 * (h_min + EPS) ** 2 / 2 / (EPS + EPS)
    w3 = (-math.sqrt(p * p + 4 / 27 * p**3) - p) / 2
    w = -((-w3) ** (1 / 3))
    x = w - p / 3 / (w + EPS) + 1
    ratio = (h_max + EPS) / (h_min + EPS)
    mu = max(x * x, ((math.sqrt(ratio) - 1) / (math.sqrt(ratio) + 1)) ** 2)
    lr = (1 - math.sqrt(mu)) ** 2 / (h_min + EPS) * 2 / 20
    assert optimizer.param_groups[0]["momentum"] == pytest.approx(mu, rel=1e-12)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(lr, rel=1e-12)
    # b starts at this step's gradient (μ was 0 before), θ ← θ − lr·g
    expected = after_first - lr * torch.tensor([0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(param.detach(), expected, rtol=1e-12, atol=1e-15)


def test_weight_decay_stays_out_of_the_statistics():
    runs = []
    for weight_decay in (0.0, 0.5):
        param = torch.ones(3, dtype=torch.float64, requires_grad=True)
        optimizer = YellowFin([param], lr=0.01, weight_decay=weight_decay)
        for step in range(5):
            param.grad = torch.full((3,), 1.0 + step, dtype=torch.float64)
            optimizer.step()
        runs.append(optimizer.state[param])
    for key in ("grad_norm_squared_avg", "h_min", "h_max", "distance", "lr_t", "momentum_t"):
        assert runs[0][key] == runs[1][key], key


def test_exploding_gradient_is_clipped_to_sqrt_h_max_in_the_update_only():
    """β = 0, window 1: h_max = ‖g_{t−1}‖² + ε. At t = 1 (before the statistics clip starts)
    a gradient of norm 100 after one of norm 1 is applied with norm √h_max + ε (to
    clip_grad_norm_'s 1e-6), while the statistics see the full gradient."""
    param = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = YellowFin([param], lr=1e-3, beta=0.0, curvature_window=1, max_move=1e9)
    param.grad = torch.tensor([1.0], dtype=torch.float64)
    optimizer.step()
    before = param.item()
    param.grad = torch.tensor([100.0], dtype=torch.float64)
    optimizer.step()
    lr = optimizer.param_groups[0]["lr"]
    clipped = 100.0 * (math.sqrt(1 + EPS) + EPS) / (100.0 + 1e-6)
    assert param.item() == pytest.approx(before - lr * clipped, rel=1e-12)
    assert optimizer.state[param]["grad_norm_squared_avg"] == pytest.approx(1e4)


def test_statistics_are_protected_from_the_third_step_on():
    param = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = YellowFin([param], lr=1e-3, beta=0.0, curvature_window=1)
    for value in (1.0, 1.0, 1e6):
        param.grad = torch.tensor([value], dtype=torch.float64)
        optimizer.step()
    # h_max after two unit gradients is 1 + ε: the third gradient enters as √(100(1 + ε)) + ε
    protected = 1e6 * (math.sqrt(100 * (1 + EPS)) + EPS) / (1e6 + 1e-6)
    assert optimizer.state[param]["grad_norm_squared_avg"] == pytest.approx(protected**2)


def test_large_moves_are_clamped():
    param = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    optimizer = YellowFin([param], lr=5.0, max_move=1.0)
    param.grad = torch.tensor([3.0, 4.0], dtype=torch.float64)  # lr·‖g‖ = 25 ≥ 1
    optimizer.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1 / math.sqrt(25 + EPS))
    assert float(param.detach().norm()) == pytest.approx(5 / math.sqrt(25 + EPS))


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
    mu, lr = tune(h_min, h_max, variance=0.0, distance=1.0, eps=1e-12)
    kappa = h_max / h_min
    assert mu == pytest.approx(((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2)
    assert lr == pytest.approx(4 / (math.sqrt(h_max) + math.sqrt(h_min)) ** 2)


def test_noisy_regime_uses_the_cubic_root():
    mu, lr = tune(h_min=1.0, h_max=1.0, variance=10.0, distance=1.0, eps=0.0)
    x = cubic_root(1.0 / 20.0)
    assert mu == pytest.approx(x * x)
    assert lr == pytest.approx((1 - x) ** 2)


def test_non_finite_gradient_skips_the_step():
    param = torch.ones(2, requires_grad=True)
    optimizer = YellowFin([param])
    param.grad = torch.tensor([float("nan"), 1.0])
    optimizer.step()
    assert torch.equal(param.detach(), torch.ones(2))
    assert optimizer.state[param]["skipped_steps"] == 1
    assert optimizer.state[param]["tuner_step"] == 0


def test_optional_lr_cap():
    param = torch.ones(1, dtype=torch.float64, requires_grad=True)
    optimizer = YellowFin([param], beta=0.0, max_lr=0.3, slow_start=False, max_move=1e9)
    for _ in range(5):
        param.grad = torch.tensor([1e-3], dtype=torch.float64)  # h_min ~ 2e-6: lr_t ~ 5e5
        optimizer.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.3)


def test_converges_on_the_quadratic_and_keeps_dtype():
    path = tf.run_trajectory("yellowfin", "ill_conditioned_quadratic", 600, lr=0.05)
    function = tf.get("ill_conditioned_quadratic")
    assert function.mean_value(path[-1]) < 1e-6
    param = torch.ones(2, dtype=torch.float64, requires_grad=True)
    optimizer = create("yellowfin", [param])
    param.grad = torch.ones(2, dtype=torch.float64)
    optimizer.step()
    assert param.dtype == torch.float64


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"lr": 0.0}, "lr"),
        ({"lr": float("inf")}, "lr"),
        ({"lr": True}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"beta": -0.1}, "beta"),
        ({"curvature_window": 0}, "curvature_window"),
        ({"clip_factor": -1.0}, "clip_factor"),
        ({"max_move": 0.0}, "max_move"),
        ({"max_lr": 0.0}, "max_lr"),
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
