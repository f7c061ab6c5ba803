"""``compile_step``: run an optimizer's update through ``torch.compile`` (like torch's compiled
optimizers), on CPU too (inductor generates C++ and builds it with the system compiler).

For the zoo optimizers, whose maths lives in a functional over lists of tensors (the class's
``functional`` attribute), only that functional is compiled: the Python bookkeeping around it
(state creation, closures, STORM's two evaluations) stays eager, and the compiled kernel sees
plain lists of tensors and Python numbers. Step-dependent numbers (bias corrections, bounds, the
learning rate a scheduler changes) become dynamic after one recompilation
(``torch._dynamo.config.specialize_float`` is False), so a schedule does not recompile every
step. The for-loop form is compiled (``foreach=False``): inductor fuses each tensor's chain of
element-wise ops into one loop, which is what makes the compiled step fast; the foreach form
would hand it the same maths op by op across the list.

For other optimizers (the torch.optim classics) the whole ``step`` is compiled, as torch's
documentation shows; torch's own ``fused=True`` CPU kernels are usually the better choice there.

Compilation happens on the first calls, not in ``compile_step``: the time spent in calls that
compiled a new graph is accumulated in ``compile_stats(optimizer).compile_seconds`` so
benchmarks can report it apart from the steady-state step time.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import torch

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


def compile_step(
    optimizer: torch.optim.Optimizer,
    *,
    backend: str = "inductor",
    mode: str | None = None,
    dynamic: bool | None = None,
) -> torch.optim.Optimizer:
    """Compile ``optimizer``'s update in place and return the same optimizer.

    ``backend``, ``mode`` and ``dynamic`` are passed to ``torch.compile`` ("eager" traces without
    generating code: quick, for tests). Calling it twice is an error (the second call would wrap
    the compiled function again)."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        kind = type(optimizer).__name__
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {kind}")
    if hasattr(optimizer, _STATS_ATTRIBUTE):
        raise ValueError("this optimizer's step is already compiled")
    stats = CompileStats()
    functional = getattr(type(optimizer), "functional", None)
    if functional is not None:
        compiled = torch.compile(
            functools.partial(functional, foreach=False),
            backend=backend,
            mode=mode,
            dynamic=dynamic,
        )

        def compiled_functional(*args: Any, foreach: bool | None = None, **kwargs: Any) -> Any:
            return compiled(*args, **kwargs)

        optimizer.functional = _timed(compiled_functional, stats)  # type: ignore[method-assign]
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
