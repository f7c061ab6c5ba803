"""Shared conformance suite: every OPTIMIZERS entry is tested here just by being registered.

Checks per entry (metadata keys documented in dlskills.optim._registry):
  * a step runs and changes the parameters;
  * the foreach and for-loop paths agree to 1e-6 after 10 steps (``supports_foreach``);
  * state_dict saved mid-run and loaded into a fresh optimizer continues identically;
  * convergence on the entry's ``test_function`` within ``test_tolerance`` of the minimum value
    after ``test_steps`` steps with ``test_kwargs`` (float64);
  * float64 parameters and their per-element state stay float64;
  * a negative learning rate raises ValueError naming it.
The multi-tensor problem is least squares, Σᵢ ½‖Aᵢpᵢ − bᵢ‖², so every closure kind the
registry knows ("backward", "graph", "residuals") can be served.
"""

from __future__ import annotations

import copy
import inspect

import pytest
import torch

from dlskills.bench import surfaces as tf
from dlskills.optim import OPTIMIZERS

NAMES = OPTIMIZERS.names()
SHAPES = [(3,), (4, 5), (2, 3, 2), (6,)]


def _problem(dtype: torch.dtype = torch.float32, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    params, targets = [], []
    for shape in SHAPES:
        numel = torch.Size(shape).numel()
        a = torch.randn(numel, numel, generator=generator, dtype=torch.float64) / numel**0.5
        a = a + torch.eye(numel, dtype=torch.float64)
        b = torch.randn(numel, generator=generator, dtype=torch.float64)
        p = torch.randn(shape, generator=generator, dtype=torch.float64)
        params.append(p.to(dtype).requires_grad_())
        targets.append((a.to(dtype), b.to(dtype)))
    return params, targets


def _residuals(params, targets):
    return torch.cat([a @ p.reshape(-1) - b for p, (a, b) in zip(params, targets)])


def _make_closure(kind: str, params, targets):
    def backward_closure():
        for p in params:
            p.grad = None
        loss = 0.5 * _residuals(params, targets).square().sum()
        loss.backward()
        return loss.detach()

    def graph_closure():
        r = _residuals(params, targets)
        return 0.5 * r.square().sum(), r

    closures = {
        "backward": backward_closure,
        "graph": graph_closure,
        "residuals": lambda: _residuals(params, targets),
    }
    return closures[kind]


def _run(entry, optimizer, params, targets, steps: int) -> None:
    closure = _make_closure(entry.meta.get("closure", "backward"), params, targets)
    for _ in range(steps):
        if entry.meta.get("needs_closure", False):
            optimizer.step(closure)
        else:
            closure()
            optimizer.step()


def _kwargs(entry) -> dict:
    """Hyper-parameters that keep the least-squares problem stable (the test kwargs)."""
    return dict(entry.meta.get("test_kwargs", {}))


@pytest.mark.parametrize("name", NAMES)
def test_metadata_is_complete(name):
    entry = OPTIMIZERS.entry(name)
    for key in ("needs_closure", "supports_foreach", "elementwise", "test_function"):
        assert key in entry.meta, f"{name} lacks metadata {key!r}"
    assert entry.meta["test_function"] in tf.FUNCTIONS


@pytest.mark.parametrize("name", NAMES)
def test_step_changes_parameters(name):
    entry = OPTIMIZERS.entry(name)
    params, targets = _problem()
    before = [p.detach().clone() for p in params]
    optimizer = entry.obj(params, **_kwargs(entry))
    _run(entry, optimizer, params, targets, steps=2)
    assert all(torch.isfinite(p).all() for p in params)
    assert any(not torch.equal(b, p.detach()) for b, p in zip(before, params))


@pytest.mark.parametrize(
    "name", [n for n in NAMES if OPTIMIZERS.entry(n).meta.get("supports_foreach")]
)
def test_foreach_matches_for_loop(name):
    entry = OPTIMIZERS.entry(name)
    results = []
    for foreach in (False, True):
        params, targets = _problem()
        optimizer = entry.obj(params, foreach=foreach, **_kwargs(entry))
        _run(entry, optimizer, params, targets, steps=10)
        results.append([p.detach() for p in params])
    for loop, multi in zip(*results):
        torch.testing.assert_close(multi, loop, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_continues_identically(name):
    entry = OPTIMIZERS.entry(name)
    params, targets = _problem()
    optimizer = entry.obj(params, **_kwargs(entry))
    _run(entry, optimizer, params, targets, steps=5)
    saved_state = copy.deepcopy(optimizer.state_dict())
    clone = [p.detach().clone().requires_grad_() for p in params]
    restored = entry.obj(clone, **_kwargs(entry))
    restored.load_state_dict(saved_state)
    _run(entry, optimizer, params, targets, steps=5)
    _run(entry, restored, clone, targets, steps=5)
    for p, q in zip(params, clone):
        torch.testing.assert_close(q.detach(), p.detach(), atol=0, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_converges_on_its_test_function(name):
    entry = OPTIMIZERS.entry(name)
    function = tf.get(entry.meta["test_function"])
    steps = entry.meta.get("test_steps", 500)
    tolerance = entry.meta.get("test_tolerance", 1e-3)
    path = tf.run_trajectory(name, function, steps, **_kwargs(entry))
    final = function.mean_value(path[-1])
    if function.minimum is None:  # a saddle: it must escape downhill
        assert final <= function.mean_value(path[0]) - 1.0
    else:
        best = function.mean_value(torch.tensor(function.minimum, dtype=torch.float64))
        assert final - best <= tolerance, f"{name}: f - f* = {float(final - best):.3g}"


@pytest.mark.parametrize("name", NAMES)
def test_float64_parameters_and_state_stay_float64(name):
    entry = OPTIMIZERS.entry(name)
    params, targets = _problem(torch.float64)
    optimizer = entry.obj(params, **_kwargs(entry))
    _run(entry, optimizer, params, targets, steps=3)
    assert all(p.dtype == torch.float64 for p in params)
    for state in optimizer.state.values():
        for key, value in state.items():
            # 0-d bookkeeping scalars (torch's step, ASGD's eta, NAdam's mu_product) may be float32
            if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dim() > 0:
                assert value.dtype == torch.float64, f"{name}: state {key!r} is {value.dtype}"


@pytest.mark.parametrize("name", NAMES)
def test_negative_learning_rate_raises_value_error(name):
    # every optimizer takes ``lr`` so that --lr and torch's LR schedulers work with it
    entry = OPTIMIZERS.entry(name)
    assert "lr" in inspect.signature(entry.obj).parameters
    params, _ = _problem()
    kwargs = {**_kwargs(entry), "lr": -1.0}
    with pytest.raises(ValueError, match=r"(?i)(learning rate|\blr\b)"):
        entry.obj(params, **kwargs)


ZOO = [  # our own classes (classics.py only names torch's)
    n
    for n in NAMES
    if OPTIMIZERS.entry(n).obj.__module__.startswith("dlskills.optim.")
    and OPTIMIZERS.entry(n).obj.__module__ != "dlskills.optim.classics"
]


@pytest.mark.parametrize("lr", [True, float("inf"), float("nan")])
@pytest.mark.parametrize("name", ZOO)
def test_boolean_and_non_finite_learning_rates_raise_value_error(name, lr):
    # torch's own classes accept lr=True and lr=inf; ours refuse them
    entry = OPTIMIZERS.entry(name)
    params, _ = _problem()
    with pytest.raises(ValueError, match=r"\blr\b"):
        entry.obj(params, **{**_kwargs(entry), "lr": lr})


# -- used as PyTorch users use optimizers: copied, fine-tuned, grown, scheduled ------------------
def _trained(entry, optimizer, params, targets, steps):
    _run(entry, optimizer, params, targets, steps)
    return [p.detach().clone() for p in params]


@pytest.mark.parametrize("name", NAMES)
def test_deepcopy_after_steps_continues_like_the_original(name):
    entry = OPTIMIZERS.entry(name)
    params, targets = _problem()
    optimizer = entry.obj(params, **_kwargs(entry))
    _run(entry, optimizer, params, targets, steps=3)
    twin = copy.deepcopy({"optimizer": optimizer, "params": params})  # params shared by the copy
    twin_params = twin["params"]
    assert all(q is not p for p, q in zip(params, twin_params))
    expected = _trained(entry, optimizer, params, targets, steps=3)
    got = _trained(entry, twin["optimizer"], twin_params, targets, steps=3)
    for p, q in zip(expected, got):
        torch.testing.assert_close(q, p, atol=0, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_a_frozen_parameter_in_the_list_is_left_alone(name):
    """A frozen backbone (requires_grad=False) passed with the rest: it never changes and the
    others train exactly as without it."""
    entry = OPTIMIZERS.entry(name)
    params, targets = _problem()
    reference = [p.detach().clone().requires_grad_() for p in params]
    frozen = torch.randn(4, 3)
    kept = frozen.clone()
    optimizer = entry.obj([params[0], frozen, *params[1:]], **_kwargs(entry))
    got = _trained(entry, optimizer, params, targets, steps=4)
    expected = _trained(entry, entry.obj(reference, **_kwargs(entry)), reference, targets, 4)
    assert torch.equal(frozen, kept)
    for p, q in zip(expected, got):
        torch.testing.assert_close(q, p, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_a_param_group_added_after_steps_trains(name):
    entry = OPTIMIZERS.entry(name)
    params, targets = _problem()
    optimizer = entry.obj(params[:2], **_kwargs(entry))
    _run(entry, optimizer, params, targets, steps=3)
    late = [p.detach().clone() for p in params[2:]]
    optimizer.add_param_group({"params": params[2:]})
    _run(entry, optimizer, params, targets, steps=3)
    assert all(torch.isfinite(p).all() for p in params)
    assert any(not torch.equal(b, p.detach()) for b, p in zip(late, params[2:]))


@pytest.mark.parametrize("name", NAMES)
def test_an_empty_parameter_list_is_a_value_error(name):
    entry = OPTIMIZERS.entry(name)
    with pytest.raises(ValueError, match="empty"):
        entry.obj([], **_kwargs(entry))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", NAMES)
def test_half_precision_parameters_train_in_their_dtype(name, dtype):
    entry = OPTIMIZERS.entry(name)
    params, targets = _problem()
    params = [p.detach().to(dtype).requires_grad_() for p in params]
    targets = [(a.to(dtype), b.to(dtype)) for a, b in targets]
    before = [p.detach().clone() for p in params]
    optimizer = entry.obj(params, **_kwargs(entry))
    _run(entry, optimizer, params, targets, steps=2)
    assert all(p.dtype == dtype and torch.isfinite(p).all() for p in params)
    assert any(not torch.equal(b, p.detach()) for b, p in zip(before, params))


def _schedulers(optimizer):
    lr_scheduler = torch.optim.lr_scheduler
    return {
        "StepLR": lambda: lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5),
        "MultiStepLR": lambda: lr_scheduler.MultiStepLR(optimizer, milestones=[1, 3]),
        "ExponentialLR": lambda: lr_scheduler.ExponentialLR(optimizer, gamma=0.9),
        "CosineAnnealingLR": lambda: lr_scheduler.CosineAnnealingLR(optimizer, T_max=4),
        "LambdaLR": lambda: lr_scheduler.LambdaLR(optimizer, lambda epoch: 1 / (1 + epoch)),
        "LinearLR": lambda: lr_scheduler.LinearLR(optimizer, start_factor=0.5, total_iters=3),
        "OneCycleLR": lambda: lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=optimizer.param_groups[0]["lr"],
            total_steps=10,
            cycle_momentum=False,
        ),
        "CyclicLR": lambda: lr_scheduler.CyclicLR(
            optimizer,
            base_lr=optimizer.param_groups[0]["lr"] / 4,
            max_lr=optimizer.param_groups[0]["lr"],
            step_size_up=2,
            cycle_momentum=False,
        ),
        "ReduceLROnPlateau": lambda: lr_scheduler.ReduceLROnPlateau(optimizer, patience=0),
    }


SCHEDULERS = list(_schedulers(None))


@pytest.mark.parametrize("scheduler_name", SCHEDULERS)
@pytest.mark.parametrize("name", NAMES)
def test_every_torch_lr_scheduler_drives_the_learning_rate(name, scheduler_name):
    """The rate the scheduler sets is the rate the next step uses (group["lr"])."""
    entry = OPTIMIZERS.entry(name)
    params, targets = _problem()
    optimizer = entry.obj(params, **_kwargs(entry))
    scheduler = _schedulers(optimizer)[scheduler_name]()
    rates = []
    for _ in range(4):
        _run(entry, optimizer, params, targets, steps=1)
        if scheduler_name == "ReduceLROnPlateau":
            scheduler.step(1.0)  # never improves: the rate falls every step
        else:
            scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert len(set(rates)) > 1, rates
    assert all(torch.isfinite(p).all() for p in params)
