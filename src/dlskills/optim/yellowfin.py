"""YellowFin: momentum SGD that tunes its own lr and momentum (catalog 1706.03471; Zhang &
Mitliagkas, "YellowFin and the Art of Momentum Tuning", 2017/2019).

Heavy-ball SGD (torch's form, b ← μ·b + g, θ ← θ − lr·b) whose μ and lr come from a noisy
quadratic model of the loss, re-estimated at every step from the gradient alone. Rule as the
authors' PyTorch code implements it (t = 0, 1, …, β = 0.999, all averages zero-debiased by
dividing by 1 − β^(t+1)):

    g    ← clip(g, √(clip_factor·h_max))          (global-norm clip, from the 2nd step on)
    b    ← μ·b + g,  θ ← θ − lr·b                 (the step uses the current μ, lr)
    curvature range over a window of W = 20 values of log ‖g‖²:
        log h_min ← β-average of min(window),  log h_max ← β-average of max(window)
    variance    C = avg(‖g‖²) − ‖avg(g)‖²                        (≥ ε)
    distance    D = avg( avg(‖g‖) / avg(‖g‖²) )
    √μ_t = x, the real root of  min_x  x²·D² + (1 − x)⁴·C / h_min²,  i.e. with y = x − 1
          y³ + p·y + p = 0,  p = D²·h_min² / (2C)       (closed form: Vieta's substitution)
    μ_t  = max(x², ((√κ − 1)/(√κ + 1))²),  κ = h_max / h_min
    lr_t = (1 − √μ_t)² / h_min
    μ ← β·μ + (1 − β)·μ_t,  lr ← β·lr + (1 − β)·lr_t              (from the 2nd step on)
    applied lr = lr · min(1, (t + 1)/(10·W))        (slow start)

For a noiseless quadratic (C → 0) the rule gives Polyak's optimal heavy-ball pair
μ = ((√κ − 1)/(√κ + 1))², lr = 4/(√h_max + √h_min)² (tested).

Deviations / guards (users of the authors' code report NaN and runaway learning rates): a step
whose gradient norm is not finite is skipped entirely (parameters and statistics untouched,
``state["skipped_steps"]`` counts them); a tuned μ_t or lr_t that is not finite is ignored; lr_t is
capped at ``max_lr``. The authors' sparsity debiasing (for embeddings) and ``force_non_inc_step``
are not implemented. The tuned values are written back to each group's ``"lr"`` and
``"momentum"`` (times the group's ``lr_factor``) so schedulers and loggers can read them. The
global statistics live in the state of the first parameter (as torch's LBFGS keeps its own), as
Python floats (a float64 tensor there would be cast to the parameter's dtype by
``load_state_dict``), so ``state_dict`` round-trips them exactly.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from dlskills.optim._foreach import check_nonnegative, check_positive, check_unit_interval, dispatch
from dlskills.optim._registry import register_optimizer

_EPS = 1e-15


def cubic_root(p: float) -> float:
    """The real root x = y + 1 of y³ + p·y + p = 0 (p > 0), by Vieta's substitution y = w − p/(3w).

    x = √μ minimises x²D² + (1 − x)⁴C/h_min² with p = D²h_min²/(2C); the cubic has exactly one
    real root, and it lies in y ∈ (−1, 0), so x ∈ (0, 1).
    """
    w3 = (-math.sqrt(p * p + 4.0 / 27.0 * p**3) - p) / 2.0
    w = math.copysign(abs(w3) ** (1.0 / 3.0), w3)
    return w - p / (3.0 * w) + 1.0


def tune(h_min: float, h_max: float, variance: float, distance: float) -> tuple[float, float]:
    """YellowFin's single-step (μ_t, lr_t) from the curvature range, variance and distance."""
    p = (distance + _EPS) ** 2 * (h_min + _EPS) ** 2 / 2.0 / (variance + _EPS)
    root = cubic_root(p)
    sqrt_range = math.sqrt(h_max / h_min)
    momentum = max(root * root, ((sqrt_range - 1.0) / (sqrt_range + 1.0)) ** 2)
    lr = (1.0 - math.sqrt(momentum)) ** 2 / (h_min + _EPS)
    return momentum, lr


