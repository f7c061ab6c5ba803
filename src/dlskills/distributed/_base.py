"""What every strategy on torch.distributed shares: the process group from torchrun's environment,
the sharded train loader, metric and checkpoint collectives, and the strategy registry.

Ranks and sizes come from the environment torchrun (and ``dlskills train --nproc``) sets: RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. With WORLD_SIZE 1 (or unset) nothing is
started and every collective is the identity, so a strategy also runs in a plain process.

Data: each global batch of B examples is split over the N ranks, B/N each, by torch's
``DistributedSampler`` (one permutation per epoch from ``seed + epoch``, the same on every rank;
rank r takes positions r, r + N, r + 2N, …). Batch j of every rank together is batch j of that
permutation, so N ranks take the same optimizer steps as one process on the global batches
(the sampler pads the permutation with its first examples to a multiple of N).

Checkpoints: each rank's own part (random states, and for replicas that drift apart their model
and optimizer) is serialised to JSON + one byte buffer and gathered on rank 0 — plain tensors
and JSON, no pickle — which writes the one checkpoint.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import time
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from dlskills._registry import Registry
from dlskills._seed import seed_everything
from dlskills.train.strategy import Strategy, unwrap

if TYPE_CHECKING:
    from dlskills.train.trainer import Trainer

STRATEGIES = Registry("strategy", discover="dlskills.distributed")
register_strategy = STRATEGIES.register

#: how long a collective may wait for a rank before the group fails (a dead peer, a hang)
DEFAULT_TIMEOUT_S = 300.0
_RANK_SEED_STRIDE = 1_000_003


def environment_ranks() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) without one."""
    values = []
    for key, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0)):
        raw = os.environ.get(key)
        try:
            values.append(default if raw is None else int(raw))
        except ValueError as exc:
            raise ValueError(f"environment variable {key}={raw!r} is not an integer") from exc
    rank, world_size, local_rank = values
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"RANK={rank} and WORLD_SIZE={world_size} do not describe a rank")
    return rank, world_size, local_rank


def local_port(port: int | None = None) -> int:
    """``port`` when it is free on 127.0.0.1 (a one-line error naming --port otherwise), else a
    free port the system picks."""
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"--port must be in 1…65535, got {port}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port or 0))
        except OSError as exc:
            raise ValueError(
                f"--port {port} is in use on 127.0.0.1 ({exc.strerror}); leave --port out to "
                "take a free one"
            ) from exc
        return sock.getsockname()[1]


