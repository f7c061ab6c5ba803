"""Aggregated Momentum, AggMo (catalog 1804.00325; Lucas, Sun, Zemel & Grosse, ICLR 2019).

K heavy-ball velocities with different damping β_i share one gradient and their average moves
the parameters: the small βs damp the oscillations that a large β alone would cause. Rule, as the
authors' code implements it (no (1 − β) damping on the gradient), per parameter θ:

    g   ← g + weight_decay·θ                     (coupled L2)
    v_i ← β_i·v_i + g                             for i = 0, …, K − 1
    θ   ← θ − (lr/K)·Σ_i v_i

Default β = (0, 0.9, 0.99), which is the paper's exponential form β_i = 1 − a^i with a = 0.1,
K = 3 (``AggMo.from_exp_form``). The K velocities are stored stacked in one tensor of shape
(K, *θ.shape) per parameter (``state["momentum_buffers"]``), so a checkpoint holds plain tensors;
every path subtracts velocity by velocity, as the authors do (tested against
torch_optimizer.AggMo).
"""

from __future__ import annotations

from collections.abc import Sequence
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
)
from dlskills.optim._registry import register_optimizer


def _single_tensor_aggmo(
    params: list[Tensor],
    grads: list[Tensor],
    *velocities: list[Tensor],
    lr: float,
    betas: Sequence[float],
    weight_decay: float,
) -> None:
    scale = lr / len(betas)
    for i, param in enumerate(params):
        grad = grads[i]
        if weight_decay != 0:
            grad = grad.add(param, alpha=weight_decay)
        for beta, velocity in zip(betas, velocities):
            velocity[i].mul_(beta).add_(grad)
            param.sub_(velocity[i], alpha=scale)


def _multi_tensor_aggmo(
    params: list[Tensor],
    grads: list[Tensor],
    *velocities: list[Tensor],
    lr: float,
    betas: Sequence[float],
    weight_decay: float,
) -> None:
    if weight_decay != 0:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    for beta, velocity in zip(betas, velocities):
        torch._foreach_mul_(velocity, beta)
        torch._foreach_add_(velocity, grads)
        torch._foreach_add_(params, velocity, alpha=-lr / len(betas))


def aggmo(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor],
    *,
    lr: float,
    betas: Sequence[float],
    weight_decay: float,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> None:
    """Functional AggMo over lists; ``momentum_buffers[j]`` has shape (K, *params[j].shape).

    The kernels take the K velocities as K lists of rows, so every path (and a compiled one:
    inductor then fuses the K updates and the parameter step into one loop) updates them in
    place one by one."""
    velocities = [list(rows) for rows in zip(*(b.unbind(0) for b in momentum_buffers))]
    dispatch(
        _single_tensor_aggmo,
        _multi_tensor_aggmo,
        (params, grads, *velocities),
        foreach,
        fused=fused,
        native=_native.aggmo,
        lr=lr,
        betas=tuple(betas),
        weight_decay=weight_decay,
    )


@register_optimizer(
    "aggmo",
    catalog_id="1804.00325",
    needs_closure=False,
    supports_foreach=True,
    supports_fused=True,
    elementwise=True,
    reference="torch_optimizer",
    test_function="ill_conditioned_quadratic",
    test_kwargs={"lr": 0.01},
    test_steps=600,
    test_tolerance=1e-3,
)
class AggMo(ZooOptimizer):
    """Aggregated momentum: K velocities with dampings ``betas`` averaged into one step.

    Args:
        params: tensors or param groups.
        lr: learning rate (> 0), required (the authors' code and the dlskills contract
            ``AggMo(params, lr, betas=(0.0, 0.9, 0.99), weight_decay=0)`` have no default).
        betas: the K damping coefficients, each in [0, 1).
        weight_decay: coupled L2 coefficient.
        foreach: True/False force a path; None picks per ``dlskills.optim._foreach``.
        fused: None (default) runs the fused CPU kernel (``dlskills.optim._native``) when the
            tensors allow and ``foreach`` is None; True requires it; False never uses it.
    """

    def __init__(
        self,
        params: Any,
        lr: float,
        betas: Sequence[float] = (0.0, 0.9, 0.99),
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": betas,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "fused": fused,
        }
        super().__init__(params, defaults)

    @classmethod
    def from_exp_form(
        cls, params: Any, lr: float, a: float = 0.1, K: int = 3, **kwargs: Any
    ) -> AggMo:
        """The paper's exponential form β_i = 1 − a^i, i = 0, …, K − 1 (a = 0.1, K = 3 gives the
        default (0, 0.9, 0.99))."""
        if not 0.0 < a < 1.0:
            raise ValueError(f"Invalid a: {a!r} (must be in (0, 1))")
        if not (isinstance(K, int) and K >= 1):
            raise ValueError(f"Invalid K: {K!r} (must be a positive integer)")
        return cls(params, lr=lr, betas=tuple(1.0 - a**i for i in range(K)), **kwargs)

    @staticmethod
    def _validate(group: dict[str, Any]) -> None:
        check_positive("lr", group["lr"])
        betas = group["betas"]
        if not (isinstance(betas, Sequence) and len(betas) >= 1):
            raise ValueError(f"Invalid betas: {betas!r} (must be a non-empty sequence)")
        for i, beta in enumerate(betas):
            check_unit_interval(f"betas[{i}]", beta)
        check_nonnegative("weight_decay", group["weight_decay"])
        check_fused(group["foreach"], group.get("fused"))

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        count = len(group["betas"])
        return {"momentum_buffers": torch.zeros((count, *p.shape), dtype=p.dtype, device=p.device)}

    def _update(
        self,
        group: dict[str, Any],
        params: list[Tensor],
        grads: list[Tensor],
        states: list[dict[str, Any]],
    ) -> None:
        self.functional(
            params,
            grads,
            [s["momentum_buffers"] for s in states],
            lr=group["lr"],
            betas=group["betas"],
            weight_decay=group["weight_decay"],
            foreach=group["foreach"],
            fused=group.get("fused"),  # absent from pre-fused checkpoints
        )

    functional = staticmethod(aggmo)
