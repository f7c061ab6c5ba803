"""YellowFin: momentum SGD that tunes its own lr and momentum (catalog 1706.03471; Zhang &
Mitliagkas, "YellowFin and the Art of Momentum Tuning", 2017/2019).

Heavy-ball SGD (torch's form, b ← μ·b + d, θ ← θ − lr·b) whose μ and lr come from a noisy
quadratic model of the loss, re-estimated at every step from the gradient alone. The default is
the rule of the authors' PyTorch code (JianGoForIt/YellowFin_Pytorch, ``YFOptimizer``), step for
step; t = 0, 1, … counts steps, β = 0.999, ε = 1e-6, W = 20, every average starts at 0 and is
zero-debiased by dividing by c_t = 1 − β^(t+1):

    1. protect the statistics (t ≥ 2):  g ← g · min(1, (√(clip_factor·h_max) + ε)/(‖g‖ + 1e-6))
       with h_max from the previous step; ‖g‖ is the global norm over all parameters.
    2. N = ‖g‖²;  exploding = (t ≥ 1 and N ≥ h_max of the previous step)
    3. statistics
         N̄ ← β N̄ + (1 − β) N
         curvature window: w[t mod W] = N;  m = min, M = max over the filled entries
         ln_h_min ← β ln_h_min + (1 − β) ln(m + ε),   h_min = exp(ln_h_min / c_t)
         ln_h_max ← β ln_h_max + (1 − β) ln(M + ε),   h_max = exp(ln_h_max / c_t)
         ḡ ← β ḡ + (1 − β) g   (per coordinate)
         C = max(N̄ / c_t − ‖ḡ‖² / c_t², ε)                              (gradient variance)
         ‖g‖‾ ← β ‖g‖‾ + (1 − β) √N,   D̄ ← β D̄ + (1 − β) ‖g‖‾ / (N̄ + ε),   D = D̄ / c_t
    4. tuning (t ≥ 1; at t = 0, μ_t and lr_t are the initial momentum and lr)
         p = (D + ε)² (h_min + ε)² / (2 (C + ε))
         w³ = (−√(p² + 4p³/27) − p)/2,  x = w − p/(3(w + ε)) + 1      (√μ minimising
              x²D² + (1 − x)⁴ C/h_min²: the real root of y³ + py + p = 0, y = x − 1, by Vieta)
         κ = max((h_max + ε)/(h_min + ε), 1 + ε)
         μ_t  = max(x², ((√κ − 1)/(√κ + 1))²)
         lr_t = (1 − √μ_t)² / (h_min + ε) · min(1, (t + 1)/(10 W))    (slow start)
         μ ← β μ + (1 − β) μ_t,   lr ← β lr + (1 − β) lr_t             (smoothed; see below)
    5. applied: μ_t and lr_t · lr_factor, then  lr ← max_move/√(N + ε)  if lr·√N ≥ max_move
    6. if exploding: g ← g · min(1, (√h_max_prev + ε)/(√N + 1e-6))
    7. d = g + weight_decay·θ;  b ← μ·b + d (b starts at d; μ = 0 leaves b alone, as torch's
       SGD does);  θ ← θ − lr·b

The paper's Algorithm 1 applies the β-smoothed μ and lr instead; ``smoothed=True`` does that
(μ, lr after step 4's smoothing, applied in the same step, as the authors' TensorFlow code with
``use_unsmoothed_lr_mu=False``). Steps 1, 5 and 6 are the authors' ``adapt_clip`` guards
(``adaptive_clipping=False`` drops all three). For a noiseless quadratic (C → 0) the rule gives
Polyak's optimal heavy-ball pair μ = ((√κ − 1)/(√κ + 1))², lr = 4/(√h_max + √h_min)² (tested).
The weight decay enters the update only, after the clipping (the authors hand it to torch's SGD),
never the statistics. A float64 port of the authors' code written in the tests agrees with this
class to 1e-10 over 300 steps, in both modes.

Deviations (none change a finite run): where the authors' code raises on a non-finite cubic and
restores a checkpoint, a step whose gradient norm is not finite is skipped entirely (parameters
and statistics untouched, ``state["skipped_steps"]`` counts them) and a non-finite μ_t or lr_t
keeps the previous values; ``max_lr`` (off by default) optionally caps lr_t. The statistics are
float64 whatever the parameters' dtype (the authors' window is float32), and ``p.grad`` is not
clipped in place. The authors' manual ``clip_thresh`` is ``torch.nn.utils.clip_grad_norm_``
before ``step()``; their sparsity debiasing, ``auto_clip_fac`` and ``force_non_inc_step`` are not
implemented. Their default initial lr is 1e-4 (1.0 in the paper); it only sets the first step
(and the start of the smoothed lr). The tuned values are written back to each group's ``"lr"``
and ``"momentum"`` (the lr times the group's ``lr_factor``) so schedulers and loggers can read
them. The global statistics live in the state of the first parameter (as torch's LBFGS keeps
its own), as Python floats, so ``state_dict`` round-trips them exactly.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from dlskills.optim._base import ZooOptimizer
from dlskills.optim._foreach import check_nonnegative, check_positive, check_unit_interval, dispatch
from dlskills.optim._registry import register_optimizer

EPS = 1e-6  # the authors' ε
_CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_'s guard in max_norm/(norm + 1e-6)


def cubic_root(p: float, eps: float = 0.0) -> float:
    """x = y + 1 for the real root y of y³ + p·y + p = 0 (p > 0), by Vieta's substitution
    y = w − p/(3w) (the authors guard the division as 3(w + eps)).

    x = √μ minimises x²D² + (1 − x)⁴C/h_min² with p = D²h_min²/(2C); the cubic has exactly one
    real root, and it lies in y ∈ (−1, 0), so x ∈ (0, 1).
    """
    w3 = (-math.sqrt(p * p + 4.0 / 27.0 * p**3) - p) / 2.0
    w = math.copysign(abs(w3) ** (1.0 / 3.0), w3)
    return w - p / 3.0 / (w + eps) + 1.0


def tune(
    h_min: float, h_max: float, variance: float, distance: float, eps: float = EPS
) -> tuple[float, float]:
    """YellowFin's single-step (μ_t, lr_t) before the slow start (step 4 of the module
    docstring, with the authors' ε)."""
    p = (distance + eps) ** 2 * (h_min + eps) ** 2 / 2.0 / (variance + eps)
    root = cubic_root(p, eps)
    ratio = max((h_max + eps) / (h_min + eps), 1.0 + eps)
    momentum = max(root * root, ((math.sqrt(ratio) - 1.0) / (math.sqrt(ratio) + 1.0)) ** 2)
    lr = (1.0 - math.sqrt(momentum)) ** 2 / (h_min + eps)
    return momentum, lr


