"""Downpour SGD: asynchronous SGD against a parameter server (catalog distbelief-2012; Dean et
al., "Large Scale Distributed Deep Networks", NIPS 2012, §4.1 and the supplement's client
pseudocode).

Rank 0 is a dedicated parameter server holding θ (rank 0's model) and trains nothing; ranks
1 … N − 1 are workers with their own replicas θᵢ. Worker i, with its step counter t (from 0),
its accrued gradient Δᵢ (0 at the start) and vᵢ the server version it last fetched, runs the
paper's client loop:

    if t mod n_fetch = 0:  θᵢ ← θ;  vᵢ ← version                           (fetch)
    gᵢ = ∇L(θᵢ; minibatch t)
    Δᵢ ← Δᵢ + gᵢ
    θᵢ ← local_step(θᵢ, gᵢ)       (the Trainer's own optimizer on the worker, e.g. θᵢ − η gᵢ)
    if t mod n_push = 0:   push(Δᵢ, vᵢ);  Δᵢ ← 0                              (push)

The server applies every push as it arrives, one at a time under a lock, with its optimizer U
(default Adagrad, the paper's choice: per-parameter rates made Downpour robust) at server_lr:

    staleness = version − vᵢ                     (updates applied since worker i's fetch,
                                                   its own earlier pushes included)
    θ ← U(θ, Δᵢ)        Adagrad: G ← G + Δᵢ²,  θ ← θ − server_lr · Δᵢ / (√G + ε)
    version ← version + 1

With one worker and n_fetch = n_push = 1 every step fetches θ, takes the gradient there and
pushes it before the next fetch, so θ follows U on the worker's batches exactly (tested against
torch's Adagrad and SGD to 1e-10). Per-epoch mean and max staleness and the version count go
into ``trainer.metrics`` on rank 0 (``staleness_mean``, ``staleness_max``, ``server_updates``),
hence into metrics.csv.

Data: the workers share each global batch of B examples, B/(N − 1) each, through torch's
``DistributedSampler`` over the N − 1 workers (worker rank r takes positions r − 1, r − 1 +
(N − 1), … of the epoch's permutation from ``seed + epoch``); the server takes no shard (its
"loader" yields nothing but has the workers' length, which sizes LR schedules).

Epochs: on rank 0 the Trainer's batch loop is replaced (``run_batches``) by serving the epoch:
pushes and fetches are applied only while the server is open for that epoch, and the epoch ends
when every worker has said it finished it. A worker ends its epoch by pushing what it accrued
since its last push, then reporting its step count (the server's Trainer adopts it, so
``max_steps`` stops every rank alike) and, for worker rank 1, its buffers (BatchNorm statistics;
the server's model has no forward passes of its own). Then every rank meets in the Trainer's
epoch-end collectives: train metrics summed over ranks (the server's count is 0), validation,
test and checkpoints on rank 0 with the server's θ. Between epochs the server is closed, so a
checkpoint or validation never sees θ move. The workers' mid-epoch metric sums run over a
worker-only group; checkpoints are taken at epoch ends only (``ModelCheckpoint(every_n_steps)``
is refused). A checkpoint stores θ and U's state as the run's model and optimizer, the version
count, and each worker's replica, optimizer state, Δᵢ and vᵢ.

Transport: ``torch.distributed.rpc`` (TensorPipe, bound to 127.0.0.1 on a free port rank 0
picks and broadcasts over the process group); the server object lives on rank 0. Every RPC
agent is shut down in ``teardown``, also after an exception (a failing worker tells the server,
which then fails its epoch instead of waiting). ``timeout_s`` bounds every RPC and how long the
server waits without hearing from any worker.

Deviations from the paper: one unsharded server (rank 0), not parameter shards on many
machines; fetch and push are blocking calls (the paper starts them in background threads), so
staleness comes from the other workers only through their pushes; the accrued gradient is
flushed at each epoch end and the server is idle between epochs; no Sandblaster L-BFGS, no
"warm starting" with one worker, no model parallelism within a replica. The server's learning
rate is constant (an LR schedule acts on the workers' local steps), and U gets θ's parameter
groups with server_lr only (no per-group settings).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler

from dlskills.distributed._base import DistributedStrategy, local_port, register_strategy
from dlskills.train.callbacks.base import CancelEpoch
from dlskills.train.checkpoint import decode, encode
from dlskills.train.strategy import unwrap

if TYPE_CHECKING:
    from dlskills.train.trainer import Trainer

NPROC_MESSAGE = "downpour needs a parameter-server rank besides the workers: --nproc ≥ 2"


def _check_period(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int ≥ 1, got {value!r}")
    return value


class ParameterServer:
    """θ (rank 0's parameters) and the server optimizer, applied one push at a time.

    Fetches and pushes carry the worker's epoch and wait until the server is open for it
    (``serve``); ``serve`` returns when every worker has called ``finish`` for the epoch."""

    def __init__(
        self,
        params: Sequence[Tensor],
        optimizer: torch.optim.Optimizer,
        workers: Sequence[int],
        *,
        timeout_s: float,
    ) -> None:
        self.params = list(params)
        self.optimizer = optimizer
        self.workers = sorted(workers)
        self.timeout_s = timeout_s
        self.version = 0
        self._condition = threading.Condition()
        self._open: int | None = None  # the epoch being served
        self._finished: dict[int, dict[str, Any]] = {}
        self._staleness: list[int] = []
        self._heard = time.monotonic()
        self._failure: str | None = None

    def _wait_open(self, rank: int, epoch: int) -> None:
        """Under the lock: until the server serves ``epoch`` (or fails)."""
        if not self._condition.wait_for(
            lambda: self._open == epoch or self._failure is not None, timeout=self.timeout_s
        ):
            raise TimeoutError(
                f"downpour: worker rank {rank} waited {self.timeout_s:.0f} s for the server to "
                f"open epoch {epoch}"
            )
        if self._failure is not None:
            raise RuntimeError(f"downpour server failed: {self._failure}")
        self._heard = time.monotonic()

    @torch.no_grad()
    def fetch(self, rank: int, epoch: int) -> tuple[int, list[Tensor]]:
        with self._condition:
            self._wait_open(rank, epoch)
            return self.version, [p.detach().to("cpu", copy=True) for p in self.params]

    def push(self, rank: int, epoch: int, gradients: Sequence[Tensor | None], fetched: int) -> int:
        if len(gradients) != len(self.params):
            raise ValueError(
                f"rank {rank} pushed {len(gradients)} gradients for {len(self.params)}"
            )
        with self._condition:
            self._wait_open(rank, epoch)
            staleness = self.version - fetched
            for p, g in zip(self.params, gradients):
                p.grad = None if g is None else g.to(device=p.device, dtype=p.dtype)
            try:
                self.optimizer.step()
            finally:
                for p in self.params:
                    p.grad = None
            self.version += 1
            self._staleness.append(staleness)
            return staleness

    def finish(self, rank: int, epoch: int, report: dict[str, Any]) -> None:
        with self._condition:
            self._wait_open(rank, epoch)
            self._finished[rank] = report
            self._condition.notify_all()

    def abort(self, rank: int, message: str) -> None:
        with self._condition:
            self._failure = self._failure or f"worker rank {rank}: {message}"
            self._condition.notify_all()

    def serve(self, epoch: int) -> tuple[dict[int, dict[str, Any]], list[int]]:
        """Open ``epoch``, wait until every worker finished it, close; the workers' reports and
        the staleness of each push applied in it."""
        with self._condition:
            self._open, self._finished, self._staleness = epoch, {}, []
            self._heard = time.monotonic()
            self._condition.notify_all()
            try:
                while len(self._finished) < len(self.workers):
                    if self._failure is not None:
                        raise RuntimeError(f"downpour: {self._failure}")
                    silent = time.monotonic() - self._heard
                    if silent > self.timeout_s:
                        missing = [r for r in self.workers if r not in self._finished]
                        raise TimeoutError(
                            f"downpour server: no word from any worker for {silent:.0f} s in "
                            f"epoch {epoch}; unfinished worker ranks {missing}"
                        )
                    self._condition.wait(timeout=min(1.0, self.timeout_s - silent + 0.01))
            finally:
                self._open = None
            return dict(self._finished), list(self._staleness)

    def fail(self, message: str) -> None:
        """Fail every waiting call (the server's own fit is ending with an error)."""
        with self._condition:
            self._failure = self._failure or message
            self._condition.notify_all()


_SERVER: ParameterServer | None = None  # rank 0's, for the calls arriving by RPC


def _server() -> ParameterServer:
    if _SERVER is None:
        raise RuntimeError("no downpour parameter server on this rank (rank 0 has not set it up)")
    return _SERVER


def _remote_fetch(rank: int, epoch: int) -> tuple[int, list[Tensor]]:
    return _server().fetch(rank, epoch)


def _remote_push(rank: int, epoch: int, gradients: list[Tensor | None], fetched: int) -> int:
    return _server().push(rank, epoch, gradients, fetched)


def _remote_finish(rank: int, epoch: int, report: dict[str, Any]) -> None:
    _server().finish(rank, epoch, report)


def _remote_abort(rank: int, message: str) -> None:
    _server().abort(rank, message)


def _rpc_name(rank: int) -> str:
    return f"downpour{rank}"


class _NoShard:
    """The server's train "loader": no batches, but the workers' length per epoch (what
    ``runs.build`` sizes LR schedules by)."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Any:
        return iter(())


@register_strategy("downpour", catalog_id="distbelief-2012")
class Downpour(DistributedStrategy):
    """Downpour SGD (module docstring): rank 0 serves θ, ranks 1 … N − 1 train.

    Args:
        n_fetch: a worker fetches θ before its steps t with t mod n_fetch = 0 (≥ 1).
        n_push: it pushes its accrued gradient after steps t with t mod n_push = 0 (≥ 1).
            ``dlskills train --sync-every K`` sets both.
        server_optimizer: the server's update, any ``dlskills.optim.create`` name
            (default "adagrad").
        server_lr: its learning rate (default: the run's lr, the optimizer's initial lr).
        **base: ``backend`` and ``timeout_s`` of ``DistributedStrategy`` (the RPC timeout too).
    """

    name = "downpour"

    def __init__(
        self,
        *,
        n_fetch: int = 1,
        n_push: int = 1,
        server_optimizer: str = "adagrad",
        server_lr: float | None = None,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        from dlskills.optim import OPTIMIZERS

        self.n_fetch = _check_period("n_fetch", n_fetch)
        self.n_push = _check_period("n_push", n_push)
        if not isinstance(server_optimizer, str):
            raise ValueError(
                f"server_optimizer must be an optimizer name, got {server_optimizer!r}"
            )
        try:
            self.server_optimizer = OPTIMIZERS.entry(server_optimizer).name
        except ValueError as exc:
            raise ValueError(f"server_optimizer: {exc}") from exc
        if server_lr is not None and (
            isinstance(server_lr, bool)
            or not isinstance(server_lr, int | float)
            or not 0 < server_lr < float("inf")
        ):
            raise ValueError(f"server_lr must be a finite number > 0, got {server_lr!r}")
        self.server_lr = None if server_lr is None else float(server_lr)
        self._server: ParameterServer | None = None
        self._workers_group: Any = None
        self._rpc = False
        self._failed = False
        self._in_loop = False
        self._params: list[Tensor] = []
        self._accrued: list[Tensor | None] = []
        self._fetched_version = 0
        self._fetched_step: int | None = None  # the step whose fetch is done
        self._pending = False  # Δ holds gradients not pushed yet
        self._version = 0  # rank 0: restored version count before the server exists

    # -- ranks ----------------------------------------------------------------------------------
    @classmethod
    def check_world_size(cls, world_size: int) -> None:
        if world_size < 2:
            raise ValueError(NPROC_MESSAGE)

    @classmethod
    def data_ranks(cls, world_size: int) -> int:
        return world_size - 1

    @property
    def is_server(self) -> bool:
        return self.rank == 0

    def start(self, device: torch.device) -> None:
        self.check_world_size(self.world_size)
        super().start(device)

    # -- data -----------------------------------------------------------------------------------
    def prepare_loader(self, loader: Any, seed: int) -> Any:
        """Workers: their B/(N − 1) share of each global batch; the server: no batches."""
        self.check_world_size(self.world_size)
        workers = self.world_size - 1
        if isinstance(getattr(loader, "sampler", None), DistributedSampler):
            return _NoShard(len(loader)) if self.is_server else loader
        if not isinstance(loader, DataLoader) or loader.batch_size is None:
            raise ValueError(
                f"strategy {self.name!r} shards a DataLoader with a batch_size; got "
                f"{type(loader).__name__}"
            )
        if loader.batch_size % workers:
            raise ValueError(
                f"batch size {loader.batch_size} is not divisible by the {workers} workers: each "
                "worker takes batch/(nproc − 1) examples of every global batch (--batch-size)"
            )
        sampler = DistributedSampler(
            loader.dataset,
            num_replicas=workers,
            rank=max(self.rank - 1, 0),
            shuffle=True,
            seed=seed,
            drop_last=False,
        )
        shard = DataLoader(
            loader.dataset,
            batch_size=loader.batch_size // workers,
            sampler=sampler,
            collate_fn=loader.collate_fn,
            pin_memory=loader.pin_memory,
            drop_last=loader.drop_last,
        )
        return _NoShard(len(shard)) if self.is_server else shard

    # -- lifetime -------------------------------------------------------------------------------
    def setup(self, trainer: Trainer) -> None:
        from dlskills.train.callbacks.model_checkpoint import ModelCheckpoint

        self.check_world_size(self.world_size)
        for callback in trainer.callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.every_n_steps:
                raise ValueError(
                    "downpour checkpoints at epoch ends only (the server takes no steps): "
                    "leave out the checkpoint's every_n_steps"
                )
        super().setup(trainer)  # the group; rank 0's weights (version 0) on every rank
        self._workers_group = dist.new_group(ranks=list(range(1, self.world_size)))
        model = unwrap(trainer.model)
        self._params = list(model.parameters())
        self._accrued = [None] * len(self._params)
        self._fetched_version, self._fetched_step, self._pending = 0, None, False
        if self.is_server:
            self._build_server(trainer)
        self._start_rpc()
        self._failed = False

    def _build_server(self, trainer: Trainer) -> None:
        from dlskills import optim

        original = trainer.optimizer
        first = original.param_groups[0]
        lr = self.server_lr if self.server_lr is not None else first.get("initial_lr", first["lr"])
        self.server_lr = float(lr)
        groups = [{"params": list(group["params"])} for group in original.param_groups]
        try:
            server_optimizer = optim.create(self.server_optimizer, groups, lr=self.server_lr)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"server_optimizer {self.server_optimizer!r}: {exc}") from exc
        # rank 0's optimizer is the server's: checkpoints store its state, metrics its lr
        trainer.optimizer = server_optimizer
        self._server = ParameterServer(
            self._params,
            server_optimizer,
            range(1, self.world_size),
            timeout_s=self.timeout_s,
        )
        self._server.version = self._version

    def _start_rpc(self) -> None:
        global _SERVER
        from torch.distributed import rpc

        if self.is_server:
            if _SERVER is not None:
                raise RuntimeError("another downpour server is running in this process")
            _SERVER = self._server
        port = torch.tensor([local_port() if self.is_server else 0], dtype=torch.int64)
        dist.broadcast(port, src=0)
        os.environ.setdefault("TP_SOCKET_IFNAME", "lo")  # TensorPipe listens on 127.0.0.1
        options = rpc.TensorPipeRpcBackendOptions(
            init_method=f"tcp://127.0.0.1:{int(port)}",
            rpc_timeout=self.timeout_s,
            num_worker_threads=max(16, 2 * self.world_size),
            _transports=["uv"],
            _channels=["basic"],
        )
        rpc.init_rpc(
            _rpc_name(self.rank),
            rank=self.rank,
            world_size=self.world_size,
            rpc_backend_options=options,
        )
        self._rpc = True

    def on_exception(self, trainer: Trainer, exc: BaseException) -> None:
        del trainer
        self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        """Tell the server (or, on rank 0, every waiting call) that this rank is failing."""
        if self._failed:
            return
        self._failed = True
        message = f"{type(exc).__name__}: {exc}"
        if self._server is not None:
            self._server.fail(f"the server failed: {message}")
        elif self._rpc:
            from torch.distributed import rpc

            with contextlib.suppress(Exception):
                rpc.rpc_sync(_rpc_name(0), _remote_abort, args=(self.rank, message), timeout=5.0)

    def teardown(self, trainer: Trainer) -> None:
        global _SERVER
        try:
            if self._rpc:
                from torch.distributed import rpc

                self._rpc = False
                if self._failed:
                    rpc.shutdown(graceful=False)
                else:
                    rpc.shutdown(graceful=True, timeout=self.timeout_s)
        finally:
            if _SERVER is not None and _SERVER is self._server:
                _SERVER = None
            self._workers_group = None
            super().teardown(trainer)

    # -- the epoch ------------------------------------------------------------------------------
    def run_batches(
        self,
        trainer: Trainer,
        batches: Iterable[Any],
        first_index: int,
        loop: Callable[[Iterable[Any], int], None],
    ) -> None:
        if self.is_server:
            self._serve_epoch(trainer)
            return
        self._in_loop = True
        try:
            with contextlib.suppress(CancelEpoch):
                loop(batches, first_index)
        except BaseException as exc:
            self._fail(exc)
            raise
        finally:
            self._in_loop = False
        if self._pending:
            self._push(trainer)
        report: dict[str, Any] = {"step": trainer.step}
        if self.rank == 1:
            report["classification"] = trainer._classification
            report["buffers"] = [b.detach().cpu() for b in unwrap(trainer.model).buffers()]
        self._call(_remote_finish, self.rank, trainer.epoch, report)

    def _serve_epoch(self, trainer: Trainer) -> None:
        assert self._server is not None
        reports, staleness = self._server.serve(trainer.epoch)
        # the workers take equal steps (equal shards); the server's Trainer counts theirs
        trainer.step = max(int(r["step"]) for r in reports.values())
        first = reports[min(reports)]
        if first.get("classification") is not None:
            trainer._classification = first["classification"]  # for train_accuracy's sum
        with torch.no_grad():
            for mine, theirs in zip(unwrap(trainer.model).buffers(), first.get("buffers", [])):
                mine.copy_(theirs)
        trainer.metrics["staleness_mean"] = (
            sum(staleness) / len(staleness) if staleness else float("nan")
        )
        trainer.metrics["staleness_max"] = float(max(staleness)) if staleness else float("nan")
        trainer.metrics["server_updates"] = float(self._server.version)

    def _call(self, function: Callable[..., Any], *args: Any) -> Any:
        from torch.distributed import rpc

        return rpc.rpc_sync(_rpc_name(0), function, args=args)

    # -- the worker's client loop ---------------------------------------------------------------
    def on_batch_start(self, trainer: Trainer) -> None:
        if self.is_server or trainer.step % self.n_fetch or self._fetched_step == trainer.step:
            return
        version, values = self._call(_remote_fetch, self.rank, trainer.epoch)
        with torch.no_grad():
            for p, v in zip(self._params, values, strict=True):
                p.copy_(v)
        self._fetched_version, self._fetched_step = int(version), trainer.step

    def on_batch_end(self, trainer: Trainer) -> None:
        if self.is_server:
            return
        with torch.no_grad():  # the gradient the local step used (after clipping callbacks)
            for i, p in enumerate(self._params):
                if p.grad is None:
                    continue
                if self._accrued[i] is None:
                    self._accrued[i] = p.grad.detach().clone()
                else:
                    self._accrued[i].add_(p.grad)
        self._pending = True
        if (trainer.step - 1) % self.n_push == 0:  # t, the step just taken
            self._push(trainer)

    def _push(self, trainer: Trainer) -> None:
        gradients = [None if g is None else g.cpu() for g in self._accrued]
        self._call(_remote_push, self.rank, trainer.epoch, gradients, self._fetched_version)
        self._accrued = [None] * len(self._params)
        self._pending = False

    # -- collectives ----------------------------------------------------------------------------
    def reduce_sum(self, tensor: Tensor) -> Tensor:
        """Within a worker's batch loop (the Trainer's log interval) the sum over the workers;
        at epoch ends over every rank (the server adds zeros)."""
        if self._in_loop and self._workers_group is not None:
            tensor = tensor.clone()
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=self._workers_group)
            return tensor
        return super().reduce_sum(tensor)

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The server's version count (rank 0 writes the checkpoint)."""
        return {"version": self._server.version if self._server is not None else self._version}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._version = int(state.get("version", 0))
        if self._server is not None:
            self._server.version = self._version

    def rank_state(self, trainer: Trainer) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """A worker's replica θᵢ, its optimizer state, Δᵢ and vᵢ (the server: nothing more)."""
        if self.is_server:
            return {}, {}
        tensors: dict[str, Tensor] = {
            f"model.{k}": v for k, v in unwrap(trainer.model).state_dict().items()
        }
        for i, g in enumerate(self._accrued):
            if g is not None:
                tensors[f"accrued.{i}"] = g.detach().cpu()
        optimizer = encode(trainer.optimizer.state_dict(), "optimizer", tensors)
        plain = {
            "optimizer": optimizer,
            "fetched_version": self._fetched_version,
            "fetched_step": self._fetched_step,
            "pending": self._pending,
        }
        return plain, tensors

    def load_rank_state(
        self, trainer: Trainer, state: dict[str, Any], tensors: dict[str, Tensor]
    ) -> None:
        if self.is_server:
            return
        model = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        unwrap(trainer.model).load_state_dict(model, strict=True)
        trainer.optimizer.load_state_dict(decode(state["optimizer"], tensors))
        self._accrued = [
            tensors[f"accrued.{i}"].to(p.device).clone() if f"accrued.{i}" in tensors else None
            for i, p in enumerate(self._params)
        ]
        self._fetched_version = int(state["fetched_version"])
        self._fetched_step = state["fetched_step"]
        self._pending = bool(state["pending"])

    def options(self) -> dict[str, Any]:
        return {
            "n_fetch": self.n_fetch,
            "n_push": self.n_push,
            "server_optimizer": self.server_optimizer,
            "server_lr": self.server_lr,
        }
