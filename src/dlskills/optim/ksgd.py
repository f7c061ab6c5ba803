"""kSGD: Kalman-filter stochastic gradient for least-squares problems on small models (catalog
1512.01139; Patel, "Kalman-based stochastic gradient method with stop condition and
insensitivity to conditioning", SIAM J. Optim. 2016).

The parameters θ are the state of a Kalman filter with a static state; every minibatch is an
observation y = f(x; θ) + ε, ε ~ N(0, σ²I). Linearising f at the current θ (the extended filter;
exact for linear models), with residuals r = f(x; θ) − y and J = ∂r/∂θ (B × n):

    S = J P Jᵀ + σ² I                (B × B innovation covariance)
    K = P Jᵀ S⁻¹                     (n × B gain)
    θ ← θ − K r
    P ← P − K S Kᵀ + q I             (q: optional process noise, 0 by default)

P₀ = p₀·I. For a linear model, one pass over the data gives exactly the ridge solution
(XᵀX + (σ²/p₀) I)⁻¹ Xᵀy whatever the conditioning of X — the paper's "insensitivity to
conditioning" (tested against the closed form). P is the filter's uncertainty about θ; its trace
is exposed as ``uncertainty`` (the paper builds its stop condition on it). For nonlinear models
over several epochs, the linearised filter counts re-visited data as new evidence and P
collapses too early; a small ``process_noise`` keeps it learning (tested on a tanh model).

Cost: P is dense over all n parameters, O(n²) memory and O(n²·B + B³) time per step, so kSGD is
for small models: it refuses n > ``max_params`` (default 2000, i.e. 32 MB of float64).

Closure contract: the closure returns the residual vector r = predictions − targets (any shape;
it is flattened into B observations) and must NOT call backward — kSGD differentiates each
residual itself. The loss it returns from ``step`` is ½·mean(r²).

Deviation: the paper also estimates σ² online and adds a stop condition; here σ² is the
``observation_noise`` argument and stopping is left to the caller (``uncertainty``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from dlskills.optim._base import ZooOptimizer
from dlskills.optim._foreach import check_nonnegative, check_positive, reject_sparse
from dlskills.optim._registry import register_optimizer


def residual_jacobian(
    residuals: Tensor, params: list[Tensor], *, retain_graph: bool = False
) -> Tensor:
    """J = ∂r/∂θ, shape (r.numel(), n), by one batched backward over the residuals."""
    count = residuals.numel()
    eye = torch.eye(count, dtype=residuals.dtype, device=residuals.device)
    rows = torch.autograd.grad(
        residuals.reshape(-1),
        params,
        grad_outputs=eye,
        is_grads_batched=True,
        retain_graph=retain_graph,
        allow_unused=True,
    )
    return torch.cat(
        [
            torch.zeros(count, p.numel(), dtype=residuals.dtype, device=residuals.device)
            if r is None
            else r.reshape(count, -1)
            for p, r in zip(params, rows)
        ],
        dim=1,
    )


@register_optimizer(
    "ksgd",
    catalog_id="1512.01139",
    aliases=("kalman_sgd",),
    needs_closure=True,
    closure="residuals",
    supports_foreach=False,
    elementwise=False,
    test_function="ill_conditioned_quadratic",
    test_kwargs={},
    test_steps=20,
    test_tolerance=1e-3,
)
class KSGD(ZooOptimizer):
    """Kalman-filter SGD over all parameters jointly (small least-squares models).

    Args:
        params: tensors or param groups (one joint covariance over all of them).
        lr: multiplier on the Kalman correction K r (> 0); 1 is the filter.
        prior_variance: p₀ > 0, the initial covariance P₀ = p₀·I (large: weak prior).
        observation_noise: σ² > 0, the variance of each residual's noise.
        process_noise: q ≥ 0 added to P's diagonal each step (keeps tracking a moving optimum).
        max_params: refuse models with more parameters (P has n² entries).
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        prior_variance: float = 1e3,
        observation_noise: float = 1.0,
        process_noise: float = 0.0,
        max_params: int = 2000,
    ) -> None:
        check_positive("prior_variance", prior_variance)
        check_positive("observation_noise", observation_noise)
        check_nonnegative("process_noise", process_noise)
        self.max_params = max_params
        super().__init__(params, {"lr": lr})
        self.prior_variance = prior_variance
        self.observation_noise = observation_noise
        self.process_noise = process_noise

    @staticmethod
    def _validate(group: dict[str, Any]) -> None:
        check_positive("lr", group["lr"])

    def _join(self, group: dict[str, Any]) -> None:
        del group
        count = sum(p.numel() for p in self.trainable())
        if count > self.max_params:
            raise ValueError(
                f"kSGD keeps an n×n covariance (O(n²) memory, O(n²·B) time per step): "
                f"{count} parameters exceed max_params={self.max_params}"
            )

    def _covariance(self, params: list[Tensor]) -> Tensor:
        """P over ``params`` flattened in order. Parameters that joined after the first step
        enter with the prior p₀·I, independent of the others (P grows block-diagonally);
        half-precision parameters keep P in float32 (no half Cholesky on CPU)."""
        state = self.state[params[0]]
        count = sum(p.numel() for p in params)
        dtype = torch.promote_types(params[0].dtype, torch.float32)
        known = state["covariance"] if "covariance" in state else params[0].new_empty(0, 0)
        if known.shape[0] < count:
            grown = self.prior_variance * torch.eye(count, dtype=dtype, device=params[0].device)
            grown[: known.shape[0], : known.shape[0]] = known
            state["covariance"] = grown
        return state["covariance"]

    @property
    def uncertainty(self) -> float:
        """trace(P): the filter's total variance about θ (p₀·n before the first step)."""
        params = self.trainable()
        return float(self._covariance(params).trace())

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor:
        if closure is None:
            raise ValueError("KSGD.step needs a closure returning the residuals (no backward)")
        params = self.trainable()
        with torch.enable_grad():
            residuals = closure()
            if not (isinstance(residuals, Tensor) and residuals.requires_grad):
                raise ValueError(
                    "the closure must return the residual tensor with its graph "
                    "(predictions − targets; do not call backward() or detach)"
                )
            try:
                jacobian = residual_jacobian(residuals, params, retain_graph=True)
            except (NotImplementedError, RuntimeError):
                # the batched backward fails inside torch on sparse gradients (nn.Embedding
                # with sparse=True): name the cause if that is it
                probe = residuals.reshape(-1)[0]
                reject_sparse("KSGD", torch.autograd.grad(probe, params, allow_unused=True))
                raise
        with torch.no_grad():
            covariance = self._covariance(params)
            jacobian = jacobian.to(covariance.dtype)
            flat_residuals = residuals.detach().reshape(-1).to(covariance.dtype)
            pj = covariance @ jacobian.T  # P Jᵀ, (n × B)
            innovation = jacobian @ pj
            innovation.diagonal().add_(self.observation_noise)
            # K = P Jᵀ S⁻¹ via a Cholesky solve (S is symmetric positive definite)
            factor = torch.linalg.cholesky(innovation)
            gain = torch.cholesky_solve(pj.T, factor).T
            correction = gain @ flat_residuals
            covariance.sub_(gain @ pj.T)
            covariance.copy_((covariance + covariance.T) / 2)  # keep P symmetric under rounding
            if self.process_noise:
                covariance.diagonal().add_(self.process_noise)
            offset = 0
            for group in self.param_groups:
                for p in group["params"]:
                    if p.requires_grad:
                        n = p.numel()
                        p.sub_(correction[offset : offset + n].view_as(p), alpha=group["lr"])
                        offset += n
        return 0.5 * flat_residuals.square().mean()
