"""Gradient checking: central finite differences against autograd (catalog rumelhart-1985;
Rumelhart, Hinton & Williams, "Learning internal representations by error propagation", 1985 —
back-propagation computes ∂E/∂w exactly; this utility verifies that a model's or function's
gradients are what autograd says they are).

For a function f with tensor output y and a fixed random projection v (seeded, y-shaped), the
checked scalar is s = ⟨v, f(...)⟩. For every checked element θ_i of every input/parameter, with
s₀ = s(θ), s₊ = s(θ + ε e_i), s₋ = s(θ − ε e_i) and the tolerance τ_i = atol + rtol·|analytic_i|:

    numeric_i  = (s₊ − s₋) / (2ε)                               (error O(ε²) where s is smooth)
    analytic_i = ∂s/∂θ_i from one autograd backward pass
    agrees_i   ⇔ |numeric_i − analytic_i| ≤ τ_i

Kinks. ReLU at 0, abs at 0, ties in a max-pool window, clamp at its bounds: where s is not
differentiable along e_i, autograd returns the derivative of one piece (torch's convention:
relu'(0) = 0, the first maximum of a tied window) and the central difference mixes pieces, so it
disagrees with any correct backward. On 8×8 digits this is common, not rare: blank pixels tie in
every pooling window. With several ties at once autograd's value need not equal either one-sided
slope (max(a, b) + max(c, d) with a' = d' = 1, b' = c' = 0 has slopes 2 and 0 and autograd 1), so
the slopes alone cannot tell a kink from an error. Each evaluation therefore records which piece
every non-smooth op took (a ``TorchFunctionMode`` sees the calls, so functional forms count too):

    relu, leaky_relu, threshold, abs               sign(x − kink point) per element
    hardtanh, relu6, clamp, hardswish, hardsigmoid sign(x − each bound)
    maximum, minimum, fmax, fmin                   sign(a − b)
    max_pool{1,2,3}d, adaptive_max_pool{1,2,3}d    the argmax of every window

An element is a **kink** when the pieces at θ + ε e_i or θ − ε e_i differ from those at θ (the
difference straddles a non-differentiable point, a tie at θ included). For ops outside that list
(sort, max over a dimension, a custom Function) an element that disagrees is also a kink when the
one-sided slopes d₊ = (s₊ − s₀)/ε and d₋ = (s₀ − s₋)/ε differ by more than τ_i and autograd's value
is one of them. Kinks are counted per tensor and left out of the error columns; ``passed`` means
every other element agrees. A wrong backward shows at the smooth elements (d₊ ≈ d₋ ≈ numeric ≠
analytic); only at a kink itself could one go unnoticed.

Everything runs in float64 on a deep copy of a module (the caller's module is untouched), so
ε = 1e-6 leaves a truncation error ~ε² and a rounding error ~1e-16/ε ≈ 1e-10. Finite differences
need two evaluations per element; tensors larger than ``max_elements`` (default 256) are checked
on a seeded random subset of that many elements — a wrong backward of a layer shows on most of its
elements — which keeps the default CNN on two digits at ≈ 1,300 evaluations (seconds);
``max_elements=None`` checks every element (≈ 40,000 evaluations there).
Random layers (dropout) must be in eval mode, or the evaluations see different masks.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode


@dataclass(frozen=True)
class TensorCheck:
    """Finite differences vs autograd for one tensor."""

    name: str
    checked: int
    max_abs_error: float
    max_rel_error: float
    passed: bool
    kinks: int = 0  # elements at a non-differentiable point (left out of the errors)


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

    @property
    def kinks(self) -> int:
        return sum(check.kinks for check in self.tensors)

    def __str__(self) -> str:
        lines = [
            f"{'tensor':<32} {'checked':>8} {'kinks':>6} {'max abs err':>12} {'max rel err':>12}"
            "  ok"
        ]
        for c in self.tensors:
            lines.append(
                f"{c.name:<32} {c.checked:>8} {c.kinks:>6} {c.max_abs_error:>12.3e}"
                f" {c.max_rel_error:>12.3e}  {'yes' if c.passed else 'NO'}"
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
    max_elements: int | None = 256,
    seed: int = 0,
) -> GradCheckReport:
    """Compare autograd with central finite differences for ``fn_or_module(*inputs)``.

    Floating-point ``inputs`` (when ``check_inputs``) and, for an ``nn.Module``, its parameters
    (when ``check_parameters``) are checked in float64, at most ``max_elements`` (a seeded
    sample) per tensor. Returns a :class:`GradCheckReport` (kinks counted, not failed)."""
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

    def scalar() -> tuple[float, list[torch.Tensor]]:
        """s at the current values and the pieces its non-smooth ops took."""
        with torch.no_grad(), _PieceRecorder() as recorder:
            value = float((fn(*args).double() * projection).sum())
        return value, recorder.pieces

    tensors = [t for _, t in checked]
    analytic = torch.autograd.grad((output.double() * projection).sum(), tensors, allow_unused=True)
    centre, centre_pieces = scalar()  # s₀ from the same evaluation path as s₊ and s₋
    results = []
    for (name, tensor), grad in zip(checked, analytic, strict=True):
        grad = torch.zeros_like(tensor) if grad is None else grad
        flat, flat_grad = tensor.data.view(-1), grad.reshape(-1)
        if max_elements is None or flat.numel() <= max_elements:
            indices = torch.arange(flat.numel())
        else:
            indices = torch.randperm(flat.numel(), generator=generator)[:max_elements]
        expected = flat_grad[indices].double()
        tolerance = atol + rtol * expected.abs()
        numeric = torch.empty(len(indices), dtype=torch.float64)
        kink = torch.zeros(len(indices), dtype=torch.bool)
        # one central difference per element: the function is a black box to us
        for slot, i in enumerate(indices.tolist()):
            original = flat[i].item()
            flat[i] = original + eps
            upper, upper_pieces = scalar()
            flat[i] = original - eps
            lower, lower_pieces = scalar()
            flat[i] = original
            numeric[slot] = (upper - lower) / (2 * eps)
            kink[slot] = not (
                _same_pieces(upper_pieces, centre_pieces)
                and _same_pieces(lower_pieces, centre_pieces)
            ) or (
                abs(numeric[slot] - expected[slot]) > tolerance[slot]
                and _one_sided_kink(upper, centre, lower, eps, expected[slot], tolerance[slot])
            )
        smooth = ~kink
        error = (numeric - expected).abs()[smooth]
        scale = torch.maximum(numeric.abs(), expected.abs())[smooth]
        relative = torch.where(scale > 0, error / scale.clamp_min(1e-300), torch.zeros_like(error))
        results.append(
            TensorCheck(
                name=name,
                checked=len(indices),
                max_abs_error=float(error.max()) if len(error) else 0.0,
                max_rel_error=float(relative.max()) if len(relative) else 0.0,
                passed=bool((error <= tolerance[smooth]).all()),
                kinks=int(kink.sum()),
            )
        )
    return GradCheckReport(tuple(results))


def _one_sided_kink(
    upper: float, centre: float, lower: float, step: float, analytic: float, tolerance: float
) -> bool:
    """The slope changes within ±step and autograd's value is one side's slope."""
    forward, backward = (upper - centre) / step, (centre - lower) / step
    return abs(forward - backward) > tolerance and (
        min(abs(forward - analytic), abs(backward - analytic)) <= tolerance
    )


def _same_pieces(first: list[torch.Tensor], second: list[torch.Tensor]) -> bool:
    return len(first) == len(second) and all(
        torch.equal(a, b) for a, b in zip(first, second, strict=True)
    )


# elementwise non-smooth ops by name -> their kink points, each as (keyword, default, position
# in args): the point is the keyword argument, else the positional one, else the default;
# keyword None: a fixed point (the default)
_ELEMENTWISE_KINKS: dict[str, tuple[tuple[str | None, float | None, int], ...]] = {
    "relu": ((None, 0.0, -1),),
    "relu_": ((None, 0.0, -1),),
    "leaky_relu": ((None, 0.0, -1),),
    "leaky_relu_": ((None, 0.0, -1),),
    "abs": ((None, 0.0, -1),),
    "abs_": ((None, 0.0, -1),),
    "threshold": (("threshold", None, 1),),
    "_threshold": (("threshold", None, 1),),
    "threshold_": (("threshold", None, 1),),
    "hardtanh": (("min_val", -1.0, 1), ("max_val", 1.0, 2)),
    "hardtanh_": (("min_val", -1.0, 1), ("max_val", 1.0, 2)),
    "relu6": ((None, 0.0, -1), (None, 6.0, -1)),
    "hardswish": ((None, -3.0, -1), (None, 3.0, -1)),
    "hardsigmoid": ((None, -3.0, -1), (None, 3.0, -1)),
    "clamp": (("min", None, 1), ("max", None, 2)),
    "clamp_": (("min", None, 1), ("max", None, 2)),
    "clip": (("min", None, 1), ("max", None, 2)),
    "clip_": (("min", None, 1), ("max", None, 2)),
    "clamp_min": (("min", None, 1),),
    "clamp_min_": (("min", None, 1),),
    "clamp_max": (("max", None, 1),),
    "clamp_max_": (("max", None, 1),),
}
_PAIRWISE = {"maximum", "minimum", "fmax", "fmin"}
_POOLS = {
    "max_pool1d": F.max_pool1d,
    "max_pool2d": F.max_pool2d,
    "max_pool3d": F.max_pool3d,
    "adaptive_max_pool1d": F.adaptive_max_pool1d,
    "adaptive_max_pool2d": F.adaptive_max_pool2d,
    "adaptive_max_pool3d": F.adaptive_max_pool3d,
}


class _PieceRecorder(TorchFunctionMode):
    """Records, for every call of a non-smooth op, which piece of it each element took."""

    def __init__(self) -> None:
        super().__init__()
        self.pieces: list[torch.Tensor] = []

    def __torch_function__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        # before the call: in-place ops overwrite their input
        if name in _ELEMENTWISE_KINKS and isinstance(args[0], torch.Tensor):
            for keyword, default, position in _ELEMENTWISE_KINKS[name]:
                if keyword is None:
                    point = default
                elif keyword in kwargs:
                    point = kwargs[keyword]
                else:
                    point = args[position] if len(args) > position else default
                if point is not None:
                    self.pieces.append(torch.sign(args[0] - point))
        elif name in _PAIRWISE and all(isinstance(a, torch.Tensor) for a in args[:2]):
            self.pieces.append(torch.sign(args[0] - args[1]))
        elif name in _POOLS:
            _, argmax = _POOLS[name](*args, **{**kwargs, "return_indices": True})
            self.pieces.append(argmax)
        return func(*args, **kwargs)


# ``dlskills.diagnose.gradcheck`` is this function (the package exports it under the module name)
gradcheck = check_gradients
