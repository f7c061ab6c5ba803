"""compile_step: the compiled update equals the eager one; compile time is accounted apart.

Default tests trace with the "eager" backend (dynamo only, seconds); the inductor check builds
C++ and takes minutes on a loaded 2-core machine, so it is marked slow.
"""

import pytest
import torch

from dlskills.optim import AdaBound, AggMo
from dlskills.optim.compile import compile_stats, compile_step

# dynamo's tracing touches torch.jit helpers that warn on import in torch 2.13
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _params(seed=0):
    generator = torch.Generator().manual_seed(seed)
    # tensors above FOREACH_MAX_NUMEL go through the compiled kernel (both in one call), the
    # small ones stay eager
    shapes = [(4,), (3, 5), (130, 150), (20000,)]
    return [torch.randn(s, generator=generator).requires_grad_() for s in shapes]


def _run(opt, params, steps, seed=1):
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=generator)
        opt.step()


@pytest.mark.parametrize("factory", [AdaBound, AggMo])
def test_compiled_functional_matches_eager(factory):
    eager_params, compiled_params = _params(), _params()
    eager = factory(eager_params, lr=0.01)
    compiled = compile_step(factory(compiled_params, lr=0.01), backend="eager")
    _run(eager, eager_params, 4)
    _run(compiled, compiled_params, 4)
    for a, b in zip(eager_params, compiled_params):
        torch.testing.assert_close(b.detach(), a.detach(), atol=1e-6, rtol=1e-6)
    stats = compile_stats(compiled)
    assert stats.calls == 4 and stats.compiling_calls == 1  # one graph for both large tensors
    assert stats.compile_seconds > 0


def test_one_compiled_call_per_step_and_recompiles_for_new_shapes():
    from torch._dynamo.utils import counters

    params = _params()
    compiled = compile_step(AdaBound(params, lr=0.01), backend="eager")
    _run(compiled, params, 2)
    frames_before = counters["stats"]["calls_captured"]
    _run(compiled, params, 1)
    assert counters["stats"]["calls_captured"] == frames_before  # no retrace on a later step
    other = [torch.randn(30000, requires_grad=True), torch.randn(17000, requires_grad=True)]
    second = compile_step(AdaBound(other, lr=0.01), backend="eager")
    _run(second, other, 2)
    assert compile_stats(second).compiling_calls == 1  # a list of other shapes: one recompile


def test_torch_optimizers_compile_their_whole_step():
    eager_params, compiled_params = _params(), _params()
    eager = torch.optim.Adam(eager_params, lr=0.01)
    compiled = compile_step(torch.optim.Adam(compiled_params, lr=0.01), backend="eager")
    _run(eager, eager_params, 3)
    _run(compiled, compiled_params, 3)
    for a, b in zip(eager_params, compiled_params):
        torch.testing.assert_close(b.detach(), a.detach())
    assert compile_stats(compiled).calls == 3


def test_rejects_non_optimizers_and_double_compilation():
    with pytest.raises(TypeError, match="optimizer"):
        compile_step(object())
    opt = compile_step(AggMo(_params(), lr=0.1), backend="eager")
    with pytest.raises(ValueError, match="already compiled"):
        compile_step(opt)
    with pytest.raises(ValueError, match="not passed through compile_step"):
        compile_stats(AggMo(_params(), lr=0.1))


@pytest.mark.slow
def test_inductor_compiled_adabound_matches_eager():
    eager_params, compiled_params = _params(), _params()
    eager = AdaBound(eager_params, lr=0.01)
    compiled = compile_step(AdaBound(compiled_params, lr=0.01))
    _run(eager, eager_params, 4)
    _run(compiled, compiled_params, 4)
    for a, b in zip(eager_params, compiled_params):
        torch.testing.assert_close(b.detach(), a.detach(), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("easgd", {"lr": 0.05, "workers": 2, "momentum": 0.5}), ("yellowfin", {"lr": 0.05})],
)
def test_zoo_steps_without_a_functional_compile_their_dispatched_kernels(name, kwargs):
    from dlskills.optim import OPTIMIZERS, create

    needs_closure = OPTIMIZERS.entry(name).meta.get("needs_closure")

    def run(params, compiled):
        opt = create(name, params, **kwargs)
        if compiled:
            opt = compile_step(opt, backend="eager")
        target = [torch.linspace(-1, 1, p.numel()).view_as(p) for p in params]

        def closure():
            for p in params:
                p.grad = None
            loss = sum(((p - t) ** 2).sum() for p, t in zip(params, target))
            loss.backward()
            return loss

        for _ in range(4):
            if needs_closure:
                opt.step(closure)
            else:
                closure()
                opt.step()
        return opt

    eager_params, compiled_params = _params(), _params()
    run(eager_params, compiled=False)
    compiled = run(compiled_params, compiled=True)
    for a, b in zip(eager_params, compiled_params):
        torch.testing.assert_close(b.detach(), a.detach(), atol=1e-6, rtol=1e-6)
    stats = compile_stats(compiled)
    assert stats.calls == 4 and stats.compiling_calls >= 1


def test_parameters_at_different_step_counts_match_eager():
    # the compiled kernel takes one scalar input per distinct step size: a parameter that
    # starts late (its own step count) changes that sharing and must still be exact
    def run(compiled):
        params = _params()
        opt = AdaBound(params, lr=0.01)
        if compiled:
            opt = compile_step(opt, backend="eager")
        generator = torch.Generator().manual_seed(5)
        for step in range(4):
            for i, p in enumerate(params):
                late = i == len(params) - 1 and step < 2
                p.grad = None if late else torch.randn(p.shape, generator=generator)
            opt.step()
        return params, opt

    eager_params, _ = run(False)
    compiled_params, compiled = run(True)
    for a, b in zip(eager_params, compiled_params):
        torch.testing.assert_close(b.detach(), a.detach(), atol=1e-6, rtol=1e-6)
    assert compile_stats(compiled).compiling_calls <= 3


@pytest.mark.slow
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_inductor_compiled_easgd_matches_eager(momentum):
    """EASGD's leave kernel moves data between buffers it also updates: inductor (torch 2.13)
    miscompiled a clone-based swap there (both buffers got the same value), so the compiled
    steps are checked against eager ones, workers included, for one worker and three."""
    from dlskills.optim import create

    for workers in (1, 3):
        results = []
        for compiled in (False, True):
            params = _params()
            opt = create("easgd", params, lr=0.05, workers=workers, momentum=momentum, tau=2)
            if compiled:
                opt = compile_step(opt)

            def closure(params=params):
                for p in params:
                    p.grad = torch.cos(p.detach()) + 0.5
                return torch.zeros(())

            for _ in range(5):
                opt.step(closure)
            results.append([p.detach() for p in params] + [opt.state[p]["workers"] for p in params])
        for a, b in zip(*results):
            torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-6)


def test_data_movement_kernels_stay_eager_under_a_runner():
    from dlskills.optim._foreach import dispatch, per_tensor_runner

    seen = []
    tensors = [torch.zeros(3)]

    def copy_one(dst, src):
        for d, s in zip(dst, src):
            d.copy_(s)

    with per_tensor_runner(lambda single, eager, lists, hyper: seen.append(single)):
        dispatch(copy_one, copy_one, (tensors, [torch.ones(3)]), None, compile=False)
        assert seen == [] and torch.equal(tensors[0], torch.ones(3))
        dispatch(copy_one, copy_one, (tensors, [torch.ones(3)]), None)
        assert seen == [copy_one]
