"""CurveBall: one gradient step on the Newton system per parameter step (catalog 1805.08095;
Henriques, Ehrhardt, Albanie & Vedaldi, "Small steps and giant leaps: Minimal Newton solvers for
deep learning", ICCV 2019).

Instead of solving (C + λI)·z = −g at every step, CurveBall keeps the solution estimate z across
steps and improves it by one momentum-gradient step on the quadratic model, reusing z as the
parameter update. With C = JᵀH_L J the Gauss-Newton matrix (J the Jacobian of the model outputs
w.r.t. the parameters, H_L the Hessian of the loss w.r.t. the outputs) or C = H the Hessian:

    Δz = C z + g + λ z                         (gradient of ½zᵀ(C + λI)z + gᵀz)
    [ΔzᵀĈΔz  zᵀĈΔz] [ β]   [gᵀΔz]
    [zᵀĈΔz   zᵀĈz ] [−ρ] = [gᵀz ]              Ĉ = C + λI: the 2×2 solve for ρ, β
    z ← ρ·z − β·Δz,       θ ← θ + lr·z
    every T = 5 steps:  M = −½·[β, −ρ]·[gᵀΔz, gᵀz]  (predicted change),
                        r = (L(θ_new) − L(θ)) / M  (the same batch),
                        λ ← λ / ω if r < ½,  λ ← λ·ω if r > 3/2,  ω = 0.999^T

as in the authors' code (jotaf98/curveball, MatConvNet), which also starts from ρ = 0.9,
β = 0.1, λ = 1 and, when the 2×2 system is singular (z = 0 on the first step), falls back to
finite values; we take the minimum-norm least-squares solution, which at z = 0 is ρ = 0,
β = gᵀΔz/ΔzᵀĈΔz (an exact line search along Δz). The Gauss-Newton form assumes the loss depends
on the parameters only through ``outputs`` (put weight decay in the model, not the loss).

With fixed ρ, β (``auto_params=False``) and ``auto_lambda`` on, the 2×2 matrix A is still formed
on the λ-update steps (one more product C·Δz there) and M is the damped model's change for the
step actually taken, x = [β, −ρ]: M = −bᵀx + ½·xᵀA x, which equals −½·bᵀx when A x = b (the
authors' formula, right only at the solution; their PyTorch code solves the system whenever
auto-λ is on and then uses the solved ρ, β, and their MatConvNet code needs ``autoparam`` for
``autolambda``). M is the change of θ + z, i.e. for lr = 1 (the authors have no lr multiplier).

Closure contract (differs from torch's: CurveBall differentiates the closure itself, so the
closure must NOT call ``backward``):

    def closure():
        outputs = model(x)
        return loss_fn(outputs, y), outputs       # Gauss-Newton products (the paper's choice)
    # or: return loss_fn(model(x), y)             # Hessian products (Pearlmutter's R-op)

Products C·v use reverse-over-reverse autodiff on the closure's graph: J·v by the double-backward
trick (differentiate the vector-Jacobian product w.r.t. its dummy cotangent), H_L·(Jv) by
differentiating ∂L/∂outputs, and Jᵀ(·) by one more backward. Each step costs one closure call (two
on λ-update steps) and three to four extra backward passes. ``gauss_newton_product`` and
``hessian_product`` are public and tested against explicit matrices.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from dlskills.optim._base import ZooOptimizer
from dlskills.optim._foreach import (
    check_nonnegative,
    check_positive,
    reject_sparse,
)
from dlskills.optim._registry import register_optimizer


def _dot(a: Sequence[Tensor], b: Sequence[Tensor]) -> Tensor:
    return sum((x * y).sum() for x, y in zip(a, b))  # type: ignore[return-value]


class _GaussNewton:
    """C = JᵀH_L J for one closure evaluation (loss and outputs from the same graph)."""

    def __init__(self, loss: Tensor, outputs: Tensor, params: list[Tensor]) -> None:
        self.outputs, self.params = outputs, params
        self.loss_grad = torch.autograd.grad(loss, outputs, create_graph=True)[0]
        self.cotangent = torch.zeros_like(outputs, requires_grad=True)
        self.vjp = torch.autograd.grad(
            outputs, params, grad_outputs=self.cotangent, create_graph=True, allow_unused=True
        )
        self.gradient = self.transpose(self.loss_grad.detach())

    def jvp(self, vectors: Sequence[Tensor]) -> Tensor:
        pairs = [(v, d) for v, d in zip(self.vjp, vectors) if v is not None]
        (result,) = torch.autograd.grad(
            [v for v, _ in pairs],
            self.cotangent,
            grad_outputs=[d for _, d in pairs],
            retain_graph=True,
        )
        return result

    def transpose(self, cotangent: Tensor) -> list[Tensor]:
        grads = torch.autograd.grad(
            self.outputs,
            self.params,
            grad_outputs=cotangent,
            retain_graph=True,
            allow_unused=True,
        )
        return [torch.zeros_like(p) if g is None else g for p, g in zip(self.params, grads)]

    def __call__(self, vectors: Sequence[Tensor]) -> list[Tensor]:
        jv = self.jvp(vectors)
        (hjv,) = torch.autograd.grad(
            self.loss_grad, self.outputs, grad_outputs=jv, retain_graph=True
        )
        return self.transpose(hjv)


class _Hessian:
    """C = H, the loss Hessian, by Pearlmutter's R-operator (double backward)."""

    def __init__(self, loss: Tensor, params: list[Tensor]) -> None:
        grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        self.params = params
        self.grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
        self.gradient = [g.detach() for g in self.grads]

    def __call__(self, vectors: Sequence[Tensor]) -> list[Tensor]:
        products = torch.autograd.grad(
            [g for g in self.grads if g.requires_grad],
            self.params,
            grad_outputs=[v for g, v in zip(self.grads, vectors) if g.requires_grad],
            retain_graph=True,
            allow_unused=True,
        )
        return [torch.zeros_like(p) if h is None else h for p, h in zip(self.params, products)]


