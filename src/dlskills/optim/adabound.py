"""AdaBound and AMSBound (catalog 1902.09843; Luo, Xiong, Liu & Sun, ICLR 2019).

Adam whose per-coordinate step is clipped into a band that shrinks towards an SGD learning rate,
so training starts adaptive and ends like SGD. Rule, exactly as the authors' ``adabound``
package (v0.0.5) implements it, for each parameter θ with gradient g at step t = 1, 2, ...:

    g   ← g + weight_decay·θ                                  (coupled L2, as the reference)
    m   ← β1·m + (1 − β1)·g
    v   ← β2·v + (1 − β2)·g²
    v̂   ← max(v̂, v) (AMSBound) or v̂ = v (AdaBound)
    α_t = lr·√(1 − β2ᵗ)/(1 − β1ᵗ)                             (bias corrections folded into α)
    η*  = final_lr·lr/base_lr                                  (base_lr: the group's lr at
                                                                construction, so LR schedulers
                                                                scale the bounds too)
    lo  = η*·(1 − 1/(γt + 1)),   hi = η*·(1 + 1/(γt))
    θ   ← θ − clip(α_t/(√v̂ + ε), lo, hi) ⊙ m                  (ε added after the square root)

Deviations from the paper: the paper writes the bounds with final_lr directly and the
bias-corrected m̂; the code (matched here) rescales final_lr by lr/base_lr and folds both bias
corrections into α_t. base_lr is stored in each param group (``group["base_lr"]``) so it survives
``state_dict()`` round-trips; the reference keeps it outside the state dict. base_lr = 0 would
divide by zero, so lr must be > 0 at construction.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from dlskills.optim import _native
from dlskills.optim._base import ZooOptimizer
from dlskills.optim._foreach import (
    check_fused,
    check_nonnegative,
    check_positive,
    check_unit_interval,
    dispatch,
    new_step_counter,
    scalar_or_list,
    step_counts,
)
from dlskills.optim._registry import register_optimizer


def _single_tensor_adabound(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    max_exp_avg_sqs: list[Tensor],
    step_sizes: list[float],
    lower_bounds: list[float],
    upper_bounds: list[float],
    *,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    amsbound: bool,
) -> None:
    for i, param in enumerate(params):
        grad = grads[i]
        if weight_decay != 0:
            grad = grad.add(param, alpha=weight_decay)
        exp_avg, exp_avg_sq = exp_avgs[i], exp_avg_sqs[i]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        if amsbound:
            torch.maximum(max_exp_avg_sqs[i], exp_avg_sq, out=max_exp_avg_sqs[i])
            denom = max_exp_avg_sqs[i].sqrt().add_(eps)
        else:
            denom = exp_avg_sq.sqrt().add_(eps)
        # reciprocal-then-scale (not full_like(step).div_) keeps the step size a symbolic number
        # under compile_step; it differs from the reference's rounding by at most 1 ulp
        ratio = denom.reciprocal_().mul_(step_sizes[i]).clamp_(lower_bounds[i], upper_bounds[i])
        param.addcmul_(ratio, exp_avg, value=-1.0)


def _multi_tensor_adabound(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    max_exp_avg_sqs: list[Tensor],
    step_sizes: list[float],
    lower_bounds: list[float],
    upper_bounds: list[float],
    *,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    amsbound: bool,
) -> None:
    if weight_decay != 0:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
    if amsbound:
        torch._foreach_maximum_(max_exp_avg_sqs, exp_avg_sqs)
        denom = torch._foreach_sqrt(max_exp_avg_sqs)
    else:
        denom = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_add_(denom, eps)
    torch._foreach_reciprocal_(denom)
    torch._foreach_mul_(denom, scalar_or_list(step_sizes))
    torch._foreach_clamp_min_(denom, scalar_or_list(lower_bounds))
    torch._foreach_clamp_max_(denom, scalar_or_list(upper_bounds))
    torch._foreach_addcmul_(params, denom, exp_avgs, value=-1.0)


def adabound(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    max_exp_avg_sqs: list[Tensor],
    steps: list[int],
    *,
    lr: float,
    base_lr: float,
    final_lr: float,
    gamma: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    amsbound: bool,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> None:
    """Functional AdaBound/AMSBound over lists (``steps``: each tensor's step count after the
    increment; ``max_exp_avg_sqs`` is empty unless ``amsbound``)."""
    bounded_lr = final_lr * lr / base_lr
    step_sizes = [lr * math.sqrt(1 - beta2**t) / (1 - beta1**t) for t in steps]
    lower_bounds = [bounded_lr * (1 - 1 / (gamma * t + 1)) for t in steps]
    upper_bounds = [bounded_lr * (1 + 1 / (gamma * t)) for t in steps]
    dispatch(
        _single_tensor_adabound,
        _multi_tensor_adabound,
        (
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            max_exp_avg_sqs,
            step_sizes,
            lower_bounds,
            upper_bounds,
        ),
        foreach,
        fused=fused,
        native=_native.adabound,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        weight_decay=weight_decay,
        amsbound=amsbound,
    )


@register_optimizer(
    "adabound",
    catalog_id="1902.09843",
    needs_closure=False,
    supports_foreach=True,
    supports_fused=True,
    elementwise=True,
    reference="adabound",
    test_function="ill_conditioned_quadratic",
    test_kwargs={"lr": 0.05, "final_lr": 0.05},
    test_steps=600,
    test_tolerance=1e-3,
)
class AdaBound(ZooOptimizer):
    """AdaBound (``amsbound=False``) / AMSBound (``amsbound=True``), the authors' exact rule.

    Args:
        params: tensors or param groups.
        lr: Adam step size α; also the group's ``base_lr`` (fixed at construction, must be > 0).
        betas: (β1, β2) for the first and second moments.
        final_lr: the SGD learning rate the bounds converge to (scaled by lr/base_lr).
        gamma: convergence speed of the bounds.
        eps: added to √v̂.
        weight_decay: coupled L2 coefficient (added to the gradient).
        amsbound: keep the running maximum of v (AMSBound).
        foreach: True/False force the foreach/for-loop path; None picks per
            ``dlskills.optim._foreach`` (the rule is documented there).
        fused: None (default) runs the fused CPU kernel (``dlskills.optim._native``) when the
            tensors allow and ``foreach`` is None; True requires it; False never uses it.
    """

    real_only = True

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        final_lr: float = 0.1,
        gamma: float = 1e-3,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsbound: bool = False,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": betas,
            "final_lr": final_lr,
            "gamma": gamma,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsbound": amsbound,
            "foreach": foreach,
            "fused": fused,
        }
        super().__init__(params, defaults)

    @staticmethod
    def _validate(group: dict[str, Any]) -> None:
        check_positive("lr", group["lr"])
        betas = group["betas"]
        if not (isinstance(betas, tuple | list) and len(betas) == 2):
            raise ValueError(f"Invalid betas: {betas!r} (must be a pair)")
        check_unit_interval("betas[0]", betas[0])
        check_unit_interval("betas[1]", betas[1])
        check_nonnegative("final_lr", group["final_lr"])
        check_unit_interval("gamma", group["gamma"])
        check_nonnegative("eps", group["eps"])
        check_nonnegative("weight_decay", group["weight_decay"])
        check_fused(group["foreach"], group.get("fused"))
        if group["gamma"] == 0:
            raise ValueError("Invalid gamma: 0 (the upper bound 1/(gamma*t) would be infinite)")

    def _join(self, group: dict[str, Any]) -> None:
        if "base_lr" not in group:
            group["base_lr"] = group["lr"]
        check_positive("base_lr (the group's lr at construction)", group["base_lr"])

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = {
            "step": new_step_counter(),
            "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
            "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
        }
        if group["amsbound"]:
            state["max_exp_avg_sq"] = torch.zeros_like(p)
        return state

    def _update(
        self,
        group: dict[str, Any],
        params: list[Tensor],
        grads: list[Tensor],
        states: list[dict[str, Any]],
    ) -> None:
        amsbound = group["amsbound"]
        beta1, beta2 = group["betas"]
        self.functional(
            params,
            grads,
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [s["max_exp_avg_sq"] for s in states] if amsbound else [],
            step_counts(states),
            lr=group["lr"],
            base_lr=group["base_lr"],
            final_lr=group["final_lr"],
            gamma=group["gamma"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            amsbound=amsbound,
            foreach=group["foreach"],
            fused=group.get("fused"),  # absent from pre-fused checkpoints
        )

    functional = staticmethod(adabound)


@register_optimizer(
    "amsbound",
    catalog_id="1902.09843",
    needs_closure=False,
    supports_foreach=True,
    supports_fused=True,
    elementwise=True,
    reference="adabound",
    test_function="ill_conditioned_quadratic",
    test_kwargs={"lr": 0.05, "final_lr": 0.05},
    test_steps=600,
    test_tolerance=1e-3,
)
def amsbound(params: Any, lr: float = 1e-3, **kwargs: Any) -> AdaBound:
    """AMSBound: ``AdaBound(..., amsbound=True)``."""
    return AdaBound(params, lr=lr, amsbound=True, **kwargs)
