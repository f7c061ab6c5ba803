"""Gradient checking: central finite differences against autograd (catalog rumelhart-1985;
Rumelhart, Hinton & Williams, "Learning internal representations by error propagation", 1985 —
back-propagation computes ∂E/∂w exactly; this utility verifies that a model's or function's
gradients are what autograd says they are).

For a function f with tensor output y and a fixed random projection v (seeded, y-shaped), the
checked scalar is s = ⟨v, f(...)⟩. For every checked element θ_i of every input/parameter:

    numeric_i  = (s(θ + ε e_i) − s(θ − ε e_i)) / (2ε)          (error O(ε²))
    analytic_i = ∂s/∂θ_i from one autograd backward pass
    passed     ⇔ |numeric_i − analytic_i| ≤ atol + rtol·|analytic_i|  for all i

Per tensor the report gives max |numeric − analytic| and the max relative error
|numeric − analytic| / max(|numeric|, |analytic|) (0 where both vanish).

Everything runs in float64 on a deep copy of a module (the caller's module is untouched), so
ε = 1e-6 leaves a truncation error ~ε² and a rounding error ~1e-16/ε ≈ 1e-10. Finite differences
need two evaluations per element; ``max_elements`` checks a seeded random subset of larger tensors.
Random layers (dropout) must be in eval mode, or the two evaluations see different masks.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TensorCheck:
    """Finite differences vs autograd for one tensor."""

    name: str
    checked: int
    max_abs_error: float
    max_rel_error: float
    passed: bool


@dataclass(frozen=True)
class GradCheckReport:
    """One :class:`TensorCheck` per checked input and parameter."""

    tensors: tuple[TensorCheck, ...]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.tensors)

    @property
    def max_abs_error(self) -> float:
        return max((check.max_abs_error for check in self.tensors), default=0.0)

    def __str__(self) -> str:
        lines = [f"{'tensor':<32} {'checked':>8} {'max abs err':>12} {'max rel err':>12}  ok"]
        for c in self.tensors:
            lines.append(
                f"{c.name:<32} {c.checked:>8} {c.max_abs_error:>12.3e} {c.max_rel_error:>12.3e}"
                f"  {'yes' if c.passed else 'NO'}"
            )
        return "\n".join(lines)


def check_gradients(
    fn_or_module: Callable[..., torch.Tensor],
    inputs: torch.Tensor | Sequence[torch.Tensor],
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    check_inputs: bool = True,
    check_parameters: bool = True,
    max_elements: int | None = None,
    seed: int = 0,
) -> GradCheckReport:
    """Compare autograd with central finite differences for ``fn_or_module(*inputs)``.

    Floating-point ``inputs`` (when ``check_inputs``) and, for an ``nn.Module``, its parameters
    (when ``check_parameters``) are checked in float64. Returns a :class:`GradCheckReport`."""
    if not callable(fn_or_module):
        raise TypeError("fn_or_module must be callable")
    for name, value in (("eps", eps), ("atol", atol), ("rtol", rtol)):
        if not isinstance(value, int | float) or value < 0 or (name == "eps" and value == 0):
            raise ValueError(
                f"{name} must be a {'positive' if name == 'eps' else 'non-negative'} "
                f"number, got {value!r}"
            )
    if max_elements is not None and (not isinstance(max_elements, int) or max_elements < 1):
        raise ValueError(f"max_elements must be a positive int or None, got {max_elements!r}")
    args = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
    if not all(isinstance(a, torch.Tensor) for a in args):
        raise TypeError("inputs must be a tensor or a sequence of tensors")

    fn = fn_or_module
    checked: list[tuple[str, torch.Tensor]] = []
    if isinstance(fn_or_module, nn.Module):
        fn = copy.deepcopy(fn_or_module).double()
        if check_parameters:
            checked += [(f"param:{n}", p) for n, p in fn.named_parameters() if p.requires_grad]
    args = [
        a.detach()
        .to(torch.float64 if a.is_floating_point() else a.dtype)
        .clone(memory_format=torch.contiguous_format)
        for a in args
    ]
    if check_inputs:
        for index, arg in enumerate(args):
            if arg.is_floating_point():
                arg.requires_grad_(True)
                checked.append((f"input[{index}]", arg))
    if not checked:
        raise ValueError("nothing to check: no floating-point inputs or trainable parameters")

    generator = torch.Generator().manual_seed(seed)
    with torch.enable_grad():
        output = fn(*args)
    if not isinstance(output, torch.Tensor) or not output.is_floating_point():
        raise TypeError("fn_or_module must return a floating-point tensor")
    projection = torch.randn(output.shape, generator=generator, dtype=torch.float64)

    def scalar() -> float:
        with torch.no_grad():
            return float((fn(*args).double() * projection).sum())

    tensors = [t for _, t in checked]
    analytic = torch.autograd.grad((output.double() * projection).sum(), tensors, allow_unused=True)
    results = []
    for (name, tensor), grad in zip(checked, analytic, strict=True):
        grad = torch.zeros_like(tensor) if grad is None else grad
        flat, flat_grad = tensor.data.view(-1), grad.reshape(-1)
        if max_elements is None or flat.numel() <= max_elements:
            indices = torch.arange(flat.numel())
        else:
            indices = torch.randperm(flat.numel(), generator=generator)[:max_elements]
        numeric = torch.empty(len(indices), dtype=torch.float64)
        # one central difference per element: the function is a black box to us
        for slot, i in enumerate(indices.tolist()):
            original = flat[i].item()
            flat[i] = original + eps
            upper = scalar()
            flat[i] = original - eps
            lower = scalar()
            flat[i] = original
            numeric[slot] = (upper - lower) / (2 * eps)
        expected = flat_grad[indices].double()
        error = (numeric - expected).abs()
        scale = torch.maximum(numeric.abs(), expected.abs())
        relative = torch.where(scale > 0, error / scale.clamp_min(1e-300), torch.zeros_like(error))
        results.append(
            TensorCheck(
                name=name,
                checked=len(indices),
                max_abs_error=float(error.max()) if len(error) else 0.0,
                max_rel_error=float(relative.max()) if len(relative) else 0.0,
                passed=bool((error <= atol + rtol * expected.abs()).all()),
            )
        )
    return GradCheckReport(tuple(results))


# ``dlskills.diagnose.gradcheck`` is this function (the package exports it under the module name)
gradcheck = check_gradients