class DistributedStrategy(Strategy):
    """Base of the strategies in this package: one process per rank, gloo on CPU and nccl on
    CUDA devices (``backend`` overrides), ``timeout_s`` for every collective."""

    name = "distributed"

    def __init__(self, *, backend: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        super().__init__()
        if backend is not None and backend not in ("gloo", "nccl", "mpi"):
            raise ValueError(f"backend must be 'gloo', 'nccl' or 'mpi', got {backend!r}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
        self.backend = backend
        self.timeout_s = float(timeout_s)
        self._owns_group = False
        if dist.is_available() and dist.is_initialized():
            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        else:
            self.rank, self.world_size, _ = environment_ranks()

    @classmethod
    def check_world_size(cls, world_size: int) -> None:
        """Raise ValueError (naming --nproc) when the strategy cannot run on ``world_size``."""
        if world_size < 1:
            raise ValueError(f"--nproc must be ≥ 1, got {world_size}")

    @classmethod
    def data_ranks(cls, world_size: int) -> int:
        """How many ranks share each global batch (all of them, unless some only serve)."""
        return world_size

    # -- the process group ------------------------------------------------------------------------
    def start(self, device: torch.device) -> None:
        """Join the group torchrun describes (no-op when one exists or WORLD_SIZE is 1)."""
        if self.world_size == 1 or dist.is_initialized():
            return
        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
        if missing:
            raise ValueError(
                f"WORLD_SIZE={self.world_size} but {' and '.join(missing)} unset: start the "
                "ranks with torchrun or `dlskills train --nproc N`"
            )
        backend = self.backend or ("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            torch.cuda.set_device(environment_ranks()[2])
        endpoint = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
        hosts_store = self.rank == 0 and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True"
        if not hosts_store:
            self._wait_for_store(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]))
        timeout = datetime.timedelta(seconds=self.timeout_s)
        try:
            store, _, _ = next(
                dist.rendezvous(
                    "env://", rank=self.rank, world_size=self.world_size, timeout=timeout
                )
            )
            # torchrun's agent keeps one store across restarts: without a per-attempt prefix a
            # restarted rank can read a dead rank's address left by the previous attempt
            attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
            dist.init_process_group(
                backend,
                store=dist.PrefixStore(f"dlskills/attempt-{attempt}", store),
                rank=self.rank,
                world_size=self.world_size,
                timeout=timeout,
            )
        except (RuntimeError, dist.DistError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConnectionError(
                f"rank {self.rank} could not join the process group at MASTER_ADDR:MASTER_PORT "
                f"= {endpoint} within {self.timeout_s:g} s ({reason})"
            ) from exc
        self._owns_group = True

    def _wait_for_store(self, host: str, port: int) -> None:
        """Wait (up to the timeout) until the rendezvous store accepts connections, so that an
        unreachable one is one clear error instead of the store client's logged C++ traces."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                with socket.create_connection((host, port), timeout=1.0):
                    return
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise ConnectionError(
                        f"rank {self.rank} could not reach the rendezvous at MASTER_ADDR:"
                        f"MASTER_PORT = {host}:{port} within {self.timeout_s:g} s "
                        f"({exc.strerror or exc})"
                    ) from exc
                time.sleep(0.1)

    def setup(self, trainer: Trainer) -> None:
        self.start(trainer.device)
        if self.world_size > 1:
            # every rank starts from rank 0's weights; dropout and augmentation differ per rank
            with torch.no_grad():
                for tensor in unwrap(trainer.model).state_dict().values():
                    dist.broadcast(tensor, src=0)
            if self.rank:
                seed_everything((trainer.seed + _RANK_SEED_STRIDE * self.rank) % 2**32)

    def teardown(self, trainer: Trainer) -> None:
        trainer.model = release_data_parallel(trainer.model)
        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()
        self._owns_group = False

    # -- data -----------------------------------------------------------------------------------
    def prepare_loader(self, loader: Any, seed: int) -> Any:
        if self.world_size == 1 or isinstance(getattr(loader, "sampler", None), DistributedSampler):
            return loader
        if not isinstance(loader, DataLoader) or loader.batch_size is None:
            raise ValueError(
                f"strategy {self.name!r} shards a DataLoader with a batch_size; got "
                f"{type(loader).__name__}"
            )
        if loader.batch_size % self.world_size:
            raise ValueError(
                f"batch size {loader.batch_size} is not divisible by the {self.world_size} ranks: "
                "each rank takes batch/nproc examples of every global batch (--batch-size)"
            )
        sampler = DistributedSampler(
            loader.dataset,
            num_replicas=self.world_size,
            rank=self.rank,
            shuffle=True,
            seed=seed,
            drop_last=False,
        )
        return DataLoader(
            loader.dataset,
            batch_size=loader.batch_size // self.world_size,
            sampler=sampler,
            collate_fn=loader.collate_fn,
            pin_memory=loader.pin_memory,
            drop_last=loader.drop_last,
        )

    def on_epoch_start(self, trainer: Trainer) -> None:
        sampler = getattr(trainer.train_loader, "sampler", None)
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(trainer.epoch)

    # -- collectives ------------------------------------------------------------------------------
    def reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            tensor = tensor.clone()
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast(self, value: Any) -> Any:
        if self.world_size == 1:
            return value
        return broadcast_json(value if self.rank == 0 else None)

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def gather_rank_states(
        self, state: dict[str, Any], tensors: dict[str, torch.Tensor]
    ) -> list[tuple[dict[str, Any], dict[str, torch.Tensor]]] | None:
        if self.world_size == 1:
            return [(state, tensors)]
        return gather_states(state, tensors, self.world_size, self.rank)

    def describe(self) -> dict[str, Any]:
        return {"strategy": self.name, "world_size": self.world_size, **self.options()}

    def options(self) -> dict[str, Any]:
        """The strategy's own settings (recorded in summary.json)."""
        return {}


def release_data_parallel(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DistributedDataParallel wrapper, the wrapper's reducer freed now,
    while the process group it holds is still alive (``model`` itself when it is no wrapper).

    torch frees a reducer holding the GIL. Were it the group's last owner (the group destroyed
    first), the group's destructor would join gloo's worker thread while that thread waits for
    the GIL to free its last finished work item: a deadlock, seen as a rank hanging at exit."""
    if not isinstance(model, DistributedDataParallel):
        return model
    for owner_of_reducer in ("logger", "reducer"):
        if hasattr(model, owner_of_reducer):
            delattr(model, owner_of_reducer)
    return model.module


def broadcast_json(value: Any, src: int = 0) -> Any:
    """``value`` (JSON data, given on rank ``src``) on every rank."""
    payload = json.dumps(value).encode() if dist.get_rank() == src else b""
    size = torch.tensor([len(payload)], dtype=torch.int64)
    dist.broadcast(size, src=src)
    buffer = torch.zeros(int(size), dtype=torch.uint8)
    if dist.get_rank() == src:
        buffer.copy_(torch.frombuffer(bytearray(payload), dtype=torch.uint8))
    dist.broadcast(buffer, src=src)
    return json.loads(buffer.numpy().tobytes().decode())


def _pack(state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> tuple[bytes, torch.Tensor]:
    layout = []
    chunks = []
    for key in sorted(tensors):
        tensor = tensors[key].detach().to("cpu").contiguous()
        raw = (
            tensor.reshape(-1).view(torch.uint8)
            if tensor.numel()
            else torch.empty(0, dtype=torch.uint8)
        )
        layout.append(
            [key, str(tensor.dtype).removeprefix("torch."), list(tensor.shape), raw.numel()]
        )
        chunks.append(raw)
    header = json.dumps({"state": state, "tensors": layout}).encode()
    body = torch.cat(chunks) if chunks else torch.empty(0, dtype=torch.uint8)
    return header, body


def _unpack(header: bytes, body: torch.Tensor) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    record = json.loads(header.decode())
    tensors, offset = {}, 0
    for key, dtype, shape, nbytes in record["tensors"]:
        raw = body[offset : offset + nbytes].clone()
        tensors[key] = raw.view(getattr(torch, dtype)).reshape(shape)
        offset += nbytes
    return record["state"], tensors


def gather_states(
    state: dict[str, Any], tensors: dict[str, torch.Tensor], world_size: int, rank: int
) -> list[tuple[dict[str, Any], dict[str, torch.Tensor]]] | None:
    """Every rank's (JSON state, tensors) on rank 0, as bytes over the group; None elsewhere."""
    header, body = _pack(state, tensors)
    sizes = torch.tensor([len(header), body.numel()], dtype=torch.int64)
    all_sizes = [torch.zeros(2, dtype=torch.int64) for _ in range(world_size)]
    dist.all_gather(all_sizes, sizes)
    longest_header = max(int(s[0]) for s in all_sizes)
    longest_body = max(int(s[1]) for s in all_sizes)
    padded = torch.zeros(longest_header + longest_body, dtype=torch.uint8)
    padded[: len(header)] = torch.frombuffer(bytearray(header), dtype=torch.uint8)
    padded[longest_header : longest_header + body.numel()] = body
    gathered = [torch.empty_like(padded) for _ in range(world_size)] if rank == 0 else None
    dist.gather(padded, gathered, dst=0)
    if rank != 0:
        return None
    result = []
    for buffer, (header_size, body_size) in zip(gathered, (s.tolist() for s in all_sizes)):
        head = buffer[:header_size].numpy().tobytes()
        result.append(_unpack(head, buffer[longest_header : longest_header + body_size]))
    return result
