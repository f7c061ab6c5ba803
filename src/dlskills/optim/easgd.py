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
between steps; ``state[p]["workers"]`` (shape (K, *p.shape)) holds the K workers and
``state[p]["velocities"]`` their momenta (untouched, zero, when δ = 0). ``step(closure)``
loads each worker in turn into the parameters, calls the closure there (torch's contract: zero
the gradients, compute the loss on *that worker's* minibatch, backward, return it), makes the
worker's local step, and every τ-th call runs the elastic update of every worker against the
centre, one worker after another (the asynchronous algorithm with a round-robin schedule). The
returned loss is the workers' mean.

The step is written as two kernels, so that nothing is copied for its own sake: *enter* parks
x̃ in worker 1's row and loads worker 1; *leave* makes worker k's local step and elastic update,
puts it back in its row and moves x̃ on to worker k + 1's row while loading that worker (or
returns x̃ to the parameters after the last one), all in one pass. With δ = 0 the parameters
hold the worker itself during its closure. One worker (K = 1) then streams 9 parameter-sized
buffers a step, where loading and saving every buffer separately streamed 15 (and the fused
kernels write only buffers they also read: no read-for-ownership besides). If the closure
raises, the parameters get x̃ back and every worker its row before the exception propagates.
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


def _temporary_copy(tensor: Tensor, buffer: Tensor) -> Tensor:
    """``tensor``'s value where a swap parks it. Compiled, a temporary that inductor never
    writes to memory: ``tensor * 1`` (exact, −0 and NaN included), because inductor (torch 2.13,
    CPU) miscompiles the swap ``t = a.clone(); a.copy_(b); b.copy_(t)``: it reads the clone after
    the copy into ``a``, so both end up as b. Eager, the kept ``buffer`` (a parameter-sized
    allocation per step costs as much as the whole update)."""
    if torch.compiler.is_compiling():
        return tensor * 1
    return buffer.copy_(tensor)


def _single_tensor_enter(
    params: list[Tensor],
    workers: list[Tensor],
    velocities: list[Tensor],
    scratch: list[Tensor],
    *,
    momentum: float,
) -> None:
    for i, (param, worker, spare) in enumerate(zip(params, workers, scratch)):
        if momentum:  # the gradient is taken at the look-ahead point x_k + δ·v_k
            spare.copy_(worker)
            worker.copy_(param)
            param.copy_(spare).add_(velocities[i], alpha=momentum)
        else:
            spare.copy_(param)
            param.copy_(worker)
            worker.copy_(spare)


def _multi_tensor_enter(
    params: list[Tensor],
    workers: list[Tensor],
    velocities: list[Tensor],
    scratch: list[Tensor],
    *,
    momentum: float,
) -> None:
    if momentum:
        torch._foreach_copy_(scratch, workers)
        torch._foreach_copy_(workers, params)
        torch._foreach_copy_(params, scratch)
        torch._foreach_add_(params, velocities, alpha=momentum)
    else:
        torch._foreach_copy_(scratch, params)
        torch._foreach_copy_(params, workers)
        torch._foreach_copy_(workers, scratch)


def _single_tensor_leave(
    params: list[Tensor],
    grads: list[Tensor],
    velocities: list[Tensor],
    workers: list[Tensor],
    scratch: list[Tensor],
    next_workers: list[Tensor],
    next_velocities: list[Tensor],
    *,
    momentum: float,
    lr: float,
    weight_decay: float,
    alpha: float,
    communicate: bool,
) -> None:
    for i, (param, worker, spare) in enumerate(zip(params, workers, scratch)):
        own = spare if momentum else param  # x_k; ``worker`` holds the centre meanwhile
        if grads:
            grad = grads[i]
            if weight_decay != 0:
                grad = grad.add(param, alpha=weight_decay)
            if momentum:
                velocities[i].mul_(momentum).sub_(grad, alpha=lr)
                own.add_(velocities[i])
            else:
                own.sub_(grad, alpha=lr)
        if communicate:
            _single_tensor_elastic([own], [worker], alpha=alpha)
        # with momentum the parameter's look-ahead value is spent: it can park the centre
        centre = _temporary_copy(worker, param if momentum else spare)
        worker.copy_(own)
        if next_workers:
            own.copy_(next_workers[i])
            next_workers[i].copy_(centre)
            if momentum:
                param.copy_(own).add_(next_velocities[i], alpha=momentum)
        else:
            param.copy_(centre)  # a no-op where the centre is parked in the parameter