def _curvature(result: Any, params: list[Tensor]) -> tuple[Tensor, _GaussNewton | _Hessian]:
    """(loss, product operator) from what the closure returned."""
    if isinstance(result, tuple | list) and len(result) != 2:
        raise ValueError("the closure must return loss or (loss, outputs)")
    loss = result[0] if isinstance(result, tuple | list) else result
    if not (isinstance(loss, Tensor) and loss.requires_grad):
        raise ValueError(
            "CurveBall's closure must return a loss that still has its graph (do not call "
            "backward() or detach inside the closure); it differentiates the closure itself"
        )
    if isinstance(result, tuple | list):
        return loss, _GaussNewton(loss, result[1], params)
    return loss, _Hessian(loss, params)


def _solve_2x2(a11: float, a12: float, a22: float, b1: float, b2: float) -> tuple[float, float]:
    """Minimum-norm solution (x1, x2) of [[a11, a12], [a12, a22]]·x = b, in closed form (plain
    floats: deterministic to the last bit, which checkpoint resumption relies on)."""
    det = a11 * a22 - a12 * a12
    if abs(det) > 1e-12 * max(a11 * a22, a12 * a12, 1e-300):
        return (a22 * b1 - a12 * b2) / det, (a11 * b2 - a12 * b1) / det
    # rank ≤ 1 (z = 0 on the first step): A = t·uuᵀ with t = trace, pseudo-inverse A / t²
    trace = a11 + a22
    if trace == 0.0:
        return 0.0, 0.0
    return (a11 * b1 + a12 * b2) / trace**2, (a12 * b1 + a22 * b2) / trace**2


def gauss_newton_product(
    loss: Tensor, outputs: Tensor, params: list[Tensor], vectors: list[Tensor]
) -> list[Tensor]:
    """JᵀH_L J·v for a loss computed from ``outputs`` (graph kept, so it can be called again)."""
    return _GaussNewton(loss, outputs, params)(vectors)


def hessian_product(loss: Tensor, params: list[Tensor], vectors: list[Tensor]) -> list[Tensor]:
    """H·v, the exact Hessian-vector product of ``loss`` w.r.t. ``params``."""
    return _Hessian(loss, params)(vectors)


