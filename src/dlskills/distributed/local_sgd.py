"""Local SGD and post-local SGD (catalog dist-survey-2018; Lin, Stich, Patel & Jaggi, "Don't Use
Large Mini-Batches, Use Local SGD", ICLR 2020; Stich, "Local SGD Converges Fast and
Communicates Little", ICLR 2019).

Every rank runs its own optimizer on its shard; every H steps the replicas are replaced by their
average. With a warm-up of W steps first (post-local SGD), the first W steps all-reduce the
gradients as DDP does:

    t ≤ W:   θ ← opt(θ, (1/N) Σ_r g_r)                       (mini-batch SGD)
    t > W:   θ_r ← opt_r(θ_r, g_r)                             (local steps)
    then, if t ≥ W and (t − W) % H = 0:  θ_r ← (1/N) Σ_s θ_s   (model averaging)

with t the number of optimizer steps taken so far (1, 2, …): without a warm-up the replicas
meet after steps H, 2H, …, the schedule of Stich's and Lin et al.'s algorithms.

Communication falls to 1/H of DDP's after the warm-up. Built on torch's own pieces: a DDP
wrapper with ``post_localSGD_hook`` (global all-reduce before W, none after) and
``PeriodicModelAverager(period=H, warmup_steps=W)`` after each optimizer step. With plain SGD
(no momentum, no weight decay state) and H = 1 the averaged step equals DDP's (tested).
Optimizer states (momentum buffers) stay local, as in the paper; a checkpoint therefore stores
every rank's model and optimizer state, so a resumed run continues bit-exactly.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import torch
from torch.distributed.algorithms.ddp_comm_hooks.post_localSGD_hook import (
    PostLocalSGDState,
    post_localSGD_hook,
)
from torch.distributed.algorithms.model_averaging.averagers import PeriodicModelAverager
from torch.nn.parallel import DistributedDataParallel

from dlskills.distributed._base import DistributedStrategy, register_strategy
from dlskills.train.checkpoint import decode, encode
from dlskills.train.strategy import unwrap

if TYPE_CHECKING:
    from dlskills.train.trainer import Trainer


@register_strategy("local-sgd", catalog_id="dist-survey-2018", aliases=("post-local-sgd",))
class LocalSGD(DistributedStrategy):
    """Average the replicas every ``sync_every`` (H ≥ 1) optimizer steps after
    ``warmup_steps`` (W ≥ 0) steps of gradient all-reduce."""

    name = "local-sgd"

    def __init__(self, *, sync_every: int = 8, warmup_steps: int = 0, **base: Any) -> None:
        super().__init__(**base)
        if isinstance(sync_every, bool) or not isinstance(sync_every, int) or sync_every < 1:
            raise ValueError(f"sync_every must be an int ≥ 1, got {sync_every!r}")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an int ≥ 0, got {warmup_steps!r}")
        self.sync_every = sync_every
        self.warmup_steps = warmup_steps
        self._hook_state: PostLocalSGDState | None = None
        self._averager: PeriodicModelAverager | None = None

    def setup(self, trainer: Trainer) -> None:
        super().setup(trainer)
        if self.world_size == 1 or isinstance(trainer.model, DistributedDataParallel):
            return
        device_ids = [trainer.device] if trainer.device.type == "cuda" else None
        model = DistributedDataParallel(trainer.model, device_ids=device_ids)
        self._hook_state = PostLocalSGDState(
            process_group=None,
            subgroup=None,
            start_localSGD_iter=self.warmup_steps,
            post_local_gradient_allreduce=False,
        )
        model.register_comm_hook(self._hook_state, post_localSGD_hook)
        self._averager = PeriodicModelAverager(
            period=self.sync_every, warmup_steps=self.warmup_steps
        )
        self._hook_state.iter = min(trainer.step, self.warmup_steps)
        trainer.model = model

    def on_batch_end(self, trainer: Trainer) -> None:
        if self._averager is not None:
            # the averager's clock is the steps taken (its own would count from 0, averaging
            # after steps 1, H + 1, …); set from the trainer, it also survives a resume
            self._averager.step = trainer.step
            self._averager.average_parameters(unwrap(trainer.model).parameters())

    def no_sync(self, trainer: Trainer) -> contextlib.AbstractContextManager[Any]:
        model = trainer.model
        if isinstance(model, DistributedDataParallel):
            return model.no_sync()
        return contextlib.nullcontext()

    def rank_state(self, trainer: Trainer) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
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
        if self._hook_state is not None:
            self._hook_state.iter = min(trainer.step, self.warmup_steps)

    def options(self) -> dict[str, Any]:
        return {"sync_every": self.sync_every, "warmup_steps": self.warmup_steps}

    def bytes_per_step(self, parameter_bytes: int, step: int) -> float:
        """Bytes one rank sends in its ``step``-th step (1, 2, …) by the ring all-reduce's
        count, 2(N − 1)/N of the buffer: gradients up to W, then parameters every H-th step."""
        ring = 2 * (self.world_size - 1) / self.world_size * parameter_bytes
        if step <= self.warmup_steps:
            return ring
        return ring if (step - self.warmup_steps) % self.sync_every == 0 else 0.0
