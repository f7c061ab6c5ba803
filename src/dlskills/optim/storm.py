"""STORM, STOchastic Recursive Momentum (catalog 1905.10018; Cutkosky & Orabona, NeurIPS 2019).

Variance reduction without mega-batches: the momentum estimate d is corrected by the gradient
difference between the current and the previous iterate *on the same minibatch*. Rule, as the
authors' TensorFlow optimizer (google-research/storm_optimizer) implements it, per coordinate,
with g = ∇f(θ_t; ξ_t) and g_prev = ∇f(θ_{t−1}; ξ_t):

    M   ← max(M, ‖g‖)                      (per parameter tensor, M₀ = g_max)
    G   ← G + g²                            (G₀ = g_max³)
    η   = k·(w + G)^(−1/3)
    a   = min(1, c·η²)
    d   ← clip(g + (1 − a)·(d − g_prev), −M, M)    (d₀ = 0)
    θ_{t−1} ← θ_t;   θ_{t+1} = θ_t − η·d

Defaults k = 1 (the code's ``lr``), w = 10 (``eta``), c = 100 (``momentum``), g_max = 0.01, as
in the authors' code. Deviations from the paper: the paper's η and a use the norms of whole
gradients (scalars); the code, followed here, is per-coordinate and clips d to the largest
gradient norm seen. On the first step the previous iterate is θ itself (the code initialises it
to the initial value), so g_prev = g and no second evaluation is needed.

API: ``step(closure)`` is required. The closure must zero the gradients, evaluate the loss on
*one fixed minibatch*, call ``backward()`` and return the loss (torch's LBFGS convention). STORM
calls it at θ_t (that loss is returned) and then, with the parameters temporarily set to
θ_{t−1}, a second time for g_prev; so each step costs two forward/backward passes on the same
batch. Keep randomness (dropout) identical across the two calls, e.g. by re-seeding inside the
closure, or g − g_prev also measures the dropout noise.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from dlskills.optim import _native
from dlskills.optim._base import ZooOptimizer
from dlskills.optim._foreach import (
    check_fused,
    check_nonnegative,
    check_positive,
    dispatch,
)
from dlskills.optim._registry import register_optimizer


def _single_tensor_storm(
    params: list[Tensor],
    grads: list[Tensor],
    prev_grads: list[Tensor],
    iterates: list[Tensor],
    grad_estimates: list[Tensor],
    sum_grad_squares: list[Tensor],
    max_grad_norms: list[Tensor],
    *,
    k: float,
    w: float,
    c: float,
) -> None:
    for i, param in enumerate(params):
        grad, estimate = grads[i], grad_estimates[i]
        max_norm = max_grad_norms[i]
        torch.maximum(max_norm, torch.linalg.vector_norm(grad), out=max_norm)
        sum_grad_squares[i].addcmul_(grad, grad)
        lr = sum_grad_squares[i].add(w).pow_(-1.0 / 3.0).mul_(k)
        keep = 1.0 - lr.square().mul_(c).clamp_(max=1.0)
        estimate.sub_(prev_grads[i]).mul_(keep).add_(grad)
        estimate.clamp_(-max_norm, max_norm)
        torch.addcmul(iterates[i], lr, estimate, value=-1.0, out=param)


def _multi_tensor_storm(
    params: list[Tensor],
    grads: list[Tensor],
    prev_grads: list[Tensor],
    iterates: list[Tensor],
    grad_estimates: list[Tensor],
    sum_grad_squares: list[Tensor],
    max_grad_norms: list[Tensor],
    *,
    k: float,
    w: float,
    c: float,
) -> None:
    torch._foreach_maximum_(max_grad_norms, torch._foreach_norm(grads))
    torch._foreach_addcmul_(sum_grad_squares, grads, grads)
    lrs = torch._foreach_add(sum_grad_squares, w)
    torch._foreach_pow_(lrs, -1.0 / 3.0)
    torch._foreach_mul_(lrs, k)
    keep = torch._foreach_mul(lrs, lrs)
    torch._foreach_mul_(keep, c)
    torch._foreach_clamp_max_(keep, 1.0)
    torch._foreach_neg_(keep)
    torch._foreach_add_(keep, 1.0)
    torch._foreach_sub_(grad_estimates, prev_grads)
    torch._foreach_mul_(grad_estimates, keep)
    torch._foreach_add_(grad_estimates, grads)
    torch._foreach_maximum_(grad_estimates, torch._foreach_neg(max_grad_norms))
    torch._foreach_minimum_(grad_estimates, max_grad_norms)
    torch._foreach_copy_(params, iterates)
    torch._foreach_addcmul_(params, lrs, grad_estimates, value=-1.0)


def storm(
    params: list[Tensor],
    grads: list[Tensor],
    prev_grads: list[Tensor],
    iterates: list[Tensor],
    grad_estimates: list[Tensor],
    sum_grad_squares: list[Tensor],
    max_grad_norms: list[Tensor],
    *,
    k: float,
    w: float,
    c: float,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> None:
    """Functional STORM update over lists: ``prev_grads`` are the gradients at the previous
    iterate on the current batch, ``iterates`` hold θ_t (the parameters may hold θ_{t−1} by
    then; pass the parameters themselves otherwise), θ_t − η·d is written to ``params``;
    ``max_grad_norms`` are 0-d tensors."""
    dispatch(
        _single_tensor_storm,
        _multi_tensor_storm,
        (params, grads, prev_grads, iterates, grad_estimates, sum_grad_squares, max_grad_norms),
        foreach,
        fused=fused,
        native=_native.storm,
        k=k,
        w=w,
        c=c,
    )


@register_optimizer(
    "storm",
    catalog_id="1905.10018",
    needs_closure=True,
    supports_foreach=True,
    supports_fused=True,
    elementwise=True,
    test_function="ill_conditioned_quadratic",
    test_kwargs={"lr": 1.0, "w": 10.0, "c": 100.0},
    test_steps=600,
    test_tolerance=1e-3,
)
class STORM(ZooOptimizer):
    """STORM with the authors' per-coordinate rule; ``step(closure)`` evaluates the closure at
    the current and at the previous iterate (see the module docstring for the closure contract).

    Args:
        params: tensors or param groups.
        lr: the learning-rate scale k of the paper (> 0); the authors' code calls it ``lr``, and
            the name lets torch LR schedulers scale it.
        w: initial denominator of the adaptive rate (≥ 0).
        c: momentum scale; the correction weight is a = min(1, c·η²) (≥ 0).
        g_max: initial estimate of the largest gradient (> 0); G starts at g_max³.
        foreach: True/False force a path; None picks per ``dlskills.optim._foreach``.
        fused: None (default) runs the fused CPU kernel (``dlskills.optim._native``) when the
            tensors allow and ``foreach`` is None; True requires it; False never uses it.
    """

    real_only = True

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        w: float = 10.0,
        c: float = 100.0,
        g_max: float = 0.01,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        defaults = {
            "lr": lr,
            "w": w,
            "c": c,
            "g_max": g_max,
            "foreach": foreach,
            "fused": fused,
        }
        super().__init__(params, defaults)
        self._spares: dict[Tensor, Tensor] = {}

    @staticmethod
    def _validate(group: dict[str, Any]) -> None:
        check_positive("lr", group["lr"])
        check_nonnegative("w", group["w"])
        check_nonnegative("c", group["c"])
        check_positive("g_max", group["g_max"])
        check_fused(group["foreach"], group.get("fused"))

    def _spare(self, p: Tensor) -> Tensor:
        """A parameter-sized scratch buffer, kept across steps (not part of the state)."""
        spare = self._spares.get(p)
        if spare is None or spare.shape != p.shape or spare.dtype != p.dtype:
            spare = self._spares[p] = torch.empty_like(p)
        return spare

    def _init_state(self, p: Tensor, g_max: float) -> dict[str, Any]:
        return {
            "prev_param": p.detach().clone(),
            "grad_estimate": torch.zeros_like(p),
            "sum_grad_squared": torch.full_like(p, g_max**3),
            "max_grad_norm": torch.tensor(g_max, dtype=p.dtype, device=p.device),
        }

    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        if closure is None:
            raise ValueError(
                "STORM.step needs a closure (zero_grad, loss on one fixed batch, backward, "
                "return loss): it re-evaluates the batch at the previous iterate"
            )
        with torch.enable_grad():
            loss = closure()
        active = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        if any(p.grad.is_sparse for p in active):
            raise RuntimeError("STORM does not support sparse gradients")
        grads = {p: p.grad for p in active}
        with torch.no_grad():
            has_previous = any(self.state[p] for p in active)
            for group in self.param_groups:
                for p in group["params"]:
                    if p in grads and not self.state[p]:
                        self.state[p].update(self._init_state(p, group["g_max"]))
        prev_grads = grads
        if has_previous:
            # θ_t waits in a spare buffer while the parameters hold θ_{t−1}; the update reads
            # θ_t from there and writes θ_{t+1} to the parameters, and the spare becomes the
            # stored previous iterate (the old one the next spare): two copies a step, no
            # allocation (a fresh parameter-sized buffer per step cost more than the update)
            spares = [self._spare(p) for p in active]
            previous = [self.state[p]["prev_param"] for p in active]
            with torch.no_grad():
                torch._foreach_copy_(spares, active)
                torch._foreach_copy_(active, previous)
            for p in active:  # the second backward must not accumulate into (or zero) g
                p.grad = None
            try:
                with torch.enable_grad():
                    closure()
            except BaseException:
                with torch.no_grad():
                    torch._foreach_copy_(active, spares)
                for p in active:
                    p.grad = grads[p]
                raise
            prev_grads = {p: grads[p] if p.grad is None else p.grad for p in active}
            for p, spare, old in zip(active, spares, previous):
                self.state[p]["prev_param"] = spare
                self._spares[p] = old
        with torch.no_grad():
            for group in self.param_groups:
                params = [p for p in group["params"] if p in grads]
                if not params:
                    continue
                states = [self.state[p] for p in params]
                for p in params:
                    p.grad = grads[p]
                self.functional(
                    params,
                    [grads[p] for p in params],
                    [prev_grads[p] for p in params],
                    [s["prev_param"] for s in states],  # θ_t
                    [s["grad_estimate"] for s in states],
                    [s["sum_grad_squared"] for s in states],
                    [s["max_grad_norm"] for s in states],
                    k=group["lr"],
                    w=group["w"],
                    c=group["c"],
                    foreach=group["foreach"],
                    fused=group.get("fused"),  # absent from pre-fused checkpoints
                )
        return loss

    functional = staticmethod(storm)