def _single_tensor_momentum(
    params: list[Tensor], grads: list[Tensor], buffers: list[Tensor], *, lr: float, mu: float
) -> None:
    for param, grad, buffer in zip(params, grads, buffers):
        buffer.mul_(mu).add_(grad)
        param.sub_(buffer, alpha=lr)


def _multi_tensor_momentum(
    params: list[Tensor], grads: list[Tensor], buffers: list[Tensor], *, lr: float, mu: float
) -> None:
    torch._foreach_mul_(buffers, mu)
    torch._foreach_add_(buffers, grads)
    torch._foreach_add_(params, buffers, alpha=-lr)


@register_optimizer(
    "yellowfin",
    catalog_id="1706.03471",
    needs_closure=False,
    supports_foreach=True,
    elementwise=False,
    test_function="ill_conditioned_quadratic",
    test_kwargs={"lr": 0.05},
    test_steps=600,
    test_tolerance=1e-3,
)
class YellowFin(torch.optim.Optimizer):
    """Momentum SGD with YellowFin's automatic lr and momentum tuning.

    Args:
        params: tensors or param groups (groups may set ``weight_decay`` and ``lr_factor``).
        lr: initial learning rate (> 0); the authors' default 0.1 (1.0 in the paper).
        momentum: initial momentum in [0, 1).
        beta: smoothing of every running statistic, in [0, 1); 0.999 in the paper.
        curvature_window: W, the number of recent ‖g‖² values for h_min/h_max.
        clip_factor: clip the global gradient norm at √(clip_factor·h_max); None: no clipping.
        slow_start: scale the lr by min(1, (t + 1)/(10·W)).
        max_lr: upper bound on the tuned lr_t (runaway guard).
        weight_decay: coupled L2 coefficient.
        lr_factor: multiplier on the tuned lr (a hook for schedules), per group.
        foreach: True/False force a path; None picks per ``dlskills.optim._foreach``.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 0.1,
        momentum: float = 0.0,
        beta: float = 0.999,
        curvature_window: int = 20,
        clip_factor: float | None = 100.0,
        slow_start: bool = True,
        max_lr: float = 10.0,
        weight_decay: float = 0.0,
        lr_factor: float = 1.0,
        *,
        foreach: bool | None = None,
    ) -> None:
        check_positive("lr", lr)
        check_unit_interval("momentum", momentum)
        check_unit_interval("beta", beta)
        if not (isinstance(curvature_window, int) and curvature_window >= 1):
            raise ValueError(
                f"Invalid curvature_window: {curvature_window!r} (must be an int >= 1)"
            )
        if clip_factor is not None:
            check_positive("clip_factor", clip_factor)
        check_positive("max_lr", max_lr)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "lr_factor": lr_factor,
            "foreach": foreach,
        }
        self._validate(defaults)
        super().__init__(params, defaults)
        self.beta = beta
        self.curvature_window = curvature_window
        self.clip_factor = clip_factor
        self.slow_start = slow_start
        self.max_lr = max_lr
        self._initial = (lr, momentum)

    @staticmethod
    def _validate(group: dict[str, Any]) -> None:
        check_nonnegative("weight_decay", group["weight_decay"])
        check_positive("lr_factor", group["lr_factor"])

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        self._validate(self.param_groups[-1])

    def _tuner_state(self) -> dict[str, Any]:
        """The global statistics, kept in the first parameter's state (checkpointed with it)."""
        state = self.state[self.param_groups[0]["params"][0]]
        if "tuner_step" not in state:
            lr, mu = self._initial
            state.update(
                tuner_step=0,
                skipped_steps=0,
                tuned_lr=lr,
                tuned_momentum=mu,
                log_window=[0.0] * self.curvature_window,
                h_min_avg=0.0,
                h_max_avg=0.0,
                grad_norm_squared_avg=0.0,
                grad_norm_avg=0.0,
                distance_avg=0.0,
            )
        return state

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        tuner = self._tuner_state()
        grouped = []
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if any(p.grad.is_sparse for p in params):
                raise RuntimeError("YellowFin does not support sparse gradients")
            grads = [
                p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad
                for p in params
            ]
            grouped.append((group, params, grads))
        all_grads = [g for _, _, grads in grouped for g in grads]
        if not all_grads:
            return loss
        norm_squared = sum(float(g.double().square().sum()) for g in all_grads)
        if not math.isfinite(norm_squared):
            tuner["skipped_steps"] += 1
            return loss

        t = tuner["tuner_step"]
        if self.clip_factor is not None and t > 0:
            threshold = math.sqrt(self.clip_factor * self.h_range(tuner)[1])
            if math.sqrt(norm_squared) > threshold:
                scale = threshold / (math.sqrt(norm_squared) + 1e-6)
                all_grads = [g * scale for g in all_grads]
                grouped = _regroup(grouped, all_grads)
                norm_squared *= scale * scale

        lr = tuner["tuned_lr"]
        if self.slow_start:
            lr *= min(1.0, (t + 1) / (10.0 * self.curvature_window))
        for group, params, grads in grouped:
            buffers = []
            for p in params:
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buffers.append(state["momentum_buffer"])
            dispatch(
                _single_tensor_momentum,
                _multi_tensor_momentum,
                (params, grads, buffers),
                group["foreach"],
                lr=lr * group["lr_factor"],
                mu=tuner["tuned_momentum"],
            )

        self._update_statistics(tuner, grouped, norm_squared)
        for group in self.param_groups:
            group["lr"] = tuner["tuned_lr"] * group["lr_factor"]
            group["momentum"] = tuner["tuned_momentum"]
        return loss

    def h_range(self, tuner: dict[str, Any]) -> tuple[float, float]:
        """(h_min, h_max): zero-debiased log-space averages of the window's extremes."""
        debias = 1.0 - self.beta ** max(tuner["tuner_step"], 1)
        return math.exp(tuner["h_min_avg"] / debias), math.exp(tuner["h_max_avg"] / debias)

    def _update_statistics(
        self, tuner: dict[str, Any], grouped: list[Any], norm_squared: float
    ) -> None:
        beta, t = self.beta, tuner["tuner_step"]
        window = tuner["log_window"]
        window[t % self.curvature_window] = math.log(norm_squared + _EPS)
        valid = window[: min(self.curvature_window, t + 1)]
        tuner["h_min_avg"] = beta * tuner["h_min_avg"] + (1 - beta) * min(valid)
        tuner["h_max_avg"] = beta * tuner["h_max_avg"] + (1 - beta) * max(valid)
        tuner["grad_norm_squared_avg"] = (
            beta * tuner["grad_norm_squared_avg"] + (1 - beta) * norm_squared
        )
        mean_grad_norm_squared = 0.0
        for _, params, grads in grouped:
            for p, g in zip(params, grads):
                state = self.state[p]
                if "grad_avg" not in state:
                    state["grad_avg"] = torch.zeros_like(p)
                state["grad_avg"].mul_(beta).add_(g, alpha=1 - beta)
                mean_grad_norm_squared += float(state["grad_avg"].double().square().sum())
        grad_norm = math.sqrt(norm_squared)
        tuner["grad_norm_avg"] = beta * tuner["grad_norm_avg"] + (1 - beta) * grad_norm
        distance_t = tuner["grad_norm_avg"] / (tuner["grad_norm_squared_avg"] + _EPS)
        tuner["distance_avg"] = beta * tuner["distance_avg"] + (1 - beta) * distance_t
        tuner["tuner_step"] = t + 1
        debias = 1.0 - beta ** (t + 1)
        variance = max(
            tuner["grad_norm_squared_avg"] / debias - mean_grad_norm_squared / debias**2, _EPS
        )
        distance = tuner["distance_avg"] / debias
        if t == 0:
            return
        h_min, h_max = self.h_range(tuner)
        mu_t, lr_t = tune(h_min, h_max, variance, distance)
        if math.isfinite(mu_t) and math.isfinite(lr_t):
            lr_t = min(lr_t, self.max_lr)
            tuner["tuned_momentum"] = beta * tuner["tuned_momentum"] + (1 - beta) * mu_t
            tuner["tuned_lr"] = beta * tuner["tuned_lr"] + (1 - beta) * lr_t


def _regroup(grouped: list[Any], flat_grads: list[Tensor]) -> list[Any]:
    regrouped, start = [], 0
    for group, params, _ in grouped:
        regrouped.append((group, params, flat_grads[start : start + len(params)]))
        start += len(params)
    return regrouped
