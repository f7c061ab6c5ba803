"""Elastic Averaging SGD, simulated workers in one process (catalog 1412.6651; Zhang, Choromanska
& LeCun, "Deep learning with Elastic Averaging SGD", NeurIPS 2015).

K workers explore with their own parameters xᵏ; a centre variable x̃ is tied to them by an
elastic force of strength α (the moving rate; the paper ties it to β = K·α = 0.9, our default
α = 0.9/K). τ is the communication period, η the learning rate, δ the momentum, gᵏ(·) worker k's
stochastic gradient (its own minibatch), t a step counter starting at 0.

Asynchronous (the default; Algorithm 1 EASGD, Algorithm 2 EAMSGD), worker k at its step t:

    x = xᵏ                                                      (the value read)
    if τ divides t (t = 0 included):   xᵏ ← xᵏ − α(x − x̃);   x̃ ← x̃ + α(x − x̃)
    EASGD:    xᵏ ← xᵏ − η·gᵏ(x)
    EAMSGD:   vᵏ ← δ·vᵏ − η·gᵏ(x + δ·vᵏ);   xᵏ ← xᵏ + vᵏ                (Nesterov momentum)

so the elastic difference and the gradient are both taken at x, the worker's value before its
step. The simulation runs the workers round-robin within a step (worker 1, 2, …, K), each
exchange seeing the centre as the previous worker left it.

Synchronous (``synchronous=True``; eqs. 5–6, with τ): every worker's difference is taken against
the same x̃_t and the centre moves by their sum,

    xᵏ_{t+1} = xᵏ_t − η·gᵏ(xᵏ_t) − [τ | t]·α(xᵏ_t − x̃_t)
    x̃_{t+1}  = x̃_t + [τ | t]·α·Σ_k (xᵏ_t − x̃_t)

and with momentum the same elastic term plus the EAMSGD step:
vᵏ ← δ·vᵏ − η·gᵏ(xᵏ_t + δ·vᵏ), xᵏ_{t+1} = xᵏ_t + vᵏ − [τ | t]·α(xᵏ_t − x̃_t).

Weight decay λ is coupled L2 on the gradient, at the point where it is taken:
gᵏ(p) ← gᵏ(p) + λ·p. Deviations from the paper: none in the rule; the workers start at the
centre's value (the paper does not say), and a tensor a worker leaves without a gradient makes
no local step (its elastic update still happens), as torch's optimizers skip such tensors.

``elastic_average_`` is the elastic update alone, over lists of tensors (diff = α(w − c),
w ← w − diff, c ← c + diff). ``worker_step_`` is one worker's update after its exchange, given
its elastic difference (x ← x − d, then the local step, then the look-ahead point); the
simulation's kernels below make the same update (the for-loop and foreach kernels call the same
per-tensor code) and ``dlskills.distributed.easgd`` runs it on every rank.

``EASGD`` is a torch.optim.Optimizer over the centre variable: the parameters it was given hold x̃
between steps; ``state[p]["workers"]`` (shape (K, *p.shape)) holds the K workers and
``state[p]["velocities"]`` their momenta (untouched, zero, when δ = 0). ``step(closure)``
loads each worker in turn into the parameters (at its look-ahead point x + δ·v), calls the
closure there (torch's contract: zero the gradients, compute the loss on *that worker's*
minibatch, backward, return it), then makes the worker's exchange and local step. The returned
loss is the workers' mean.

The step is written as two kernels, so that nothing is copied for its own sake: *enter* parks
x̃ in worker 1's row and loads worker 1; *leave* makes worker k's exchange and local step, puts
it back in its row and moves x̃ on to worker k + 1's row while loading that worker (or
returns x̃ to the parameters after the last one), all in one pass. With δ = 0 the parameters
hold the worker itself during its closure. One worker (K = 1) then streams 9 parameter-sized
buffers a step, where loading and saving every buffer separately streamed 15 (and the fused
kernels write only buffers they also read: no read-for-ownership besides). In synchronous mode a
communication step also keeps a *pending* buffer, x̃_t plus the differences so far, which
becomes the parameters after the last worker (the fused kernels do this too). If the closure
raises, the parameters get the centre back (synchronous: with the differences of the workers
that already stepped) and every worker its row before the exception propagates; the step
counter does not advance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from dlskills.optim import _native
from dlskills.optim._base import ZooOptimizer
from dlskills.optim._foreach import (
    check_fused,
    check_nonnegative,
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


def elastic_difference(
    worker_params: list[Tensor], center_params: list[Tensor], alpha: float
) -> list[Tensor]:
    """New tensors d = α(w − c), rounded as every kernel here rounds them ((w − c) then ·α)."""
    if not worker_params:
        return []
    diffs = torch._foreach_sub(list(worker_params), list(center_params))
    torch._foreach_mul_(diffs, alpha)
    return diffs


# ---- one worker's update after its exchange (shared by the simulation and the distributed
# strategy). ``own`` is x; ``grad`` already carries the weight decay; ``diff`` is α(x − x̃) or None.


def _local_step(
    own: Tensor,
    grad: Tensor | None,
    velocity: Tensor | None,
    diff: Tensor | None,
    *,
    lr: float,
    momentum: float,
) -> None:
    if diff is not None:
        own.sub_(diff)
    if grad is None:
        return
    if momentum:
        assert velocity is not None
        velocity.mul_(momentum).sub_(grad, alpha=lr)
        own.add_(velocity)
    else:
        own.sub_(grad, alpha=lr)


def _multi_tensor_local_step(
    owns: list[Tensor],
    grads: list[Tensor],
    velocities: list[Tensor],
    diffs: list[Tensor] | None,
    *,
    lr: float,
    momentum: float,
) -> None:
    if diffs is not None:
        torch._foreach_sub_(owns, diffs)
    if not grads:
        return
    if momentum:
        torch._foreach_mul_(velocities, momentum)
        torch._foreach_sub_(velocities, grads, alpha=lr)
        torch._foreach_add_(owns, velocities)
    else:
        torch._foreach_sub_(owns, grads, alpha=lr)


def _single_tensor_worker(
    params: list[Tensor],
    grads: list[Tensor],
    xs: list[Tensor],
    velocities: list[Tensor],
    diffs: list[Tensor],
    *,
    momentum: float,
    lr: float,
    weight_decay: float,
) -> None:
    for i, (param, grad) in enumerate(zip(params, grads)):
        if weight_decay != 0:
            grad = grad.add(param, alpha=weight_decay)
        own = xs[i] if momentum else param
        velocity = velocities[i] if momentum else None
        _local_step(own, grad, velocity, diffs[i] if diffs else None, lr=lr, momentum=momentum)
        if momentum:
            param.copy_(own).add_(velocities[i], alpha=momentum)


def _multi_tensor_worker(
    params: list[Tensor],
    grads: list[Tensor],
    xs: list[Tensor],
    velocities: list[Tensor],
    diffs: list[Tensor],
    *,
    momentum: float,
    lr: float,
    weight_decay: float,
) -> None:
    if weight_decay != 0:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    owns = xs if momentum else params
    _multi_tensor_local_step(
        owns, grads, velocities, diffs if diffs else None, lr=lr, momentum=momentum
    )
    if momentum:
        torch._foreach_copy_(params, owns)
        torch._foreach_add_(params, velocities, alpha=momentum)


@torch.no_grad()
def worker_step_(
    params: list[Tensor],
    grads: list[Tensor],
    xs: list[Tensor],
    velocities: list[Tensor],
    diffs: list[Tensor] | None,
    *,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> None:
    """One EASGD/EAMSGD worker's update after its exchange, in place (Algorithms 1–2 of
    1412.6651 from the line after the centre's update; eqs. 5–6 likewise):

        g ← g + λ·θ;   x ← x − d   (d = α(x − x̃) from the exchange; skipped if ``diffs`` is None)
        δ = 0:   x ← x − η·g                       (θ is x itself; ``xs``, ``velocities`` empty)
        δ > 0:   v ← δ·v − η·g;   x ← x + v;   θ ← x + δ·v

    ``params`` (θ) hold the point where the gradients ``grads`` were taken: x with δ = 0, the
    look-ahead x + δ·v with δ > 0, which this leaves for the next gradient. ``xs`` holds x
    (δ > 0). Every tensor in ``params`` must have a gradient in ``grads``.
    """
    n = len(params)
    if len(grads) != n or (diffs is not None and len(diffs) != n):
        raise ValueError("params, grads and diffs must have equal lengths")
    if momentum and (len(xs) != n or len(velocities) != n):
        raise ValueError("with momentum, xs and velocities need one tensor per parameter")
    check_nonnegative("lr", lr)  # a warm-up schedule starts at 0
    check_unit_interval("momentum", momentum)
    check_nonnegative("weight_decay", weight_decay)
    check_fused(foreach, fused)
    dispatch(
        _single_tensor_worker,
        _multi_tensor_worker,
        (
            list(params),
            list(grads),
            list(xs) if momentum else [],
            list(velocities) if momentum else [],
            list(diffs) if diffs is not None else [],
        ),
        foreach,
        fused=fused,
        native=_native.easgd_worker,
        momentum=momentum,
        lr=lr,
        weight_decay=weight_decay,
    )


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
    pending: list[Tensor],
    *,
    momentum: float,
) -> None:
    for i, (param, worker, spare) in enumerate(zip(params, workers, scratch)):
        if pending:  # synchronous communication step: x̃_t plus the differences to come
            pending[i].copy_(param)
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
    pending: list[Tensor],
    *,
    momentum: float,
) -> None:
    if pending:
        torch._foreach_copy_(pending, params)
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
    pending: list[Tensor],
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
        grad = None
        if grads:
            grad = grads[i]
            if weight_decay != 0:
                grad = grad.add(param, alpha=weight_decay)
        diff = None
        if communicate:  # against the centre, before the local step
            diff = (own - worker).mul_(alpha)
            (pending[i] if pending else worker).add_(diff)
        velocity = velocities[i] if momentum else None
        _local_step(own, grad, velocity, diff, lr=lr, momentum=momentum)
        if pending and not next_workers:  # the last worker of a synchronous exchange
            worker.copy_(own)
            param.copy_(pending[i])
            continue
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
    pending: list[Tensor],
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
    if grads and weight_decay != 0:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    diffs = None
    if communicate:
        diffs = elastic_difference(own, workers, alpha)
        torch._foreach_add_(pending if pending else workers, diffs)
    _multi_tensor_local_step(own, grads, velocities, diffs, lr=lr, momentum=momentum)
    if pending and not next_workers:  # the last worker of a synchronous exchange
        torch._foreach_copy_(workers, own)
        torch._foreach_copy_(params, pending)
        return
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
class EASGD(ZooOptimizer):
    """Elastic averaging SGD over K simulated workers; the parameters hold the centre x̃.

    Args:
        params: tensors or param groups (the centre variable).
        lr: η, the workers' learning rate (> 0).
        workers: K, the number of simulated workers (≥ 1).
        alpha: the moving rate α in [0, 1]; default 0.9/K (the paper's β = Kα = 0.9).
        tau: communication period τ in local steps (≥ 1); steps t = 0, τ, 2τ, … communicate.
        momentum: δ, the workers' Nesterov momentum (EAMSGD) in [0, 1); 0 gives EASGD.
        weight_decay: coupled L2 coefficient on each worker's gradient.
        synchronous: False (default): Algorithms 1–2, the workers exchanging with the centre one
            after another (round-robin); True: eqs. 5–6, every worker's difference against the
            same x̃_t and the centre moved by their sum.
        foreach: True/False force a path; None picks per ``dlskills.optim._foreach``.
        fused: None (default) runs the fused CPU kernels (``dlskills.optim._native``) for the
            exchanges and local steps (both modes) when the tensors allow and ``foreach`` is
            None; True requires them; False never uses them.
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
        synchronous: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        if not (isinstance(workers, int) and workers >= 1):
            raise ValueError(f"Invalid workers: {workers!r} (must be an int >= 1)")
        if not (isinstance(tau, int) and tau >= 1):
            raise ValueError(f"Invalid tau: {tau!r} (must be an int >= 1)")
        if not isinstance(synchronous, bool):
            raise ValueError(f"Invalid synchronous: {synchronous!r} (must be a bool)")
        alpha = 0.9 / workers if alpha is None else alpha
        defaults = {
            "lr": lr,
            "alpha": alpha,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "fused": fused,
        }
        super().__init__(params, defaults)
        self.workers = workers
        self.tau = tau
        self.synchronous = synchronous
        self._scratches: dict[Tensor, Tensor] = {}
        self._pendings: dict[Tensor, Tensor] = {}

    @staticmethod
    def _validate(group: dict[str, Any]) -> None:
        check_nonnegative("lr", group["lr"])
        check_unit_interval("alpha", group["alpha"], closed_top=True)
        check_unit_interval("momentum", group["momentum"])
        check_nonnegative("weight_decay", group["weight_decay"])
        check_fused(group["foreach"], group.get("fused"))

    def _state(self, p: Tensor) -> dict[str, Any]:
        state = self.state[p]
        if not state:
            state["step"] = torch.tensor(0.0)
            state["workers"] = p.detach().unsqueeze(0).repeat(self.workers, *([1] * p.dim()))
            state["velocities"] = torch.zeros_like(state["workers"])
        return state

    @staticmethod
    def _buffer(buffers: dict[Tensor, Tensor], p: Tensor) -> Tensor:
        buffer = buffers.get(p)
        if buffer is None or buffer.shape != p.shape or buffer.dtype != p.dtype:
            buffer = buffers[p] = torch.empty_like(p)
        return buffer

    def _scratch(self, p: Tensor) -> Tensor:
        """A parameter-sized buffer kept across steps (not state: between steps it holds
        nothing): x_k while the parameters hold its look-ahead point, else a swap's
        temporary; allocating one per step cost as much as the whole update."""
        return self._buffer(self._scratches, p)

    def _pending(self, params: list[Tensor], communicate: bool) -> list[Tensor]:
        """Synchronous communication steps: x̃_t plus the differences so far (else none)."""
        if not (self.synchronous and communicate):
            return []
        return [self._buffer(self._pendings, p) for p in params]

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Tensor:
        if closure is None:
            raise ValueError("EASGD.step needs a closure: it evaluates every worker's gradient")
        params = [p for group in self.param_groups for p in group["params"]]
        for p in params:
            self._state(p)
        communicate = int(self.state[params[0]]["step"]) % self.tau == 0
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
                    self._pending(group_params, communicate),
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
                # before k have made this step's exchange and local step; synchronous: the
                # centre takes their differences, so x̃ + Σ xᵏ is kept as in the other mode)
                for group in self.param_groups:
                    self._leave(
                        group, group["params"], k, stepped=False, communicate=False, last=True
                    )
                    pending = self._pending(group["params"], communicate)
                    if pending:
                        torch._foreach_copy_(group["params"], pending)
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
        """Worker k's exchange with the centre (if ``communicate``; the difference taken at
        the worker's value before its step) and local step (if ``stepped``; the gradient
        its closure left), then the parameters take worker k + 1, or the centre if ``last``.
        A local step touches neither the centre nor another worker, so running worker k's
        right after its exchange is the paper's order."""
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
                self._pending(params, communicate),
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
