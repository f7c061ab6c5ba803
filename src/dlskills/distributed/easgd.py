"""Elastic Averaging SGD on torch.distributed (catalog 1412.6651; Zhang, Choromanska & LeCun,
"Deep learning with Elastic Averaging SGD", NeurIPS 2015).

Every rank is a worker i with its own parameters xⁱ (its model), taking SGD or Nesterov-momentum
steps on its own shard; the centre variable x̃ lives on rank 0 and is tied to the workers by an
elastic force α. With η the learning rate, δ the momentum, τ the communication period, tⁱ the
worker's step counter (t = 0 included) and gⁱ(·) its minibatch gradient (+ λ·point, coupled
weight decay):

Synchronous (``synchronous=True``, the default; eqs. 5–6): at every step with τ | t rank 0
broadcasts x̃_t, every rank computes dⁱ = α(xⁱ_t − x̃_t), the dⁱ are reduce-summed onto rank 0:

    xⁱ_{t+1} = xⁱ_t − dⁱ − η·gⁱ(xⁱ_t)        x̃_{t+1} = x̃_t + Σᵢ dⁱ
    (δ > 0:  vⁱ ← δ·vⁱ − η·gⁱ(xⁱ_t + δ·vⁱ);  xⁱ_{t+1} = xⁱ_t − dⁱ + vⁱ)

Asynchronous (``synchronous=False``; Algorithm 1, δ > 0 Algorithm 2): when τ | tⁱ, worker i
sends its x = xⁱ to an object on rank 0 that, under one lock, computes d = α(x − x̃), makes
x̃ ← x̃ + d and returns d (torch.distributed.rpc over TensorPipe, 127.0.0.1 only; rank 0's own
exchanges are local calls under the same lock); the worker then makes xⁱ ← xⁱ − d and its local
step with the gradient taken at x (δ > 0: at x + δ·vⁱ). The exchanges are served in arrival
order; ``ordered=True`` serves them in rank order each round (rank 0, 1, …, N − 1, a
turn-taking condition), which makes the run deterministic and equal to the one-process
simulation's round-robin schedule (``dlskills.optim.EASGD(..., workers=N)``, tested).

The local step is ``dlskills.optim.easgd.worker_step_``, the update the one-process simulation
makes (for-loop, foreach and fused CPU kernels, tested against the same literal ports of the
paper's rules). For EAMSGD the model's parameters hold the look-ahead point xⁱ + δ·vⁱ during
forward and backward (so the gradient is taken there) and ``EASGDWorker`` keeps xⁱ and vⁱ in its
state. The optimizer must be an ``EASGDWorker``: ``configure_optimizer`` builds it from the run's
lr, momentum and weight decay (other optimizer settings do not apply and are reported).

Defaults: α = 0.9/N (the paper's β = Nα = 0.9), τ = 1. All ranks start from rank 0's weights,
and the centre from the same values. Validation, test and the ``best`` checkpoint evaluate the
centre (buffers such as BatchNorm statistics come from rank 0's model, EASGD does not average
them). A checkpoint stores every rank's model (xⁱ or the look-ahead point), its x, v and clock
(``rank_state``; in one process ``tensor_state`` keeps the model, since the checkpoint's
``model.*`` may hold the evaluated centre), and rank 0's centre (``tensor_state``); in the
asynchronous mode the ranks meet at a barrier first, so the centre is saved after every rank's
exchanges up to the checkpoint's step (each rank takes the same number of steps: the shards have
equal lengths). Deviations: none in the rule; the asynchronous exchange runs on one host
(TensorPipe bound to 127.0.0.1), and the parameters taking part must share one dtype.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from dlskills.distributed._base import DistributedStrategy, local_port, register_strategy
from dlskills.optim._foreach import (
    check_fused,
    check_nonnegative,
    check_positive,
    check_unit_interval,
)
from dlskills.optim.easgd import elastic_difference, worker_step_
from dlskills.train.checkpoint import decode, encode
from dlskills.train.strategy import unwrap

if TYPE_CHECKING:
    from dlskills.train.trainer import Trainer

logger = logging.getLogger(__name__)

Exchange = Callable[[list[Tensor]], list[Tensor]]


class EASGDWorker(torch.optim.Optimizer):
    """One EASGD/EAMSGD worker's optimizer: at each step with τ | t it hands its x to
    ``exchange`` (set by the strategy; None: no centre, plain SGD/Nesterov steps) and gets back
    d = α(x − x̃), then runs ``worker_step_``. ``state[p]``: ``step`` (the clock t), and with
    momentum ``x`` and ``velocity`` (the parameters then hold x + δ·v)."""

    def __init__(
        self,
        params: Any,
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        *,
        tau: int = 1,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        if isinstance(tau, bool) or not isinstance(tau, int) or tau < 1:
            raise ValueError(f"Invalid tau: {tau!r} (must be an int >= 1)")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "fused": fused,
        }
        self._validate(defaults)
        super().__init__(params, defaults)
        self.tau = tau
        self.exchange: Exchange | None = None

    @staticmethod
    def _validate(group: dict[str, Any]) -> None:
        check_positive("lr", group["lr"])
        check_unit_interval("momentum", group["momentum"])
        check_nonnegative("weight_decay", group["weight_decay"])
        check_fused(group["foreach"], group["fused"])

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        self._validate(self.param_groups[-1])

    def params(self) -> list[Tensor]:
        """Every parameter, in the order of the groups (the order ``exchange`` sees)."""
        return [p for group in self.param_groups for p in group["params"]]

    def _state(self, p: Tensor, momentum: float) -> dict[str, Any]:
        state = self.state[p]
        if not state:
            state["step"] = torch.tensor(0.0)
        if momentum and "x" not in state:  # v = 0: the parameter is x itself
            state["x"] = p.detach().clone()
            state["velocity"] = torch.zeros_like(p)
        return state

    def own(self) -> list[Tensor]:
        """x for every parameter: the worker's variable (not the look-ahead point)."""
        return [
            self._state(p, group["momentum"]).get("x", p) if group["momentum"] else p
            for group in self.param_groups
            for p in group["params"]
        ]

    def clock(self) -> int:
        params = self.params()
        return int(self._state(params[0], 0.0)["step"]) if params else 0

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                self._state(p, group["momentum"])
        own = [x.detach() for x in self.own()]
        diffs: list[Tensor] | None = None
        if self.exchange is not None and self.clock() % self.tau == 0:
            diffs = self.exchange(own)
            if len(diffs) != len(own):
                raise RuntimeError(f"the exchange returned {len(diffs)} differences for {len(own)}")
        index = 0
        for group in self.param_groups:
            params, momentum = group["params"], group["momentum"]
            span = range(index, index + len(params))
            index += len(params)
            stepped = [i for i, p in zip(span, params) if p.grad is not None]
            if any(p.grad.is_sparse for p in params if p.grad is not None):
                raise RuntimeError("EASGDWorker does not support sparse gradients")
            chosen = [params[i - span.start] for i in stepped]
            states = [self.state[p] for p in chosen]
            worker_step_(
                chosen,
                [p.grad for p in chosen],
                [s["x"] for s in states] if momentum else [],
                [s["velocity"] for s in states] if momentum else [],
                [diffs[i] for i in stepped] if diffs is not None else None,
                lr=group["lr"],
                momentum=momentum,
                weight_decay=group["weight_decay"],
                foreach=group["foreach"],
                fused=group["fused"],
            )
            for i, p in zip(span, params):
                if p.grad is None and diffs is not None:  # the exchange still moves it
                    own[i].sub_(diffs[i])
                    if momentum:
                        p.copy_(own[i]).add_(self.state[p]["velocity"], alpha=momentum)
        for p in self.params():
            self.state[p]["step"] += 1
        return loss


