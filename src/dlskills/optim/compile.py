"""``compile_step``: run an optimizer's update through ``torch.compile`` (like torch's compiled
optimizers), on CPU too (inductor generates C++ and builds it with the system compiler).

For the zoo optimizers, whose maths lives in a single-tensor kernel behind a functional
dispatcher, the *single-tensor kernel* is compiled and called once per step on the list of all
the group's large tensors: inductor unrolls its loop into one fused, vectorised C++ loop per
tensor inside a single graph, so a step pays one compiled call (guards, wrapper) instead of one
per tensor (≈ 70 µs each: on a ResNet-18 that overhead alone was 20 % of the step). Shapes are
static at first (the fastest code); a list of other shapes (another optimizer, another param
group) recompiles with dynamo's automatic dynamic shapes, up to its recompile limit, after which
that kernel runs eagerly. Tensors of at most ``FOREACH_MAX_NUMEL`` elements keep the eager
path (the fused CPU kernel where the optimizer has one, else foreach): for them a compiled
loop gains nothing and costs compile time. For element-wise optimizers (registry metadata)
each tensor is flattened first, so the graph does not depend on the parameters' ranks.
Compile time grows with the number of large tensors (≈ 3–8 s for the 21 of a ResNet-18 on 2
cores, cached on disk by inductor).
The per-tensor numbers (bias-corrected step sizes, bounds, ring-buffer slots) are computed in
Python and passed in as arguments (floats as 0-d tensors), so the generated loop does no scalar
maths per element and a new step count does not recompile. Hyper-parameters passed as plain
numbers (AggMo's or PTS-SGD's lr) are compiled in as constants: a scheduler that changes them
recompiles, as above (AdaBound's lr only enters through per-tensor numbers and is unaffected).
The Python bookkeeping around the kernel (state creation, closures, STORM's two evaluations)
stays eager.

Zoo optimizers without a functional whose ``step`` calls the dispatcher directly (EASGD's local
steps and elastic updates, YellowFin) get the same treatment around ``step``. Kernels that only
move data (EASGD's *enter*, marked ``compile=False`` at their dispatch) stay on the eager path:
inductor stages a swap through a temporary buffer and ran it ≈ 2× slower than the fused kernel.
For other optimizers (the torch.optim classics) the whole ``step`` is compiled, as torch's
documentation shows; torch's own ``fused=True`` CPU kernels are usually the better choice there.

Compilation happens on the first calls, not in ``compile_step``: the time spent in calls that
compiled a new graph is accumulated in ``compile_stats(optimizer).compile_seconds`` so
benchmarks can report it apart from the steady-state step time.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from dlskills.optim._foreach import FOREACH_MAX_NUMEL, per_tensor_runner
from dlskills.optim._registry import OPTIMIZERS

_STATS_ATTRIBUTE = "_dlskills_compile_stats"


@dataclass
class CompileStats:
    """Wall time spent in calls that (re)compiled, and how many calls did."""

    compile_seconds: float = 0.0
    compiling_calls: int = 0
    calls: int = 0


def _unique_graphs() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def _timed(function: Any, stats: CompileStats) -> Any:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        graphs_before = _unique_graphs()
        started = time.perf_counter()
        result = function(*args, **kwargs)
        stats.calls += 1
        if _unique_graphs() != graphs_before:
            stats.compile_seconds += time.perf_counter() - started
            stats.compiling_calls += 1
        return result

    return wrapper


class _CompiledKernels:
    """Runs a single-tensor kernel compiled over the list of large tensors (one call per step).

    Each kernel function is compiled once (its own dynamo cache). For element-wise optimizers
    every tensor that ends with the parameter's shape is flattened to (*leading, numel) first,
    so the graph's inputs do not depend on the parameters' ranks."""

    def __init__(self, flatten: bool, **compile_options: Any) -> None:
        self.flatten = flatten
        self.compile_options = compile_options
        self.cache: dict[Callable[..., None], Callable[..., None]] = {}

    def __call__(
        self,
        single: Callable[..., None],
        eager: Callable[[Sequence[Sequence[Any]]], None],
        tensor_lists: Sequence[Sequence[Any]],
        hyper: dict[str, Any],
    ) -> None:
        params = tensor_lists[0]
        small = [i for i, p in enumerate(params) if p.numel() <= FOREACH_MAX_NUMEL]
        if small:  # the eager path (fused kernel or foreach) beats compiled code on these
            eager([[items[i] for i in small] if items else items for items in tensor_lists])
        compiled = self.cache.get(single)
        if compiled is None:
            compiled = torch.compile(single, **self.compile_options)
            self.cache[single] = compiled
        large = [i for i, p in enumerate(params) if p.numel() > FOREACH_MAX_NUMEL]
        if large:
            numbers: dict[float, Tensor] = {}
            compiled(
                *(
                    [_as_input(items[i], params[i], self.flatten, numbers) for i in large]
                    if items
                    else []
                    for items in tensor_lists
                ),
                **hyper,
            )


def _as_input(item: Any, param: Tensor, flatten: bool, numbers: dict[float, Tensor]) -> Any:
    """One tensor's item as the compiled kernel takes it. Floats (step sizes, bounds) become 0-d
    tensors: dynamo specialises a Python float that reaches an op needing a concrete number
    (clamp bounds), which would recompile at every step. Equal floats share one tensor
    (``numbers``, per call), so the graph takes one scalar input per distinct value rather than
    one per parameter (the usual case: one step count per group; on a ResNet-18 this took
    compiled AMSBound from ≈ 1.51 to 1.35–1.47 × Adam(fused)); parameters at different step counts
    change that sharing and recompile once."""
    if type(item) is float:
        number = numbers.get(item)
        if number is None:
            number = numbers[item] = torch.tensor(item, dtype=torch.float64)
        return number
    if (
        flatten
        and param.is_contiguous()
        and isinstance(item, Tensor)
        and item.dim() >= param.dim() > 0
        and item.shape[item.dim() - param.dim() :] == param.shape
        and item.is_contiguous()
    ):
        # detached, so dynamo does not guard on the strides of the view's base tensor
        return item.view(*item.shape[: item.dim() - param.dim()], param.numel()).detach()
    return item


def compile_step(
    optimizer: torch.optim.Optimizer,
    *,
    backend: str = "inductor",
    mode: str | None = None,
    dynamic: bool | None = None,
) -> torch.optim.Optimizer:
    """Compile ``optimizer``'s update in place and return the same optimizer.

    ``backend`` and ``mode`` are passed to ``torch.compile`` ("eager" traces without generating
    code: quick, for tests), and so is ``dynamic`` (None: static shapes first, dynamic ones on
    recompilation). Calling it twice is an error (the second call would wrap the compiled
    function again)."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        kind = type(optimizer).__name__
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {kind}")
    if hasattr(optimizer, _STATS_ATTRIBUTE):
        raise ValueError("this optimizer's step is already compiled")
    stats = CompileStats()
    functional = getattr(type(optimizer), "functional", None)
    entry = next((e for e in OPTIMIZERS.entries() if e.obj is type(optimizer)), None)
    # the zoo's own classes route their maths through _foreach.dispatch, which the runner hooks
    zoo = entry is not None and type(optimizer).__module__.startswith("dlskills.optim")
    if zoo and (functional is not None or entry.meta.get("supports_foreach")):
        elementwise = bool(entry.meta.get("elementwise"))
        runner = _CompiledKernels(elementwise, backend=backend, mode=mode, dynamic=dynamic)

        def with_runner(function: Callable[..., Any]) -> Callable[..., Any]:
            def run(*args: Any, **kwargs: Any) -> Any:
                with per_tensor_runner(runner):
                    return function(*args, **kwargs)

            return _timed(run, stats)

        if functional is not None:
            optimizer.functional = with_runner(functional)  # type: ignore[method-assign]
        else:  # the dispatch calls sit in step itself (EASGD, YellowFin)
            optimizer.step = with_runner(optimizer.step)  # type: ignore[method-assign]
    else:
        step = optimizer.step
        optimizer.step = _timed(  # type: ignore[method-assign]
            torch.compile(step, backend=backend, mode=mode, dynamic=dynamic), stats
        )
    setattr(optimizer, _STATS_ATTRIBUTE, stats)
    return optimizer


def compile_stats(optimizer: torch.optim.Optimizer) -> CompileStats:
    """The CompileStats of an optimizer passed through ``compile_step``."""
    stats = getattr(optimizer, _STATS_ATTRIBUTE, None)
    if stats is None:
        raise ValueError("this optimizer was not passed through compile_step")
    return stats
