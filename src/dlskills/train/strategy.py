"""How a fit is spread over processes: the contract between the Trainer and
``dlskills.distributed``.

A ``Strategy`` is a ``Callback`` with a few more hooks. The Trainer holds exactly one (the default,
``SingleProcess``, does nothing) and calls, besides the callback events it overrides:

    prepare_loader(loader, seed)   the train loader this rank iterates (a shard of each global
                                   batch); runs.build calls it before sizing the LR schedule
    configure_optimizer(...)       an optimizer the strategy needs instead of the config's
                                   (None: keep the config's)
    start(device)                  join the process group (idempotent); runs.train_run calls it
                                   before anything is written, to agree on the run folder
    setup(trainer)                 at the start of ``fit``, after the model is on its device and
                                   before a checkpoint is restored: wrap the model (DDP), start
                                   communication, seed this rank
    eval_module(trainer)           the module validation and test evaluate, and whose weights
                                   a checkpoint stores as ``model.*`` (EASGD: the centre
                                   variable; default: the model)
    reduce_sum(tensor)             the sum over ranks (metrics of the train shards)
    broadcast(value)               rank 0's JSON value on every rank: the validation metrics, so
                                   every rank's callbacks (early stopping, checkpoint choice)
                                   decide alike, and the run folder's name
    rank_state(trainer)            the part of a checkpoint that differs between ranks: the random
                                   states always; replicas that drift apart (local SGD, EASGD) add
                                   their model and optimizer; ``gather_rank_states`` brings every
                                   rank's to rank 0, which writes the checkpoint
    load_rank_state(...)           the inverse, on every rank after a restore
    run_batches(trainer, batches, first_index, loop)
                                   an epoch's batches: ``loop(batches, first_index)`` is the
                                   Trainer's batch loop; a strategy may wrap it, or replace
                                   it on a rank that trains nothing (Downpour's server)
    teardown(trainer)              at the end of ``fit`` (also after an exception)

Only rank 0 (``is_main``) writes files; every rank takes part in the collectives (metric sums,
checkpoint gathers), so every rank must run the same callbacks at the same steps. Strategies that
cannot keep every rank's step count equal (asynchronous ones) say how they meet at epoch ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from dlskills.train.callbacks.base import Callback

if TYPE_CHECKING:
    from dlskills.train.trainer import Trainer


class Strategy(Callback):
    """One process, nothing shared: the Trainer's default. Subclasses override what they need."""

    name = "single"

    def __init__(self) -> None:
        self.rank = 0
        self.world_size = 1

    @property
    def is_main(self) -> bool:
        """True on the rank that writes the run folder, logs and shows progress."""
        return self.rank == 0

    @property
    def state_key(self) -> str:
        return "strategy"

    def prepare_loader(self, loader: Any, seed: int) -> Any:
        del seed
        return loader

    def configure_optimizer(self, params: Any, **settings: Any) -> torch.optim.Optimizer | None:
        del params, settings
        return None

    def start(self, device: torch.device) -> None:
        del device

    def setup(self, trainer: Trainer) -> None:
        del trainer

    def teardown(self, trainer: Trainer) -> None:
        del trainer

    def run_batches(
        self,
        trainer: Trainer,
        batches: Iterable[Any],
        first_index: int,
        loop: Callable[[Iterable[Any], int], None],
    ) -> None:
        """Run this rank's batches of the epoch; by default the Trainer's own ``loop``."""
        del trainer
        loop(batches, first_index)

    def eval_module(self, trainer: Trainer) -> nn.Module:
        return unwrap(trainer.model)

    def no_sync(self, trainer: Trainer) -> contextlib.AbstractContextManager[Any]:
        """Context for the backward passes of gradient accumulation that must not communicate
        (DDP's ``no_sync``); nothing by default."""
        del trainer
        return contextlib.nullcontext()

    def reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def broadcast(self, value: Any) -> Any:
        return value

    def rank_state(self, trainer: Trainer) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """This rank's own part of a checkpoint: (JSON-able state, tensors)."""
        del trainer
        return {}, {}

    def gather_rank_states(
        self, state: dict[str, Any], tensors: dict[str, torch.Tensor]
    ) -> list[tuple[dict[str, Any], dict[str, torch.Tensor]]] | None:
        """Every rank's ``rank_state`` on rank 0 (None elsewhere)."""
        return [(state, tensors)]

    def load_rank_state(
        self, trainer: Trainer, state: dict[str, Any], tensors: dict[str, torch.Tensor]
    ) -> None:
        del trainer, state, tensors

    def barrier(self) -> None:
        """Wait for every rank (nothing to wait for in one process)."""

    def describe(self) -> dict[str, Any]:
        """What summary.json and config.json record about the strategy."""
        return {"strategy": self.name, "world_size": self.world_size}


SingleProcess = Strategy


def unwrap(model: nn.Module) -> nn.Module:
    """The module behind ``torch.compile`` and DistributedDataParallel wrappers (checkpoints and
    evaluation use its parameter names and skip the wrappers' communication)."""
    while True:
        inner = getattr(model, "_orig_mod", None)
        if inner is None and isinstance(model, nn.parallel.DistributedDataParallel):
            inner = model.module
        if inner is None:
            return model
        model = inner


@contextlib.contextmanager
def swapped_in(module: nn.Module, values: list[torch.Tensor]) -> Iterator[nn.Module]:
    """``module`` with its parameters temporarily replaced by ``values`` (restored after)."""
    params = list(module.parameters())
    if len(params) != len(values):
        raise ValueError(f"{len(values)} values for {len(params)} parameters")
    saved = [p.detach().clone() for p in params]
    try:
        with torch.no_grad():
            for p, v in zip(params, values):
                p.copy_(v)
        yield module
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)