class CentreServer:
    """The centre x̃ and its lock (on rank 0): ``exchange(rank, x)`` computes d = α(x − x̃),
    adds it to x̃ and returns it, atomically; with ``ordered`` rank r waits for its turn in
    every round (0, 1, …, N − 1)."""

    def __init__(
        self,
        centre: list[Tensor],
        alpha: float,
        world_size: int,
        *,
        ordered: bool = False,
        timeout_s: float = 300.0,
    ) -> None:
        self.centre = centre
        self.alpha = alpha
        self.world_size = world_size
        self.ordered = ordered
        self.timeout_s = timeout_s
        self.exchanges = 0
        self._turn = 0
        self._condition = threading.Condition()

    @torch.no_grad()
    def exchange(self, rank: int, x: list[Tensor]) -> list[Tensor]:
        if len(x) != len(self.centre):
            raise ValueError(f"rank {rank} sent {len(x)} tensors for {len(self.centre)}")
        with self._condition:
            if self.ordered and not self._condition.wait_for(
                lambda: self._turn == rank, timeout=self.timeout_s
            ):
                raise TimeoutError(
                    f"rank {rank} waited {self.timeout_s:.0f} s for its turn (rank {self._turn} "
                    "has not exchanged)"
                )
            diffs = elastic_difference(x, self.centre, self.alpha)
            torch._foreach_add_(self.centre, diffs)
            self.exchanges += 1
            if self.ordered:
                self._turn = (self._turn + 1) % self.world_size
                self._condition.notify_all()
            return diffs

    def snapshot(self) -> list[Tensor]:
        with self._condition:
            return [c.detach().clone() for c in self.centre]

    def load(self, values: Sequence[Tensor]) -> None:
        with self._condition, torch.no_grad():
            for c, v in zip(self.centre, values, strict=True):
                c.copy_(v)
            self._turn = 0