@register_optimizer(
    "curveball",
    catalog_id="1805.08095",
    needs_closure=True,
    closure="graph",
    supports_foreach=False,
    elementwise=False,
    test_function="ill_conditioned_quadratic",
    test_kwargs={},
    test_steps=100,
    test_tolerance=1e-3,
)
class CurveBall(ZooOptimizer):
    """CurveBall: z ← ρz − β(Cz + g + λz), θ ← θ + lr·z with automatic ρ, β and λ.

    Args:
        params: tensors or param groups (one global ρ, β, λ: the 2×2 solve spans all groups;
            groups may set their own ``lr``).
        lr: multiplier on the update z (> 0); 1 in the paper.
        lambd: initial damping λ (≥ 0).
        momentum: ρ used when ``auto_params`` is False (and the initial value), in [0, 1].
        beta: β used when ``auto_params`` is False (and the initial value), > 0.
        auto_params: solve the 2×2 system for ρ, β at every step.
        auto_lambda: adapt λ from the ratio of actual to predicted loss change.
        lambda_interval: T, steps between λ updates (each costs one extra closure call).
        lambda_factor: ω per step (λ changes by ω^T at most per update), in (0, 1).
    """

    real_only = True

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        lambd: float = 1.0,
        momentum: float = 0.9,
        beta: float = 0.1,
        auto_params: bool = True,
        auto_lambda: bool = True,
        lambda_interval: int = 5,
        lambda_factor: float = 0.999,
    ) -> None:
        check_nonnegative("lambd", lambd)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"Invalid momentum: {momentum!r} (must be in [0, 1])")
        check_positive("beta", beta)
        if not (isinstance(lambda_interval, int) and lambda_interval >= 1):
            raise ValueError(f"Invalid lambda_interval: {lambda_interval!r} (must be an int >= 1)")
        if not 0.0 < lambda_factor < 1.0:
            raise ValueError(f"Invalid lambda_factor: {lambda_factor!r} (must be in (0, 1))")
        super().__init__(params, {"lr": lr})
        self.auto_params = auto_params
        self.auto_lambda = auto_lambda
        self.lambda_interval = lambda_interval
        self.lambda_factor = lambda_factor
        self._initial = {"lambd": float(lambd), "momentum": float(momentum), "beta": float(beta)}

    @staticmethod
    def _validate(group: dict[str, Any]) -> None:
        check_positive("lr", group["lr"])

    def _global_state(self) -> dict[str, Any]:
        state = self.state[self.param_groups[0]["params"][0]]
        if "curveball_step" not in state:
            state.update(curveball_step=0, ratio=float("nan"), **self._initial)
        return state

    @property
    def lambd(self) -> float:
        """The current damping λ."""
        return self._global_state()["lambd"]

    def step(self, closure: Callable[[], Any] | None = None) -> Tensor:
        if closure is None:
            raise ValueError("CurveBall.step needs a closure returning loss or (loss, outputs)")
        params = self.trainable()
        glob = self._global_state()
        adapt_lambda = self.auto_lambda and glob["curveball_step"] % self.lambda_interval == 0
        with torch.enable_grad():
            loss, product = _curvature(closure(), params)
            reject_sparse("CurveBall", product.gradient)
            z = []
            for p in params:
                state = self.state[p]
                if "z" not in state:
                    state["z"] = torch.zeros_like(p)
                z.append(state["z"])
            lambd, gradient = glob["lambd"], product.gradient
            cz = product(z)
            delta = [c + g + lambd * zi for c, g, zi in zip(cz, gradient, z)]
            solve = self.auto_params or adapt_lambda  # the λ update needs the 2×2 system
            if solve:
                cdelta = product(delta)
        with torch.no_grad():
            b1, b2 = float(_dot(gradient, delta)), float(_dot(gradient, z))
            if solve:
                a11 = float(_dot(delta, cdelta) + lambd * _dot(delta, delta))
                a12 = float(_dot(z, cdelta) + lambd * _dot(delta, z))
                a22 = float(_dot(z, cz) + lambd * _dot(z, z))
            if self.auto_params:
                beta, minus_rho = _solve_2x2(a11, a12, a22, b1, b2)
                if math.isfinite(beta) and math.isfinite(minus_rho):
                    glob["beta"], glob["momentum"] = beta, -minus_rho
                else:  # the authors' sanity fallback
                    glob["beta"], glob["momentum"] = 0.0, 0.0
            beta, rho = glob["beta"], glob["momentum"]
            offset = 0
            for group in self.param_groups:
                for p in group["params"]:
                    if not p.requires_grad:
                        continue
                    zi, di = z[offset], delta[offset]
                    offset += 1
                    zi.mul_(rho).sub_(di, alpha=beta)
                    p.add_(zi, alpha=group["lr"])
            if adapt_lambda:
                if self.auto_params:  # the authors' M = −½ bᵀx at the solution A x = b
                    predicted = -0.5 * (beta * b1 - rho * b2)
                else:  # the damped model's change for the step taken: −bᵀx + ½ xᵀA x
                    quadratic = beta * beta * a11 - 2 * beta * rho * a12 + rho * rho * a22
                    predicted = -(beta * b1 - rho * b2) + 0.5 * quadratic
                new_result = closure()
                new_loss = new_result[0] if isinstance(new_result, tuple | list) else new_result
                ratio = (float(new_loss) - float(loss)) / predicted if predicted else float("nan")
                factor = self.lambda_factor**self.lambda_interval
                if ratio < 0.5:
                    glob["lambd"] = lambd / factor
                elif ratio > 1.5:
                    glob["lambd"] = lambd * factor
                glob["ratio"] = ratio
            glob["curveball_step"] += 1
        return loss.detach()
