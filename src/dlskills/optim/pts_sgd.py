"""PTS-SGD, SGD with past time-smoothed gradients (catalog 1905.08850; Zhu & Aydore, ICML 2019
Time Series Workshop, "Time-Smoothed Gradients for Online Forecasting").

Hazan et al.'s local regret averages the gradients of the last w losses *at the current
iterate*, which needs w gradient evaluations per step. For forecasting, Zhu & Aydore evaluate each
recent loss at *its own* forecast instead ("past" time-smoothing), so the smoothed gradient is an
average of stored gradients and costs no extra evaluation. Per coordinate, with g_t the gradient
at step t = 1, 2, … and g_j = 0 for j ≤ 0 (the local-regret definition):

    g_t ← g_t + weight_decay·θ_t                      (coupled L2; 0 in the paper)
    S_t = Σ_{i=0}^{w−1} α^i·g_{t−i}
    θ_{t+1} = θ_t − (lr/W)·S_t,        W = Σ_{i=0}^{w−1} α^i

α = 1 (default) is the paper's plain window average (W = w); α < 1 is the exponentially
weighted window of the authors' follow-up (Aydore, Zhu & Foster, 1910.07927), offered as an
option. S is kept as a running sum, S_t = α·S_{t−1} + g_t − α^w·g_{t−w}, with the last w gradients
in a ring buffer of shape (w, *θ.shape) per parameter: O(1) work per step and w copies of the
parameters in memory (the price of the method). Deviation: no reference code was available; the
rule is implemented from the paper's equations. The running sum's rounding error grows like a
random walk (≈ √steps·ε relative), far below the gradient noise it smooths.
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
    new_step_counter,
    step_counts,
)
from dlskills.optim._registry import register_optimizer


def _single_tensor_pts_sgd(
    params: list[Tensor],
    grads: list[Tensor],
    oldest: list[Tensor],
    grad_sums: list[Tensor],
    *,
    lr: float,
    alpha: float,
    window: int,
    weight_decay: float,
) -> None:
    normaliser = sum(alpha**i for i in range(window))
    for param, grad, expiring, grad_sum in zip(params, grads, oldest, grad_sums):
        if weight_decay != 0:
            grad = grad.add(param, alpha=weight_decay)
        grad_sum.mul_(alpha).add_(grad).sub_(expiring, alpha=alpha**window)
        expiring.copy_(grad)
        param.sub_(grad_sum, alpha=lr / normaliser)


def _multi_tensor_pts_sgd(
    params: list[Tensor],
    grads: list[Tensor],
    oldest: list[Tensor],
    grad_sums: list[Tensor],
    *,
    lr: float,
    alpha: float,
    window: int,
    weight_decay: float,
) -> None:
    normaliser = sum(alpha**i for i in range(window))
    if weight_decay != 0:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    if alpha != 1.0:
        torch._foreach_mul_(grad_sums, alpha)
    torch._foreach_add_(grad_sums, grads)
    torch._foreach_sub_(grad_sums, oldest, alpha=alpha**window)
    torch._foreach_copy_(oldest, grads)
    torch._foreach_sub_(params, grad_sums, alpha=lr / normaliser)


def pts_sgd(
    params: list[Tensor],
    grads: list[Tensor],
    windows: list[Tensor],
    grad_sums: list[Tensor],
    steps: list[int],
    *,
    lr: float,
    alpha: float,
    weight_decay: float,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> None:
    """Functional PTS-SGD over lists; ``windows[j]`` has shape (w, *params[j].shape) and
    ``steps`` are the step counts after the increment (they pick the ring-buffer slot whose
    gradient, g_{t−w}, leaves the window and is overwritten by g_t)."""
    if not params:
        return
    size = windows[0].shape[0]
    oldest = [window[(t - 1) % size] for window, t in zip(windows, steps)]
    dispatch(
        _single_tensor_pts_sgd,
        _multi_tensor_pts_sgd,
        (params, grads, oldest, grad_sums),
        foreach,
        fused=fused,
        native=_native.pts_sgd,
        lr=lr,
        alpha=alpha,
        window=size,
        weight_decay=weight_decay,
    )


@register_optimizer(
    "pts_sgd",
    catalog_id="1905.08850",
    aliases=("ptssgd", "time_smoothed_sgd"),
    needs_closure=False,
    supports_foreach=True,
    supports_fused=True,
    elementwise=True,
    test_function="ill_conditioned_quadratic",
    test_kwargs={"lr": 0.05, "window": 3},
    test_steps=600,
    test_tolerance=1e-3,
)
class PTSSGD(ZooOptimizer):
    """SGD on the average of the last ``window`` gradients (past time-smoothed gradients).

    Args:
        params: tensors or param groups.
        lr: learning rate (> 0).
        window: number of past gradients averaged, w ≥ 1 (w = 1 is plain SGD).
        alpha: decay of older gradients in (0, 1]; 1 is the paper's plain average.
        weight_decay: coupled L2 coefficient.
        foreach: True/False force a path; None picks per ``dlskills.optim._foreach``.
        fused: None (default) runs the fused CPU kernel (``dlskills.optim._native``) when the
            tensors allow and ``foreach`` is None; True requires it; False never uses it.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        window: int = 10,
        alpha: float = 1.0,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        defaults = {
            "lr": lr,
            "window": window,
            "alpha": alpha,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "fused": fused,
        }
        super().__init__(params, defaults)

    @staticmethod
    def _validate(group: dict[str, Any]) -> None:
        check_positive("lr", group["lr"])
        window = group["window"]
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"Invalid window: {window!r} (must be an integer >= 1)")
        if not (isinstance(group["alpha"], int | float) and 0.0 < group["alpha"] <= 1.0):
            raise ValueError(f"Invalid alpha: {group['alpha']!r} (must be in (0, 1])")
        check_nonnegative("weight_decay", group["weight_decay"])
        check_fused(group["foreach"], group.get("fused"))

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        return {
            "step": new_step_counter(),
            "window": torch.zeros((group["window"], *p.shape), dtype=p.dtype, device=p.device),
            "grad_sum": torch.zeros_like(p, memory_format=torch.preserve_format),
        }

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
            [s["window"] for s in states],
            [s["grad_sum"] for s in states],
            step_counts(states),
            lr=group["lr"],
            alpha=group["alpha"],
            weight_decay=group["weight_decay"],
            foreach=group["foreach"],
            fused=group.get("fused"),  # absent from pre-fused checkpoints
        )

    functional = staticmethod(pts_sgd)