_SERVER: CentreServer | None = None  # rank 0's, for the exchanges arriving by RPC


def _remote_exchange(rank: int, x: list[Tensor]) -> list[Tensor]:
    if _SERVER is None:
        raise RuntimeError("no EASGD centre on this rank (rank 0 has not set it up)")
    return _SERVER.exchange(rank, x)


def _rpc_name(rank: int) -> str:
    return f"easgd{rank}"


def _flatten(tensors: Sequence[Tensor]) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _unflatten(flat: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    out, offset = [], 0
    for t in like:
        out.append(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()
    return out


@register_strategy("easgd", catalog_id="1412.6651", aliases=("eamsgd",))
class EASGD(DistributedStrategy):
    """Elastic averaging over the ranks, the centre on rank 0 (module docstring).

    Args:
        tau: communication period τ (≥ 1); steps t = 0, τ, 2τ, … exchange.
        alpha: moving rate α in [0, 1]; default 0.9/N.
        synchronous: True (default): eqs. 5–6 with collectives; False: Algorithms 1–2 with RPC.
        ordered: asynchronous only: serve the exchanges in rank order each round.
        **base: ``backend`` and ``timeout_s`` of ``DistributedStrategy`` (the RPC timeout too).
    """

    name = "easgd"

    def __init__(
        self,
        *,
        tau: int = 1,
        alpha: float | None = None,
        synchronous: bool = True,
        ordered: bool = False,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        if isinstance(tau, bool) or not isinstance(tau, int) or tau < 1:
            raise ValueError(f"tau must be an int ≥ 1, got {tau!r}")
        if not isinstance(synchronous, bool) or not isinstance(ordered, bool):
            raise ValueError("synchronous and ordered must be bools")
        if synchronous and ordered:
            raise ValueError("ordered=True applies to the asynchronous mode (synchronous=False)")
        alpha = 0.9 / self.world_size if alpha is None else alpha
        check_unit_interval("alpha", alpha, closed_top=True)
        self.tau = tau
        self.alpha = float(alpha)
        self.synchronous = synchronous
        self.ordered = ordered
        self._centre_module: nn.Module | None = None
        self._model: nn.Module | None = None  # the worker's (unwrapped) model, from setup
        self._centre: list[Tensor] = []  # rank 0: the centre module's tensors in optimizer order
        self._server: CentreServer | None = None
        self._rpc = False
        self._failed = False

    # -- the optimizer ----------------------------------------------------------------------------
    #: optimizer names whose local step is EASGD's own (SGD, or Nesterov momentum with δ)
    LOCAL_STEP_NAMES = ("sgd", "easgd", "eamsgd", "nesterov")

    def configure_optimizer(self, params: Any, **settings: Any) -> EASGDWorker:
        """The worker optimizer from the run's ``lr``, ``momentum`` (δ) and ``weight_decay``
        (``runs.build`` also passes the config's ``optimizer`` name and options). The workers'
        local step is the paper's (SGD, or Nesterov momentum for EAMSGD): another optimizer
        name, or settings that do not apply (betas, eps, …), are logged and left out."""
        settings = dict(settings)
        name = settings.pop("optimizer", None)
        settings.pop("model", None)
        if "lr" not in settings:
            raise ValueError("the easgd strategy needs an lr for the workers' local steps")
        if name is not None and str(name).lower() not in self.LOCAL_STEP_NAMES:
            logger.warning(
                "easgd: the workers take SGD/Nesterov-momentum steps (1412.6651), not %s's", name
            )
        known = {"lr", "momentum", "weight_decay", "foreach", "fused"}
        ignored = sorted(k for k, v in settings.items() if k not in known and v is not None)
        if ignored:
            logger.warning("easgd: ignoring optimizer settings %s", ignored)
        return EASGDWorker(
            params,
            lr=settings["lr"],
            momentum=settings.get("momentum") or 0.0,
            weight_decay=settings.get("weight_decay") or 0.0,
            tau=self.tau,
            foreach=settings.get("foreach"),
            fused=settings.get("fused"),
        )

    # -- lifetime ---------------------------------------------------------------------------------
    def setup(self, trainer: Trainer) -> None:
        optimizer = trainer.optimizer
        if not isinstance(optimizer, EASGDWorker):
            raise TypeError(
                f"the easgd strategy needs its worker optimizer, got {type(optimizer).__name__}: "
                "build it with strategy.configure_optimizer(model.parameters(), lr=...)"
            )
        if optimizer.tau != self.tau:
            raise ValueError(f"the optimizer's tau {optimizer.tau} differs from {self.tau}")
        super().setup(trainer)  # the group, and rank 0's weights on every rank
        params = optimizer.params()
        if len({p.dtype for p in params}) > 1:
            raise ValueError("easgd: the optimized parameters must share one dtype")
        model = self._model = unwrap(trainer.model)
        if self.rank == 0:
            self._centre_module = copy.deepcopy(model)
            index = {id(p): i for i, p in enumerate(params)}
            by_position: dict[int, Tensor] = {}
            for mine, centre in zip(model.parameters(), self._centre_module.parameters()):
                centre.requires_grad_(False)
                if id(mine) in index:
                    by_position[index[id(mine)]] = centre
            if len(by_position) != len(params):
                raise ValueError("easgd: the optimizer holds parameters that are not the model's")
            self._centre = [by_position[i] for i in range(len(params))]
            with torch.no_grad():  # the centre starts where the workers do (x, not x + δv)
                for c, x in zip(self._centre, optimizer.own()):
                    c.copy_(x)
        if self.synchronous:
            optimizer.exchange = self._exchange_synchronous
        else:
            if self.rank == 0:
                self._server = CentreServer(
                    self._centre,
                    self.alpha,
                    self.world_size,
                    ordered=self.ordered,
                    timeout_s=self.timeout_s,
                )
            self._start_rpc()
            optimizer.exchange = self._exchange_asynchronous
        self._failed = False

    def _start_rpc(self) -> None:
        global _SERVER
        if self.world_size == 1:
            return
        from torch.distributed import rpc

        if self.rank == 0:
            if _SERVER is not None:
                raise RuntimeError("another easgd strategy is running in this process")
            _SERVER = self._server
        port = torch.tensor([local_port() if self.rank == 0 else 0], dtype=torch.int64)
        dist.broadcast(port, src=0)
        os.environ.setdefault("TP_SOCKET_IFNAME", "lo")  # TensorPipe listens on 127.0.0.1
        options = rpc.TensorPipeRpcBackendOptions(
            init_method=f"tcp://127.0.0.1:{int(port)}",
            rpc_timeout=self.timeout_s,
            num_worker_threads=max(16, 2 * self.world_size),
            _transports=["uv"],
            _channels=["basic"],
        )
        with warnings.catch_warnings():  # torch's agent start-up calls a deprecated helper
            warnings.filterwarnings(
                "ignore", message="You are using a Backend", category=UserWarning
            )
            rpc.init_rpc(
                _rpc_name(self.rank),
                rank=self.rank,
                world_size=self.world_size,
                rpc_backend_options=options,
            )
        self._rpc = True

    def on_exception(self, trainer: Trainer, exc: BaseException) -> None:
        del trainer, exc
        self._failed = True

    def teardown(self, trainer: Trainer) -> None:
        global _SERVER
        try:
            if self._rpc:
                from torch.distributed import rpc

                self._rpc = False
                rpc.shutdown(graceful=not self._failed)
        finally:
            if self._server is not None and _SERVER is self._server:
                _SERVER = None
            if isinstance(trainer.optimizer, EASGDWorker):
                trainer.optimizer.exchange = None
            super().teardown(trainer)

    # -- the exchanges ----------------------------------------------------------------------------
    @torch.no_grad()
    def _exchange_synchronous(self, own: list[Tensor]) -> list[Tensor]:
        """Eqs. 5–6: x̃_t to every rank, dⁱ = α(xⁱ − x̃_t), Σ dⁱ onto rank 0's x̃."""
        if self.world_size == 1:
            diffs = elastic_difference(own, self._centre, self.alpha)
            torch._foreach_add_(self._centre, diffs)
            return diffs
        if self.rank == 0:
            flat = _flatten(self._centre)
        else:
            flat = torch.empty(sum(t.numel() for t in own), dtype=own[0].dtype)
        dist.broadcast(flat, src=0)
        diffs = elastic_difference(own, _unflatten(flat, own), self.alpha)
        total = _flatten(diffs)  # a new tensor: the reduce may overwrite it off rank 0
        dist.reduce(total, dst=0, op=dist.ReduceOp.SUM)
        if self.rank == 0:
            torch._foreach_add_(self._centre, _unflatten(total, own))
        return diffs

    def _exchange_asynchronous(self, own: list[Tensor]) -> list[Tensor]:
        """Algorithms 1–2: the exchange on rank 0's server (a local call on rank 0)."""
        x = [t.detach() for t in own]
        if self.rank == 0:
            assert self._server is not None
            return self._server.exchange(0, x)
        from torch.distributed import rpc

        return rpc.rpc_sync(_rpc_name(0), _remote_exchange, args=(self.rank, x))

    # -- evaluation and checkpoints ---------------------------------------------------------------
    def eval_module(self, trainer: Trainer) -> nn.Module:
        """Rank 0: the centre (with rank 0's buffers); other ranks: their own model."""
        model = unwrap(trainer.model)
        centre = self._centre_module
        if centre is None:
            return model
        with torch.no_grad():
            for mine, theirs in zip(model.buffers(), centre.buffers()):
                theirs.copy_(mine)
        return centre

    @property
    def exchanges(self) -> int | None:
        """How many exchanges rank 0's centre has served (asynchronous mode; None elsewhere)."""
        return None if self._server is None else self._server.exchanges

    def centre(self) -> list[Tensor]:
        """A copy of x̃ in the optimizer's parameter order (rank 0; empty elsewhere)."""
        if self._server is not None:
            return self._server.snapshot()
        return [c.detach().clone() for c in self._centre]

    def tensor_state(self) -> dict[str, torch.Tensor]:
        """Rank 0's centre (rank 0 writes the checkpoint; every rank calls this as the checkpoint
        is taken; asynchronous: after a barrier, so that every rank's exchanges up to this step
        have reached it), and in one process the worker's model (``rank_state`` keeps it with
        several)."""
        if not self.synchronous:
            self.barrier()
        tensors = {f"centre.{i}": c for i, c in enumerate(self.centre())}
        if self.world_size == 1 and self._model is not None:
            for key, value in self._model.state_dict().items():
                tensors[f"worker.{key}"] = value.detach().clone()
        return tensors

    def load_tensor_state(self, tensors: dict[str, torch.Tensor]) -> None:
        if self.rank != 0 or not self._centre:
            return
        values = [tensors[f"centre.{i}"] for i in range(len(self._centre))]
        if self._server is not None:
            self._server.load(values)
        else:
            with torch.no_grad():
                for c, v in zip(self._centre, values, strict=True):
                    c.copy_(v)
        worker = {k[len("worker.") :]: v for k, v in tensors.items() if k.startswith("worker.")}
        if self.world_size == 1 and self._model is not None and worker:
            self._model.load_state_dict(worker, strict=True)

    def rank_state(self, trainer: Trainer) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """This rank's model (x, or the look-ahead point) and optimizer state (clock, x, v)."""
        tensors: dict[str, torch.Tensor] = {
            f"model.{k}": v for k, v in unwrap(trainer.model).state_dict().items()
        }
        optimizer = encode(trainer.optimizer.state_dict(), "optimizer", tensors)
        return {"optimizer": optimizer}, tensors

    def load_rank_state(
        self, trainer: Trainer, state: dict[str, Any], tensors: dict[str, torch.Tensor]
    ) -> None:
        model = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        unwrap(trainer.model).load_state_dict(model, strict=True)
        trainer.optimizer.load_state_dict(decode(state["optimizer"], tensors))

    def options(self) -> dict[str, Any]:
        return {
            "tau": self.tau,
            "alpha": self.alpha,
            "synchronous": self.synchronous,
            "ordered": self.ordered,
        }