def _multi_tensor_leave(
    params: list[Tensor],
    grads: list[Tensor],
    velocities: list[Tensor],
    workers: list[Tensor],
    scratch: list[Tensor],
    next_workers: list[Tensor],
    next_velocities: list[Tensor],
    *,
    momentum: float,
    lr: float,
    weight_decay: float,
    alpha: float,
    communicate: bool,
) -> None:
    own = scratch if momentum else params
    if grads:
        if weight_decay != 0:
            grads = torch._foreach_add(grads, params, alpha=weight_decay)
        if momentum:
            torch._foreach_mul_(velocities, momentum)
            torch._foreach_sub_(velocities, grads, alpha=lr)
            torch._foreach_add_(own, velocities)
        else:
            torch._foreach_sub_(own, grads, alpha=lr)
    if communicate:
        _multi_tensor_elastic(own, workers, alpha=alpha)
    centre = params if momentum else scratch
    torch._foreach_copy_(centre, workers)
    torch._foreach_copy_(workers, own)
    if next_workers:
        torch._foreach_copy_(own, next_workers)
        torch._foreach_copy_(next_workers, centre)
        if momentum:
            torch._foreach_copy_(params, own)
            torch._foreach_add_(params, next_velocities, alpha=momentum)
    elif not momentum:
        torch._foreach_copy_(params, centre)


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
        self._scratches: dict[Tensor, Tensor] = {}

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

    def _scratch(self, p: Tensor) -> Tensor:
        """A parameter-sized buffer kept across steps (not state: between steps it holds
        nothing): x_k while the parameters hold its look-ahead point, else a swap's
        temporary; allocating one per step cost as much as the whole update."""
        scratch = self._scratches.get(p)
        if scratch is None or scratch.shape != p.shape or scratch.dtype != p.dtype:
            scratch = self._scratches[p] = torch.empty_like(p)
        return scratch

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Tensor:
        if closure is None:
            raise ValueError("EASGD.step needs a closure: it evaluates every worker's gradient")
        params = [p for group in self.param_groups for p in group["params"]]
        for p in params:
            self._state(p)
        communicate = (int(self.state[params[0]]["step"]) + 1) % self.tau == 0
        for group in self.param_groups:
            momentum, group_params = group["momentum"], group["params"]
            dispatch(
                _single_tensor_enter,
                _multi_tensor_enter,
                (
                    group_params,
                    self._rows(group_params, "workers", 0),
                    self._rows(group_params, "velocities", 0) if momentum else [],
                    [self._scratch(p) for p in group_params],
                ),
                group["foreach"],
                fused=group.get("fused"),  # absent from pre-fused checkpoints
                native=_native.easgd_enter,
                compile=False,  # data movement only
                momentum=momentum,
            )
        losses = []
        for k in range(self.workers):
            try:
                with torch.enable_grad():
                    losses.append(torch.as_tensor(closure()).detach())
                for group in self.param_groups:
                    if any(p.grad is not None and p.grad.is_sparse for p in group["params"]):
                        raise RuntimeError("EASGD does not support sparse gradients")
            except BaseException:
                # worker k goes back to its row and the centre to the parameters (the workers
                # before k have made this step's local step and elastic update)
                for group in self.param_groups:
                    self._leave(
                        group, group["params"], k, stepped=False, communicate=False, last=True
                    )
                raise
            last = k == self.workers - 1
            for group in self.param_groups:
                with_grads = [p for p in group["params"] if p.grad is not None]
                without = [p for p in group["params"] if p.grad is None]
                self._leave(group, with_grads, k, True, communicate, last)
                self._leave(group, without, k, False, communicate, last)
        for p in params:
            self.state[p]["step"] += 1
        return torch.stack(losses).mean()

    def _rows(self, params: list[Tensor], name: str, k: int) -> list[Tensor]:
        return [self.state[p][name][k] for p in params]

    def _leave(
        self,
        group: dict[str, Any],
        params: list[Tensor],
        k: int,
        stepped: bool,
        communicate: bool,
        last: bool,
    ) -> None:
        """Worker k's local step (if ``stepped``) and elastic update (if ``communicate``), then
        the parameters take worker k + 1, or the centre if ``last``. Running each worker's
        elastic update right after its local step computes what the paper's order (all local
        steps, then the elastic updates one worker after the other) computes: a local step
        touches neither the centre nor another worker."""
        momentum = group["momentum"]
        dispatch(
            _single_tensor_leave,
            _multi_tensor_leave,
            (
                params,
                [p.grad for p in params] if stepped else [],
                self._rows(params, "velocities", k) if momentum else [],
                self._rows(params, "workers", k),
                [self._scratch(p) for p in params],
                [] if last else self._rows(params, "workers", k + 1),
                [] if last or not momentum else self._rows(params, "velocities", k + 1),
            ),
            group["foreach"],
            fused=group.get("fused"),
            native=_native.easgd_leave,
            momentum=momentum,
            lr=group["lr"],
            weight_decay=group["weight_decay"],
            alpha=group["alpha"],
            communicate=communicate,
        )
