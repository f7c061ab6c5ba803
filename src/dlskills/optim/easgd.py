"""Elastic Averaging SGD, simulated workers in one process (catalog 1412.6651; Zhang, Choromanska
& LeCun, "Deep learning with Elastic Averaging SGD", NeurIPS 2015).

K workers explore with their own parameters x_k; a centre variable x̃ is tied to them by an
elastic force. Rule (the paper's Algorithm 1 / 2 for worker k, t its local step counter):

    every τ steps:   diff = α·(x_k − x̃);   x_k ← x_k − diff;   x̃ ← x̃ + diff     (elastic update)
    EASGD:           x_k ← x_k − η·g(x_k)
    EAMSGD:          v_k ← δ·v_k − η·g(x_k + δ·v_k);   x_k ← x_k + v_k        (Nesterov momentum)

α is the moving rate; the paper ties it to β = K·α = 0.9 (our default α = 0.9/K).
``elastic_average_`` is the elastic update alone, over lists of tensors (for-loop and foreach);
it is written for the torch.distributed version (``dlskills.distributed``, not yet built) to share.

``EASGD`` is a torch.optim.Optimizer over the centre variable: the parameters it was given hold x̃
between steps; ``state[p]["workers"]`` (shape (K, *p.shape)) holds the K workers. ``step(closure)``
loads each worker in turn into the parameters, calls the closure there (torch's contract: zero
the gradients, compute the loss on *that worker's* minibatch, backward, return it), makes the
worker's local step, and every τ-th call runs the elastic update of every worker against the
centre, one worker after another (the asynchronous algorithm with a round-robin schedule). The
returned loss is the workers' mean.

Deviation: the elastic update runs at the end of every τ-th ``step`` instead of at the start of
the next one. The sequence of operations is the paper's (τ local steps, elastic update, τ local
steps, …); only the call that contains the communication changes, so that after ``step`` the
parameters show the centre after the latest communication (and the very first, no-op, elastic
update at t = 0 is dropped). Worker gradients are evaluated after the worker's elastic update,
as in Algorithm 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from dlskills.optim import _native
from dlskills.optim._foreach import (
    check_fused,
    check_nonnegative,
    check_positive,
    check_unit_interval,
    dispatch,
)
from dlskills.optim._registry import register_optimizer


def _single_tensor_elastic(workers: list[Tensor], centres: list[Tensor], *, alpha: float) -> None:
    for worker, centre in zip(workers, centres):
        diff = (worker - centre).mul_(alpha)
        worker.sub_(diff)
        centre.add_(diff)


def _multi_tensor_elastic(workers: list[Tensor], centres: list[Tensor], *, alpha: float) -> None:
    diffs = torch._foreach_sub(workers, centres)
    torch._foreach_mul_(diffs, alpha)
    torch._foreach_sub_(workers, diffs)
    torch._foreach_add_(centres, diffs)


def _single_tensor_local_step(
    params: list[Tensor],
    grads: list[Tensor],
    velocities: list[Tensor],
    workers: list[Tensor],
    *,
    momentum: float,
    lr: float,
    weight_decay: float,
) -> None:
    for param, grad, velocity, worker in zip(params, grads, velocities, workers):
        if weight_decay != 0:
            grad = grad.add(param, alpha=weight_decay)
        velocity.mul_(momentum).sub_(grad, alpha=lr)
        worker.add_(velocity)


def _multi_tensor_local_step(
    params: list[Tensor],
    grads: list[Tensor],
    velocities: list[Tensor],
    workers: list[Tensor],
    *,
    momentum: float,
    lr: float,
    weight_decay: float,
) -> None:
    if weight_decay != 0:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    torch._foreach_mul_(velocities, momentum)
    torch._foreach_sub_(velocities, grads, alpha=lr)
    torch._foreach_add_(workers, velocities)


@torch.no_grad()
def elastic_average_(
    worker_params: list[Tensor],
    center_params: list[Tensor],
    alpha: float,
    *,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> None:
    """In place: diff = α(w − c), w ← w − diff, c ← c + diff, tensor by tensor.

    The sum w + c is conserved; α = 1/2 meets in the middle, α = 0 does nothing. ``foreach``
    and ``fused`` choose the path as in the optimizers (``dlskills.optim._foreach``).
    """
    if len(worker_params) != len(center_params):
        raise ValueError(
            f"worker_params and center_params must have equal lengths, "
            f"got {len(worker_params)} and {len(center_params)}"
        )
    for worker, centre in zip(worker_params, center_params):
        if worker.shape != centre.shape:
            raise ValueError(f"shape mismatch: worker {worker.shape} vs centre {centre.shape}")
    check_unit_interval("alpha", alpha, closed_top=True)
    check_fused(foreach, fused)
    dispatch(
        _single_tensor_elastic,
        _multi_tensor_elastic,
        (list(worker_params), list(center_params)),
        foreach,
        fused=fused,
        native=_native.elastic,
        alpha=alpha,
    )


@register_optimizer(
    "easgd",
    catalog_id="1412.6651",
    aliases=("eamsgd",),
    needs_closure=True,
    supports_foreach=True,
    supports_fused=True,
    elementwise=True,
    test_function="ill_conditioned_quadratic",
    test_kwargs={"lr": 0.05, "workers": 2},
    test_steps=600,
    test_tolerance=1e-3,
)
class EASGD(torch.optim.Optimizer):
    """Elastic averaging SGD over K simulated workers; the parameters hold the centre x̃.

    Args:
        params: tensors or param groups (the centre variable).
        lr: η, the workers' learning rate (> 0).
        workers: K, the number of simulated workers (≥ 1).
        alpha: the moving rate α in [0, 1]; default 0.9/K (the paper's β = Kα = 0.9).
        tau: communication period τ in local steps (≥ 1).
        momentum: δ, the workers' Nesterov momentum (EAMSGD) in [0, 1); 0 gives EASGD.
        weight_decay: coupled L2 coefficient on each worker's gradient.
        foreach: True/False force a path; None picks per ``dlskills.optim._foreach``.
        fused: None (default) runs the fused CPU kernels (``dlskills.optim._native``) for the
            local step and the elastic update when the tensors allow and ``foreach`` is None;
            True requires them; False never uses them.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 0.01,
        workers: int = 4,
        alpha: float | None = None,
        tau: int = 1,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        if not (isinstance(workers, int) and workers >= 1):
            raise ValueError(f"Invalid workers: {workers!r} (must be an int >= 1)")
        if not (isinstance(tau, int) and tau >= 1):
            raise ValueError(f"Invalid tau: {tau!r} (must be an int >= 1)")
        alpha = 0.9 / workers if alpha is None else alpha
        defaults = {
            "lr": lr,
            "alpha": alpha,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "fused": fused,
        }
        self._validate(defaults)
        super().__init__(params, defaults)
        self.workers = workers
        self.tau = tau
        self._centres: dict[Tensor, Tensor] = {}

    @staticmethod
    def _validate(group: dict[str, Any]) -> None:
        check_positive("lr", group["lr"])
        check_unit_interval("alpha", group["alpha"], closed_top=True)
        check_unit_interval("momentum", group["momentum"])
        check_nonnegative("weight_decay", group["weight_decay"])
        check_fused(group["foreach"], group.get("fused"))

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        self._validate(self.param_groups[-1])

    def _state(self, p: Tensor) -> dict[str, Any]:
        state = self.state[p]
        if not state:
            state["step"] = torch.tensor(0.0)
            state["workers"] = p.detach().unsqueeze(0).repeat(self.workers, *([1] * p.dim()))
            state["velocities"] = torch.zeros_like(state["workers"])
        return state

    def _centre(self, p: Tensor) -> Tensor:
        """A buffer that holds x̃ while the parameters hold a worker, kept across steps (not
        state: it is x̃ itself between steps); allocating one per step cost as much as the
        whole update."""
        centre = self._centres.get(p)
        if centre is None or centre.shape != p.shape or centre.dtype != p.dtype:
            centre = self._centres[p] = torch.empty_like(p)
        return centre

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Tensor:
        if closure is None:
            raise ValueError("EASGD.step needs a closure: it evaluates every worker's gradient")
        params = [p for group in self.param_groups for p in group["params"]]
        states = [self._state(p) for p in params]
        centres = [self._centre(p) for p in params]
        torch._foreach_copy_(centres, params)
        losses = []
        for k in range(self.workers):
            for group in self.param_groups:
                group_params = group["params"]
                torch._foreach_copy_(
                    group_params, [self.state[p]["workers"][k] for p in group_params]
                )
                if group["momentum"]:  # Nesterov look-ahead: the gradient is taken at x_k + δ·v_k
                    velocities = [self.state[p]["velocities"][k] for p in group_params]
                    torch._foreach_add_(group_params, velocities, alpha=group["momentum"])
            with torch.enable_grad():
                losses.append(torch.as_tensor(closure()).detach())
            for group in self.param_groups:
                active = [p for p in group["params"] if p.grad is not None]
                if not active:
                    continue
                dispatch(
                    _single_tensor_local_step,
                    _multi_tensor_local_step,
                    (
                        active,
                        [p.grad for p in active],
                        [self.state[p]["velocities"][k] for p in active],
                        [self.state[p]["workers"][k] for p in active],
                    ),
                    group["foreach"],
                    fused=group.get("fused"),  # absent from pre-fused checkpoints
                    native=_native.easgd_local,
                    momentum=group["momentum"],
                    lr=group["lr"],
                    weight_decay=group["weight_decay"],
                )
        for state in states:
            state["step"] += 1
        if int(states[0]["step"]) % self.tau == 0:
            centre_of = dict(zip(params, centres))
            for group in self.param_groups:
                group_centres = [centre_of[p] for p in group["params"]]
                for k in range(self.workers):
                    elastic_average_(
                        [self.state[p]["workers"][k] for p in group["params"]],
                        group_centres,
                        group["alpha"],
                        foreach=group["foreach"],
                        fused=group.get("fused"),
                    )
        torch._foreach_copy_(params, centres)
        return torch.stack(losses).mean()
