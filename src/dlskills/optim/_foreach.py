"""The shared rule for choosing the for-loop or the ``torch._foreach_*`` path, and the dispatcher.

Every zoo optimizer keeps its update maths in two plain functions over lists of tensors with the
same signature, as torch.optim does: ``_single_tensor_<name>`` (a Python loop, the readable
reference) and ``_multi_tensor_<name>`` (``torch._foreach_*`` ops, one kernel launch per op over
the whole list). ``dispatch`` calls one of them, or, on CPU with ``foreach=None``, both on a split
of the list.

The rule for ``foreach=None`` (measured on the 2-core CPU machines, torch 2.13, Adam-sized
update, see benchmarks/optim_step.py and docs/optimizers.md):
  * any tensor off the CPU -> foreach for the whole list (one launch per op instead of one per
    tensor and op; torch does the same);
  * on CPU, per tensor: ``numel <= FOREACH_MAX_NUMEL`` -> foreach, larger -> for-loop. foreach
    wins on many small tensors (≈1.2–1.7× faster at 64–8192 elements: Python and dispatch
    overhead dominate) and loses on large ones (0.3–0.9× at ≥ 32768 elements: each foreach op
    streams the whole list through memory, while the loop runs all of one tensor's ops while it
    is still in cache). A real network mixes both (ResNet-18: 41 BatchNorm/bias vectors ≤ 512
    elements next to 21 conv/linear weights ≥ 8192), so the list is split rather than sent
    wholesale one way.
``foreach=True`` / ``False`` force one path for every tensor (the tests compare the two).

Optimizers with a fused CPU kernel (``dlskills.optim._native``) take ``fused`` like torch's:
``fused=None`` with ``foreach=None`` (the defaults) runs the fused kernel whenever the call's
tensors allow it (dense contiguous CPU float32/float64, kernels built) and the rule above
otherwise; ``fused=True`` insists (RuntimeError naming the obstacle); ``fused=False`` or an
explicit ``foreach`` never fuses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch
from torch import Tensor

FOREACH_MAX_NUMEL = 16384

# set by dlskills.optim.compile_step: runs compiled single-tensor kernels (see compile.py)
_PER_TENSOR_RUNNER: ContextVar[Callable[..., None] | None] = ContextVar(
    "dlskills_per_tensor_runner", default=None
)


@contextmanager
def per_tensor_runner(runner: Callable[..., None]) -> Iterator[None]:
    """Inside the block, ``dispatch`` hands ``(single, eager, tensor_lists, hyper)`` to
    ``runner``; ``eager(lists)`` runs the usual eager choice (fused, foreach or for-loop) on a
    subset of the lists."""
    token = _PER_TENSOR_RUNNER.set(runner)
    try:
        yield
    finally:
        _PER_TENSOR_RUNNER.reset(token)


def foreach_mask(tensors: Sequence[Tensor], foreach: bool | None) -> list[bool]:
    """Per tensor: True where the foreach path should update it (rule in the module docstring)."""
    if foreach is not None:
        return [bool(foreach)] * len(tensors)
    if any(t.device.type != "cpu" for t in tensors):
        return [True] * len(tensors)
    return [t.numel() <= FOREACH_MAX_NUMEL for t in tensors]


def check_fused(foreach: bool | None, fused: bool | None) -> None:
    """torch.optim's rule: the two paths cannot both be forced."""
    if foreach and fused:
        raise ValueError("Invalid fused/foreach: fused=True and foreach=True cannot both be set")


def dispatch(
    single: Callable[..., None],
    multi: Callable[..., None],
    tensor_lists: Sequence[Sequence[Any]],
    foreach: bool | None,
    *,
    fused: bool | None = False,
    native: Callable[..., None] | None = None,
    compile: bool = True,
    **hyper: Any,
) -> None:
    """Run ``native`` (the fused kernel, chosen per the module docstring), or ``single`` and/or
    ``multi`` on the aligned ``tensor_lists`` (params, grads, states, per-tensor scalars ...),
    splitting them by ``foreach_mask`` of the first list. An empty list (an unused optional
    state, e.g. AMSBound's maxima in AdaBound) is passed through as is. ``compile=False``
    marks a kernel that only moves data: a ``per_tensor_runner`` (compile_step) leaves it to
    the eager choice, since inductor stages a swap through a temporary buffer and runs it ≈ 2×
    slower than the fused kernel."""
    if not tensor_lists or not tensor_lists[0]:
        return
    runner = _PER_TENSOR_RUNNER.get()
    if runner is not None and compile:

        def eager(lists: Sequence[Sequence[Any]]) -> None:
            _dispatch_eager(single, multi, lists, foreach, fused, native, hyper)

        runner(single, eager, tensor_lists, hyper)
        return
    _dispatch_eager(single, multi, tensor_lists, foreach, fused, native, hyper)


