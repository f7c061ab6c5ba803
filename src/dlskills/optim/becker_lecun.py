"""Diagonal pseudo-Newton (catalog becker-lecun-1988; Becker & LeCun, "Improving the convergence
of back-propagation learning with second-order methods", 1988 Connectionist Models Summer School).

Each weight gets its own step size from the curvature along its own axis: Newton's method with
the Hessian replaced by its diagonal, made safe by taking the absolute value and adding a
damping term (so flat or negatively curved directions do not produce huge steps):

    ĥ   = v ⊙ (H v),   v ~ Rademacher (±1)           (Hutchinson: E[ĥ] = diag H)
    h   ← γ·h + (1 − γ)·ĥ,   h̃ = h / (1 − γᵗ)         (running, zero-debiased average)
    θ   ← θ − lr · g / (|h̃| + μ)

Curvature estimate (the paper back-propagates second derivatives through the network, i.e. a
Gauss-Newton-like diagonal): we use the Hutchinson estimator, which needs nothing but gradients
and works for any model; H·v is a finite difference of two gradients of the same closure
(``dlskills.optim._curvature``), so the closure follows torch's contract (zero_grad, loss,
backward, return loss). Cost per step: 1 + ``probes`` closure calls. For a diagonal Hessian a
single probe is exact (v_i² = 1); for a general one the running average converges to diag H
(both tested). The probe vectors come from a generator seeded by ``seed`` whose state is saved in
``state_dict``, so a resumed run continues identically.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from dlskills.optim._base import ZooOptimizer
from dlskills.optim._curvature import (
    SeededProbes,
    finite_difference_hvp,
    gradients_of,
    rademacher_like,
)
from dlskills.optim._foreach import check_nonnegative, check_positive, check_unit_interval
from dlskills.optim._registry import register_optimizer


def hutchinson_diagonal(
    closure: Callable[[], Any],
    params: list[Tensor],
    grads: list[Tensor],
    generator: torch.Generator,
    probes: int = 1,
) -> list[Tensor]:
    """Mean of v ⊙ (H v) over ``probes`` Rademacher vectors v (an unbiased diag H estimate)."""
    estimate = [torch.zeros_like(p) for p in params]
    for _ in range(probes):
        vectors = rademacher_like(params, generator)
        products = finite_difference_hvp(closure, params, vectors, grads)
        for total, v, hv in zip(estimate, vectors, products):
            total.addcmul_(v, hv, value=1.0 / probes)
    return estimate


@register_optimizer(
    "becker_lecun",
    catalog_id="becker-lecun-1988",
    aliases=("pseudo_newton", "diagonal_newton"),
    needs_closure=True,
    supports_foreach=False,
    elementwise=False,
    test_function="ill_conditioned_quadratic",
    test_kwargs={"lr": 0.5},
    test_steps=300,
    test_tolerance=1e-3,
)
class BeckerLeCun(SeededProbes, ZooOptimizer):
    """Damped diagonal Newton with a running Hutchinson estimate of the Hessian diagonal.

    Args:
        params: tensors or param groups.
        lr: step multiplier (> 0); 1 is a full diagonal-Newton step.
        damping: μ > 0 added to |h| (the paper's safety term).
        curvature_decay: γ in [0, 1), the running average's decay (0: this step's estimate only).
        probes: Rademacher probes per step (each costs one closure call).
        weight_decay: coupled L2 coefficient.
        seed: seed of the probe generator.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        damping: float = 0.1,
        curvature_decay: float = 0.99,
        probes: int = 1,
        weight_decay: float = 0.0,
        *,
        seed: int = 0,
    ) -> None:
        if not (isinstance(probes, int) and probes >= 1):
            raise ValueError(f"Invalid probes: {probes!r} (must be an int >= 1)")
        defaults = {
            "lr": lr,
            "damping": damping,
            "curvature_decay": curvature_decay,
            "weight_decay": weight_decay,
        }
        super().__init__(params, defaults)
        self.probes = probes
        self._init_probes(seed)

    @staticmethod
    def _validate(group: dict[str, Any]) -> None:
        check_positive("lr", group["lr"])
        check_positive("damping", group["damping"])
        check_unit_interval("curvature_decay", group["curvature_decay"])
        check_nonnegative("weight_decay", group["weight_decay"])

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        if closure is None:
            raise ValueError("BeckerLeCun.step needs a closure: curvature takes extra gradients")
        params = self.trainable()
        loss, grads = gradients_of(closure, params)
        diagonal = hutchinson_diagonal(closure, params, grads, self._generator, self.probes)
        index = 0
        for group in self.param_groups:
            decay = group["curvature_decay"]
            for p in group["params"]:
                if not p.requires_grad:
                    continue
                grad, estimate = grads[index], diagonal[index]
                index += 1
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["curvature"] = torch.zeros_like(p)
                state["step"] += 1
                state["curvature"].mul_(decay).add_(estimate, alpha=1 - decay)
                debiased = state["curvature"] / (1 - decay ** state["step"].item())
                if group["weight_decay"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                p.addcdiv_(grad, debiased.abs_().add_(group["damping"]), value=-group["lr"])
        return loss