def _single_tensor_sgd(params: list[Tensor], steps: list[Tensor], *, lr: float) -> None:
    for param, step in zip(params, steps):
        param.sub_(step, alpha=lr)


def _multi_tensor_sgd(params: list[Tensor], steps: list[Tensor], *, lr: float) -> None:
    torch._foreach_add_(params, steps, alpha=-lr)


def _single_tensor_momentum(
    params: list[Tensor], steps: list[Tensor], buffers: list[Tensor], *, lr: float, mu: float
) -> None:
    for param, step, buffer in zip(params, steps, buffers):
        buffer.mul_(mu).add_(step)
        param.sub_(buffer, alpha=lr)


def _multi_tensor_momentum(
    params: list[Tensor], steps: list[Tensor], buffers: list[Tensor], *, lr: float, mu: float
) -> None:
    torch._foreach_mul_(buffers, mu)
    torch._foreach_add_(buffers, steps)
    torch._foreach_add_(params, buffers, alpha=-lr)


def _squared_norm(tensors: list[Tensor]) -> float:
    return sum(float(t.detach().double().square().sum()) for t in tensors)


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
class YellowFin(ZooOptimizer):
    """Momentum SGD with YellowFin's automatic lr and momentum tuning (the authors' rule).

    Args:
        params: tensors or param groups (groups may set ``weight_decay`` and ``lr_factor``).
        lr: initial learning rate (> 0), used by the first step; the authors' default 1e-4
            (1.0 in the paper).
        momentum: initial momentum in [0, 1), used by the first step.
        beta: smoothing of every running statistic, in [0, 1); 0.999 in the paper.
        curvature_window: W, the number of recent ‖g‖² values for h_min/h_max.
        smoothed: apply the β-smoothed μ and lr (the paper's Algorithm 1) instead of this step's
            μ_t and lr_t (the authors' code).
        adaptive_clipping: the authors' three guards: the √(clip_factor·h_max) clip, the
            √h_max clip of an exploding gradient and the lr·‖g‖ ≤ max_move clamp.
        clip_factor: the statistics-protecting clip's factor (the authors' ``stat_protect_fac``).
        max_move: bound on lr·‖g‖ (the authors' ``catastrophic_move_thresh``).
        slow_start: scale lr_t by min(1, (t + 1)/(10·W)).
        max_lr: optional cap on lr_t (not in the authors' code; None: no cap).
        weight_decay: coupled L2 coefficient, added to the clipped gradient of the update only.
        lr_factor: multiplier on the tuned lr (a hook for schedules), per group.
        eps: ε of the tuner (the authors' 1e-6).
        foreach: True/False force a path; None picks per ``dlskills.optim._foreach``.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-4,
        momentum: float = 0.0,
        beta: float = 0.999,
        curvature_window: int = 20,
        smoothed: bool = False,
        adaptive_clipping: bool = True,
        clip_factor: float = 100.0,
        max_move: float = 100.0,
        slow_start: bool = True,
        max_lr: float | None = None,
        weight_decay: float = 0.0,
        lr_factor: float = 1.0,
        eps: float = EPS,
        *,
        foreach: bool | None = None,
    ) -> None:
        check_positive("lr", lr)
        check_unit_interval("momentum", momentum)
        check_unit_interval("beta", beta)
        if not (
            isinstance(curvature_window, int)
            and not isinstance(curvature_window, bool)
            and curvature_window >= 1
        ):
            raise ValueError(
                f"Invalid curvature_window: {curvature_window!r} (must be an int >= 1)"
            )
        check_positive("clip_factor", clip_factor)
        check_positive("max_move", max_move)
        if max_lr is not None:
            check_positive("max_lr", max_lr)
        check_nonnegative("eps", eps)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "lr_factor": lr_factor,
            "foreach": foreach,
        }
        super().__init__(params, defaults)
        self.beta = beta
        self.curvature_window = curvature_window
        self.smoothed = bool(smoothed)
        self.adaptive_clipping = bool(adaptive_clipping)
        self.clip_factor = clip_factor
        self.max_move = max_move
        self.slow_start = bool(slow_start)
        self.max_lr = max_lr
        self.eps = eps
        self._initial = (float(lr), float(momentum))

    @staticmethod
    def _validate(group: dict[str, Any]) -> None:
        check_nonnegative("weight_decay", group["weight_decay"])
        check_positive("lr_factor", group["lr_factor"])

    def _tuner_state(self) -> dict[str, Any]:
        """The global statistics, kept in the first parameter's state (checkpointed with it)."""
        state = self.state[self.param_groups[0]["params"][0]]
        if "tuner_step" not in state:
            lr, mu = self._initial
            state.update(
                tuner_step=0,
                skipped_steps=0,
                lr_t=lr,
                momentum_t=mu,
                tuned_lr=lr,
                tuned_momentum=mu,
                curvature_window=[0.0] * self.curvature_window,
                log_h_min_avg=0.0,
                log_h_max_avg=0.0,
                h_min=0.0,
                h_max=0.0,
                grad_norm_squared_avg=0.0,
                grad_norm_avg=0.0,
                distance_avg=0.0,
            )
        return state

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = self._loss_of(closure)
        tuner = self._tuner_state()
        grouped = []
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if any(p.grad.is_sparse for p in params):
                raise RuntimeError("YellowFin does not support sparse gradients")
            if params:
                grouped.append((group, params, [p.grad for p in params]))
        if not grouped:
            return loss
        raw_norm_squared = _squared_norm([g for _, _, grads in grouped for g in grads])
        if not math.isfinite(raw_norm_squared):
            tuner["skipped_steps"] += 1
            return loss

        t, eps = tuner["tuner_step"], self.eps
        h_max_previous = tuner["h_max"]
        scale = 1.0  # the statistics-protecting clip, applied to g everywhere below
        if self.adaptive_clipping and t > 1:
            threshold = math.sqrt(self.clip_factor * h_max_previous) + eps
            scale = min(1.0, threshold / (math.sqrt(raw_norm_squared) + _CLIP_EPS))
        norm_squared = raw_norm_squared * scale * scale
        exploding = self.adaptive_clipping and t >= 1 and norm_squared >= h_max_previous

        self._update_statistics(tuner, grouped, norm_squared, scale)
        if t > 0:
            self._tune(tuner)
        if self.smoothed:
            lr, mu = tuner["tuned_lr"], tuner["tuned_momentum"]
        else:
            lr, mu = tuner["lr_t"], tuner["momentum_t"]

        update_scale = scale
        if exploding:
            target = math.sqrt(h_max_previous) + eps
            update_scale *= min(1.0, target / (math.sqrt(norm_squared) + _CLIP_EPS))
        for group, params, grads in grouped:
            group_lr = lr * group["lr_factor"]
            if self.adaptive_clipping and group_lr * math.sqrt(norm_squared) >= self.max_move:
                group_lr = self.max_move / math.sqrt(norm_squared + eps)
            group["lr"], group["momentum"] = group_lr, mu
            steps = grads
            if update_scale != 1.0:
                steps = [g.mul(update_scale) for g in steps]
            if group["weight_decay"]:
                steps = [s.add(p, alpha=group["weight_decay"]) for s, p in zip(steps, params)]
            if mu == 0.0:  # torch's SGD: no momentum buffer is created or touched
                dispatch(
                    _single_tensor_sgd,
                    _multi_tensor_sgd,
                    (params, steps),
                    group["foreach"],
                    lr=group_lr,
                )
                continue
            buffers = []
            for p in params:
                state = self.state[p]
                if "momentum_buffer" not in state:  # 0·μ + d = d: torch's first buffer
                    state["momentum_buffer"] = torch.zeros_like(p)
                buffers.append(state["momentum_buffer"])
            dispatch(
                _single_tensor_momentum,
                _multi_tensor_momentum,
                (params, steps, buffers),
                group["foreach"],
                lr=group_lr,
                mu=mu,
            )
        tuner["tuner_step"] = t + 1
        return loss

    def _update_statistics(
        self, tuner: dict[str, Any], grouped: list[Any], norm_squared: float, scale: float
    ) -> None:
        beta, t, eps = self.beta, tuner["tuner_step"], self.eps
        debias = 1.0 - beta ** (t + 1)
        tuner["grad_norm_squared_avg"] = (
            beta * tuner["grad_norm_squared_avg"] + (1 - beta) * norm_squared
        )
        window = list(tuner["curvature_window"])
        window[t % self.curvature_window] = norm_squared
        tuner["curvature_window"] = window
        filled = window[: min(self.curvature_window, t + 1)]
        tuner["log_h_min_avg"] = beta * tuner["log_h_min_avg"] + (1 - beta) * math.log(
            min(filled) + eps
        )
        tuner["log_h_max_avg"] = beta * tuner["log_h_max_avg"] + (1 - beta) * math.log(
            max(filled) + eps
        )
        tuner["h_min"] = math.exp(tuner["log_h_min_avg"] / debias)
        tuner["h_max"] = math.exp(tuner["log_h_max_avg"] / debias)
        mean_grad_norm_squared = 0.0
        for _, params, grads in grouped:
            for p, g in zip(params, grads):
                state = self.state[p]
                if "grad_avg" not in state:
                    state["grad_avg"] = torch.zeros_like(p)
                state["grad_avg"].mul_(beta).add_(g, alpha=(1 - beta) * scale)
                mean_grad_norm_squared += float(state["grad_avg"].double().square().sum())
        tuner["variance"] = max(
            tuner["grad_norm_squared_avg"] / debias - mean_grad_norm_squared / debias**2, eps
        )
        tuner["grad_norm_avg"] = beta * tuner["grad_norm_avg"] + (1 - beta) * math.sqrt(
            norm_squared
        )
        tuner["distance_avg"] = beta * tuner["distance_avg"] + (1 - beta) * tuner[
            "grad_norm_avg"
        ] / (tuner["grad_norm_squared_avg"] + eps)
        tuner["distance"] = tuner["distance_avg"] / debias

    def _tune(self, tuner: dict[str, Any]) -> None:
        t, beta = tuner["tuner_step"], self.beta
        try:
            mu_t, lr_t = tune(
                tuner["h_min"], tuner["h_max"], tuner["variance"], tuner["distance"], self.eps
            )
        except (OverflowError, ValueError, ZeroDivisionError):
            return
        if not (math.isfinite(mu_t) and math.isfinite(lr_t)):
            return
        if self.slow_start:
            lr_t = min(lr_t, lr_t * (t + 1) / (10.0 * self.curvature_window))
        if self.max_lr is not None:
            lr_t = min(lr_t, self.max_lr)
        tuner["momentum_t"], tuner["lr_t"] = mu_t, lr_t
        tuner["tuned_lr"] = beta * tuner["tuned_lr"] + (1 - beta) * lr_t
        tuner["tuned_momentum"] = beta * tuner["tuned_momentum"] + (1 - beta) * mu_t

    def h_range(self, tuner: dict[str, Any] | None = None) -> tuple[float, float]:
        """(h_min, h_max) of the last step: zero-debiased log-space averages of the window's
        extremes."""
        tuner = self._tuner_state() if tuner is None else tuner
        return tuner["h_min"], tuner["h_max"]