def _dispatch_eager(
    single: Callable[..., None],
    multi: Callable[..., None],
    tensor_lists: Sequence[Sequence[Any]],
    foreach: bool | None,
    fused: bool | None,
    native: Callable[..., None] | None,
    hyper: dict[str, Any],
) -> None:
    if native is not None and (fused or (fused is None and foreach is None)):
        from dlskills.optim._native import unsupported_reason

        reason = unsupported_reason(tensor_lists)
        if reason is None:
            native(*tensor_lists, **hyper)
            return
        if fused:
            raise RuntimeError(f"fused=True cannot run here: {reason}")
    mask = foreach_mask(tensor_lists[0], foreach)
    for use_foreach, kernel in ((True, multi), (False, single)):
        chosen = [i for i, m in enumerate(mask) if m == use_foreach]
        if not chosen:
            continue
        if len(chosen) == len(mask):
            kernel(*tensor_lists, **hyper)
        else:
            kernel(*([lst[i] for i in chosen] if lst else lst for lst in tensor_lists), **hyper)


def scalar_or_list(values: Sequence[float]) -> float | list[float]:
    """One number when all tensors share it (the usual case: one step count per group), since
    ``torch._foreach_*`` with a ScalarList is about twice as slow on CPU as with a Scalar."""
    first = values[0]
    return first if all(v == first for v in values) else list(values)


def step_counts(states: Sequence[dict[str, Any]]) -> list[int]:
    """Advance and return each tensor's step counter (kept as a float 0-d tensor like torch.optim's,
    so checkpoints store it as a tensor)."""
    counts = []
    for state in states:
        state["step"] += 1
        counts.append(int(state["step"].item()))
    return counts


def new_step_counter() -> Tensor:
    return torch.tensor(0.0, dtype=torch.float32)


def _is_real_number(value: Any) -> bool:
    """An int or float that is finite; bools are not numbers here (``lr=True`` is a mistake)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_nonnegative(name: str, value: float) -> None:
    if not (_is_real_number(value) and value >= 0.0):
        raise ValueError(f"Invalid {name}: {value!r} (must be a finite number >= 0)")


def check_positive(name: str, value: float) -> None:
    if not (_is_real_number(value) and value > 0.0):
        raise ValueError(f"Invalid {name}: {value!r} (must be a finite number > 0)")


def check_unit_interval(name: str, value: float, *, closed_top: bool = False) -> None:
    ok = _is_real_number(value) and (0.0 <= value <= 1.0 if closed_top else 0 <= value < 1)
    if not ok:
        bound = "[0, 1]" if closed_top else "[0, 1)"
        raise ValueError(f"Invalid {name}: {value!r} (must be in {bound})")


def reject_sparse(optimizer: str, tensors: Sequence[Tensor | None]) -> None:
    """RuntimeError naming ``optimizer`` if any gradient is sparse (as torch.optim does)."""
    if any(t is not None and t.layout != torch.strided for t in tensors):
        raise RuntimeError(f"{optimizer} does not support sparse gradients")


def reject_complex(optimizer: str, params: Sequence[Tensor]) -> None:
    """ValueError naming ``optimizer`` if any parameter is complex (checked at construction)."""
    for p in params:
        if torch.is_complex(p):
            raise ValueError(f"{optimizer} does not support complex parameters (got {p.dtype})")


def params_with_grads(
    optimizer: torch.optim.Optimizer,
    group: dict[str, Any],
    init_state: Callable[[Tensor], dict[str, Any]],
) -> tuple[list[Tensor], list[Tensor], list[dict[str, Any]]]:
    """The group's parameters that have a gradient, their gradients and their state dicts
    (created by ``init_state(param)`` on first use). Sparse gradients are rejected."""
    params, grads, states = [], [], []
    for p in group["params"]:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            raise RuntimeError(f"{type(optimizer).__name__} does not support sparse gradients")
        state = optimizer.state[p]
        if not state:
            state.update(init_state(p))
        params.append(p)
        grads.append(p.grad)
        states.append(state)
    return params, grads, states
