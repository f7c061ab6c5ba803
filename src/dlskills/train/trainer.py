"""The Trainer: one lean loop over any nn.Module, DataLoader, optimizer and loss; everything else is
a callback (dlskills.train.callbacks.base describes the events).

Hot-loop rules (benchmarks/trainer_overhead.py holds it to ≤ 1.05× a hand-written loop):
- each event calls only the callbacks that override it, so an unused event costs one empty loop;
- the loss and correct counts are accumulated on the device and read (``.item()``) only at the
  log interval and epoch end; ``last_loss`` converts the latest loss to a float only when read.

Exact resume: a checkpoint records the epoch, the number of batches of that epoch already consumed
and the random states at the start of the epoch (torch's global generator and the DataLoader's
generators) as well as at the moment of saving. Resuming mid-epoch replays the epoch's sampler
order from the epoch-start states (indices only, no data is read), skips the consumed batches,
restores the saving-time states and continues; the remaining batches, dropout masks and optimizer
updates are then those of the uninterrupted run, so on CPU the final weights are bit-identical.
Exactness covers loaders with ``num_workers=0`` and random state drawn from Python, NumPy and
torch's generators; worker processes seed from the loader and are not replayed bit-for-bit.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from dlskills._seed import capture_rng, restore_rng, seed_everything
from dlskills.optim import closure_kind
from dlskills.train.callbacks.base import (
    EVENTS,
    Callback,
    CancelBatch,
    CancelEpoch,
    CancelFit,
    Rewound,
    StopReason,
    overrides,
)
from dlskills.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from dlskills.train.strategy import Strategy, unwrap

PRECISIONS = ("32", "bf16")

_INTEGER_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


class Trainer:
    """Fit ``model`` with ``optimizer`` on ``train_loader`` batches of ``(inputs, targets)``.

    Stops after ``max_epochs`` epochs or ``max_steps`` optimizer steps (whichever first; at
    least one must be given), or when a callback sets ``should_stop`` / raises ``CancelFit``.
    ``scheduler`` (optional) is stepped after every optimizer step. ``seed`` seeds Python, NumPy
    and torch at the start of a fresh fit. Validation runs at every epoch end (and when a fit
    stops mid-epoch). Classification accuracy is tracked when targets are integers and outputs
    have a class dimension.

    Public state read and written by callbacks: model, optimizer, scheduler, loss_fn,
    train_loader, val_loader, callbacks, step, epoch, batch_idx, batch, outputs, last_loss,
    metrics, history, should_stop, stop_reason, run_dir, device, config, last_checkpoint, and
    ``loss`` (the latest loss tensor, on the device).

    ``strategy`` spreads the fit over processes (``dlskills.distributed``; default one process).
    ``accumulate_grad_batches`` = K sums the gradients of K loader batches (each loss divided by
    the number of batches in its group) before one optimizer step, which equals one step on the
    K-times larger batch when the batches have equal sizes; a last, shorter group of an epoch is
    averaged over its own batches. Steps, checkpoints and ``on_before_step`` / ``on_batch_end``
    count optimizer steps. ``precision="bf16"`` runs forward and loss under
    ``torch.autocast(dtype=torch.bfloat16)`` (weights, gradients and optimizer stay float32).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        train_loader: Iterable[Any],
        val_loader: Iterable[Any] | None = None,
        callbacks: Sequence[Callback] = (),
        *,
        max_epochs: int | None = None,
        max_steps: int | None = None,
        scheduler: Any = None,
        seed: int = 0,
        device: str | torch.device = "cpu",
        log_every: int = 50,
        run_dir: str | os.PathLike[str] | None = None,
        config: dict[str, Any] | None = None,
        strategy: Strategy | None = None,
        accumulate_grad_batches: int = 1,
        precision: str = "32",
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        if not callable(loss_fn):
            raise TypeError("loss_fn must be callable (outputs, targets) -> scalar tensor")
        if max_epochs is None and max_steps is None:
            raise ValueError("give max_epochs or max_steps (or both)")
        for name, value in (("max_epochs", max_epochs), ("max_steps", max_steps)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if value is not None and value < 1:
                raise ValueError(f"{name} must be ≥ 1, got {value}")
        if not isinstance(log_every, int) or log_every < 1:
            raise ValueError(f"log_every must be a positive int, got {log_every!r}")
        if (
            isinstance(accumulate_grad_batches, bool)
            or not isinstance(accumulate_grad_batches, int)
            or accumulate_grad_batches < 1
        ):
            raise ValueError(
                f"accumulate_grad_batches must be a positive int, got {accumulate_grad_batches!r}"
            )
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        strategy = Strategy() if strategy is None else strategy
        if not isinstance(strategy, Strategy):
            raise TypeError(f"strategy must be a Strategy, got {type(strategy).__name__}")
        callbacks = [strategy, *callbacks]  # first: it syncs before the others read the state
        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"callbacks must be Callback instances, got {type(callback).__name__}"
                )
        keys = [c.state_key for c in callbacks]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"callbacks share the state_key {duplicates}; give each a unique one")

        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.loss_fn = loss_fn
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.callbacks = callbacks
        self.max_epochs = max_epochs
        self.max_steps = max_steps
        self.seed = seed
        self.device = torch.device(device)
        self.log_every = log_every
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.config = dict(config or {})
        self.strategy = strategy
        self.accumulate_grad_batches = accumulate_grad_batches
        self.precision = precision

        self.step = 0
        self.epoch = 0
        self.batch_idx = 0
        self.batch: tuple[Any, Any] | None = None
        self.outputs: Any = None
        self.metrics: dict[str, float] = {}
        self.history: list[dict[str, float]] = []
        self.should_stop = False
        self.stop_reason: StopReason | None = None
        self.stop_message = ""
        self.last_checkpoint: Path | None = None
        self.train_seconds = 0.0
        self._started = time.perf_counter()

        self.loss: torch.Tensor | None = None
        self._epoch_complete = False  # the epoch counted by self.epoch has fully finished
        self._resume_batch: int | None = None  # batches of self.epoch consumed before a resume
        self._batches_consumed = 0  # batches of self.epoch taken from the loader so far
        self._epoch_start_rng: dict[str, torch.Tensor] = {}
        self._accumulators = self._zero_accumulators()
        self._classification: bool | None = None
        self._hooks = {e: [c for c in callbacks if overrides(c, e)] for e in EVENTS}
        self._closure_kind = closure_kind(optimizer)

    # -- public helpers -------------------------------------------------------------------------
    @property
    def last_loss(self) -> float:
        """The latest batch loss as a float (read on demand: no device sync per step)."""
        return math.nan if self.loss is None else float(self.loss.detach())

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def add_callback(self, callback: Callback) -> None:
        """Append ``callback`` (before ``fit``)."""
        self.callbacks.append(callback)
        for event, hooked in self._hooks.items():
            if overrides(callback, event):
                hooked.append(callback)

    def find_callback(self, kind: type) -> Any:
        """The first callback that is an instance of ``kind``, or None."""
        return next((c for c in self.callbacks if isinstance(c, kind)), None)

    @torch.no_grad()
    def evaluate(self, loader: Iterable[Any], model: nn.Module | None = None) -> dict[str, float]:
        """Mean loss (and accuracy for classification) on ``loader`` of ``model`` (default: the
        module the strategy evaluates, i.e. the model itself in one process)."""
        model = self.strategy.eval_module(self) if model is None else model
        was_training = model.training
        model.eval()
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        count = 0
        try:
            for inputs, targets in loader:
                inputs, targets = self._to_device(inputs), self._to_device(targets)
                with self._autocast():
                    outputs = model(inputs)
                size = targets.shape[0]
                loss_sum += self.loss_fn(outputs, targets).double() * size
                if self._is_classification(outputs, targets):
                    correct += (outputs.argmax(1) == targets).sum()
                count += size
        finally:
            model.train(was_training)
        if count == 0:
            return {}
        result = {"loss": float(loss_sum) / count}
        if self._classification:
            result["accuracy"] = float(correct) / count
        return result

    # -- the fit --------------------------------------------------------------------------------
    def fit(self, resume_from: str | os.PathLike[str] | None = None) -> Trainer:
        """Train until a stop condition; resume exactly from a checkpoint when given."""
        self.model.to(self.device)
        try:
            if resume_from is None:
                seed_everything(self.seed)
            self.strategy.setup(self)
            if resume_from is not None:
                self.load_checkpoint(resume_from)
        except BaseException:
            self.strategy.teardown(self)
            raise
        self.model.train()
        self._started = time.perf_counter() - self.train_seconds
        self.stop_reason = self.stop_reason if self.should_stop else None
        try:
            self._fire("on_fit_start")
            while not self._finished():
                try:
                    self._run_epoch()
                except Rewound:
                    continue
            if self.stop_reason is None:
                self.stop_reason = StopReason.CALLBACK if self.should_stop else StopReason.COMPLETED
        except CancelFit as stop:
            self.should_stop = True
            self.stop_reason = stop.reason
            self.stop_message = stop.message
        except BaseException as exc:
            self.stop_reason = (
                StopReason.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else StopReason.ERROR
            )
            self.stop_message = f"{type(exc).__name__}: {exc}"
            for callback in self._hooks["on_exception"]:
                callback.on_exception(self, exc)
            raise
        finally:
            self.train_seconds = time.perf_counter() - self._started
            try:
                self._fire("on_fit_end")
            finally:
                self.strategy.teardown(self)
        return self

    def _finished(self) -> bool:
        return (
            self.should_stop
            or (self.max_steps is not None and self.step >= self.max_steps)
            or (self.max_epochs is not None and self._epochs_done() >= self.max_epochs)
        )

    def _epochs_done(self) -> int:
        return self.epoch + 1 if self._epoch_complete else self.epoch

    def _fire(self, event: str) -> None:
        for callback in self._hooks[event]:
            getattr(callback, event)(self)

    def _run_epoch(self) -> None:
        if self._epoch_complete:
            self.epoch += 1
            self._epoch_complete = False
            self._accumulators = self._zero_accumulators()
        resume_batch, self._resume_batch = self._resume_batch, None
        self.batch_idx = self._batches_consumed = resume_batch or 0
        self._fire("on_epoch_start")
        if resume_batch is None:
            self._epoch_start_rng = self._loader_rng_states()
            batches: Iterable[Any] = self.train_loader
        else:
            batches = self._replay_epoch(resume_batch)
        with contextlib.suppress(CancelEpoch):
            self.strategy.run_batches(self, batches, resume_batch or 0, self._train_batches)
        self._end_epoch()

    def _train_batches(self, batches: Iterable[Any], first_index: int) -> None:
        model, optimizer, scheduler, loss_fn = (
            self.model,
            self.optimizer,
            self.scheduler,
            self.loss_fn,
        )
        hooks = self._hooks
        on_batch_start, on_after_backward = hooks["on_batch_start"], hooks["on_after_backward"]
        on_before_step, on_batch_end = hooks["on_before_step"], hooks["on_batch_end"]
        acc = self._accumulators
        step_closure_kind = self._closure_kind
        move = self.device.type != "cpu"
        max_steps = self.max_steps if self.max_steps is not None else math.inf
        accumulate = self.accumulate_grad_batches
        per_epoch = _length(self.train_loader) if accumulate > 1 else None
        autocast = self._autocast
        for index, (inputs, targets) in enumerate(batches, start=first_index):
            if move:
                inputs, targets = self._to_device(inputs), self._to_device(targets)
            self.batch_idx = index
            self.batch = (inputs, targets)
            in_group = index % accumulate
            group_size = accumulate
            if per_epoch is not None:
                group_size = min(accumulate, per_epoch - (index - in_group))
            steps_now = in_group + 1 == group_size
            try:
                for callback in on_batch_start:
                    callback.on_batch_start(self)
                inputs, targets = self.batch  # a callback may have replaced it (Mixup)
                with autocast():
                    outputs = model(inputs)
                    loss = loss_fn(outputs, targets)
                self.outputs = outputs
                self.loss = loss
                if in_group == 0:
                    optimizer.zero_grad(set_to_none=True)
                if accumulate == 1:
                    loss.backward()
                else:
                    with contextlib.nullcontext() if steps_now else self.strategy.no_sync(self):
                        (loss / group_size).backward()
                for callback in on_after_backward:
                    callback.on_after_backward(self)
                if steps_now:
                    for callback in on_before_step:
                        callback.on_before_step(self)
            except CancelBatch:
                self._batches_consumed = index + 1
                continue
            with torch.no_grad():
                size = targets.shape[0]
                acc["loss"] += loss.detach() * size
                acc["count"] += size
                classification = self._classification
                if classification is None:
                    classification = self._is_classification(outputs, targets)
                if classification:
                    acc["correct"] += (outputs.argmax(1) == targets).sum()
            if not steps_now:
                continue
            if step_closure_kind is None:
                optimizer.step()
            else:
                optimizer.step(self._step_closure(step_closure_kind, inputs, targets))
            if scheduler is not None:
                scheduler.step()
            self.step += 1
            self._batches_consumed = index + 1
            if self.step % self.log_every == 0:
                self._update_train_metrics()
            for callback in on_batch_end:
                callback.on_batch_end(self)
            if self.should_stop or self.step >= max_steps:
                break

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _step_closure(self, kind: str, inputs: Any, targets: Any) -> Callable[[], Any]:
        """The closure a closure-based optimizer re-evaluates the current batch with (its first
        forward/backward above still feeds the callbacks and the metrics)."""
        model, loss_fn, optimizer, autocast = (
            self.model,
            self.loss_fn,
            self.optimizer,
            self._autocast,
        )
        if kind == "backward":

            def closure() -> torch.Tensor:
                optimizer.zero_grad(set_to_none=True)
                with autocast():
                    loss = loss_fn(model(inputs), targets)
                loss.backward()
                return loss

        elif kind == "graph":

            def closure() -> tuple[torch.Tensor, torch.Tensor]:
                with autocast():
                    outputs = model(inputs)
                    return loss_fn(outputs, targets), outputs

        elif kind == "residuals":
            if not torch.is_floating_point(targets):
                raise ValueError(
                    f"{type(optimizer).__name__} fits residuals (outputs − targets): it needs a "
                    "regression task with float targets, not class labels"
                )

            def closure() -> torch.Tensor:
                return model(inputs) - targets

        else:
            raise ValueError(f"unknown closure kind {kind!r} of {type(optimizer).__name__}")
        return closure

    def _end_epoch(self) -> None:
        self._update_train_metrics()
        self._fire("on_validation_start")
        if self.val_loader is not None:
            strategy = self.strategy
            measured = self.evaluate(self.val_loader) if strategy.is_main else {}
            for key, value in strategy.broadcast(measured).items():
                self.metrics[f"val_{key}"] = value
        self._epoch_complete = True
        self.train_seconds = time.perf_counter() - self._started
        row = {"epoch": self.epoch + 1, "step": self.step, "seconds": self.train_seconds}
        row.update(self.metrics)
        self.history.append(row)
        self._fire("on_validation_end")
        self._fire("on_epoch_end")

    def _update_train_metrics(self) -> None:
        acc = self._accumulators
        if self.strategy.world_size > 1:  # the mean over every rank's shard
            sums = torch.stack(
                [acc["loss"], acc["correct"].double(), torch.tensor(float(acc["count"]))]
            )
            loss_sum, correct, count = self.strategy.reduce_sum(sums.cpu()).tolist()
            count = int(count)
        else:
            loss_sum, correct, count = float(acc["loss"]), float(acc["correct"]), int(acc["count"])
        if count:
            self.metrics["train_loss"] = loss_sum / count
            if self._classification:
                self.metrics["train_accuracy"] = correct / count
        self.metrics["lr"] = self.lr

    def _zero_accumulators(self) -> dict[str, Any]:
        return {
            "loss": torch.zeros((), dtype=torch.float64, device=self.device),
            "correct": torch.zeros((), dtype=torch.int64, device=self.device),
            "count": 0,
        }

    def _is_classification(self, outputs: torch.Tensor, targets: torch.Tensor) -> bool:
        if self._classification is None:
            self._classification = bool(
                targets.dtype in _INTEGER_DTYPES and outputs.ndim == targets.ndim + 1
            )
        return self._classification

    def _to_device(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to(self.device, non_blocking=True)
        return value

    # -- random state of the data order ----------------------------------------------------------
    def _loader_generators(self) -> list[torch.Generator]:
        """The generators that decide the train loader's order (loader's and sampler's)."""
        loader = self.train_loader
        found: list[torch.Generator] = []
        candidates = (
            getattr(loader, "generator", None),
            getattr(getattr(loader, "sampler", None), "generator", None),
            getattr(
                getattr(getattr(loader, "batch_sampler", None), "sampler", None), "generator", None
            ),
        )
        for generator in candidates:
            if isinstance(generator, torch.Generator) and all(generator is not g for g in found):
                found.append(generator)
        return found

    def _loader_rng_states(self) -> dict[str, torch.Tensor]:
        states = {"torch": torch.get_rng_state()}
        for index, generator in enumerate(self._loader_generators()):
            states[f"loader{index}"] = generator.get_state()
        return states

    def _set_loader_rng_states(self, states: dict[str, torch.Tensor]) -> None:
        """Inverse of ``_loader_rng_states`` (the global torch state only when present)."""
        if "torch" in states:
            torch.set_rng_state(states["torch"])
        generators = self._loader_generators()
        saved = sorted(k for k in states if k.startswith("loader"))
        if len(saved) != len(generators):
            raise KeyError(
                f"the checkpoint has {len(saved)} data-order generator states but this train "
                f"loader has {len(generators)}"
            )
        for index, generator in enumerate(generators):
            generator.set_state(states[f"loader{index}"])

    def _replay_epoch(self, consumed: int) -> Iterator[Any]:
        """The batches of the current epoch after the first ``consumed``, in the order the
        interrupted run drew them, without reading the consumed ones."""
        loader = self.train_loader
        batch_sampler = getattr(loader, "batch_sampler", None)
        if not isinstance(loader, DataLoader) or batch_sampler is None or loader.num_workers:
            return self._replay_by_skipping(consumed)
        now = self._loader_rng_states()
        self._set_loader_rng_states(self._epoch_start_rng)
        # what DataLoader.__iter__ draws before the first batch: the worker base seed, then the
        # sampler's permutation
        torch.empty((), dtype=torch.int64).random_(generator=loader.generator)
        order = list(batch_sampler)
        torch.set_rng_state(now["torch"])
        remaining = DataLoader(
            loader.dataset,
            batch_sampler=order[consumed:],
            collate_fn=loader.collate_fn,
            pin_memory=loader.pin_memory,
            generator=torch.Generator(),  # keep the global generator untouched
        )
        return iter(remaining)

    def _replay_by_skipping(self, consumed: int) -> Iterator[Any]:
        """Fallback for loaders that are not single-process DataLoaders: rerun the epoch's
        iterator from its start state and discard the consumed batches (reads their data)."""
        now = self._loader_rng_states()
        py_np, py_np_tensors = capture_rng()
        self._set_loader_rng_states(self._epoch_start_rng)
        iterator = iter(self.train_loader)
        for _ in range(consumed):
            next(iterator)
        restore_rng(py_np, {**py_np_tensors, "torch": now["torch"]})
        return iterator

    # -- checkpoints ----------------------------------------------------------------------------
    def _random_state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """This process's random states: global generators, data order, epoch start."""
        rng_plain, rng_tensors = capture_rng()
        tensors = {f"rng.{k}": v for k, v in rng_tensors.items()}
        tensors.update({f"loader_rng.{k}": v for k, v in self._loader_rng_states().items()})
        tensors.update({f"epoch_start_rng.{k}": v for k, v in self._epoch_start_rng.items()})
        return {"rng": rng_plain}, tensors

    def state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """Everything a checkpoint stores: (nested state, flat tensors). With several ranks,
        every rank must call it (it gathers each rank's own part, ``state["ranks"]`` and tensors
        ``rank<r>.*``, onto rank 0); the result is complete on rank 0 only."""
        random_plain, random_tensors = self._random_state()
        tensors: dict[str, torch.Tensor] = {
            f"model.{k}": v for k, v in self.strategy.eval_module(self).state_dict().items()
        }
        tensors.update(random_tensors)
        callbacks = {}
        for callback in self.callbacks:
            callbacks[callback.state_key] = callback.state_dict()
            for name, tensor in callback.tensor_state().items():
                tensors[f"callback.{callback.state_key}.{name}"] = tensor
        acc = self._accumulators
        state = {
            "trainer": {
                "epoch": self.epoch,
                "epoch_complete": self._epoch_complete,
                "batches_consumed": 0 if self._epoch_complete else self._batches_consumed,
                "step": self.step,
                "seed": self.seed,
                "should_stop": self.should_stop,
                "stop_reason": self.stop_reason.value if self.stop_reason else None,
                "history": self.history,
                "metrics": self.metrics,
                "train_seconds": self.train_seconds,
                "classification": self._classification,
                "accumulators": {
                    "loss": float(acc["loss"]),
                    "correct": int(acc["correct"]),
                    "count": int(acc["count"]),
                },
            },
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "callbacks": callbacks,
            "rng": random_plain["rng"],
            "config": self.config,
        }
        strategy = self.strategy
        if strategy.name != Strategy.name:
            state["strategy"] = strategy.name
        if strategy.world_size > 1:
            own_plain, own_tensors = strategy.rank_state(self)
            own_plain = {**own_plain, **random_plain}
            own_tensors = {**own_tensors, **random_tensors}
            gathered = strategy.gather_rank_states(own_plain, own_tensors)
            state["world_size"] = strategy.world_size
            if gathered is not None:
                state["ranks"] = [plain for plain, _ in gathered]
                for rank, (_, rank_tensors) in enumerate(gathered):
                    tensors.update({f"rank{rank}.{k}": v for k, v in rank_tensors.items()})
        return state, tensors

    def save_checkpoint(self, path: str | os.PathLike[str]) -> Path:
        """Write a checkpoint pair at ``path`` (``<name>`` → ``<name>.json``/``.safetensors``).
        With several ranks every rank calls it; rank 0 writes."""
        state, tensors = self.state()
        path = Path(path)
        if self.strategy.is_main:
            self.last_checkpoint = save_checkpoint(path, state, tensors)
        else:
            self.last_checkpoint = path.with_name(path.name + ".json")
        return self.last_checkpoint

    def load_checkpoint(self, path: str | os.PathLike[str]) -> None:
        """Restore model, optimizer, scheduler, callbacks, RNG states and position from ``path``
        so that ``fit`` continues exactly where the checkpoint was taken."""
        state, tensors = load_checkpoint(path)
        try:
            self._restore(state, tensors)
        except (KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"checkpoint {path} does not fit this run: {exc}") from exc
        self.last_checkpoint = Path(path)

    def _restore(self, state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        def prefixed(prefix: str) -> dict[str, torch.Tensor]:
            return _prefixed(tensors, prefix)

        strategy = self.strategy
        saved_world = state.get("world_size", 1)
        if saved_world != strategy.world_size or state.get("strategy", "single") != strategy.name:
            raise CheckpointError(
                f"the checkpoint was written by {saved_world} rank(s) with strategy "
                f"{state.get('strategy', 'single')!r}; this run has {strategy.world_size} with "
                f"{strategy.name!r}: resume with the same --nproc and --strategy (the data order "
                "of every rank depends on both)"
            )
        unwrap(self.model).load_state_dict(prefixed("model."), strict=True)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            if state["scheduler"] is None:
                raise KeyError("the checkpoint has no scheduler state but this run has a scheduler")
            self.scheduler.load_state_dict(state["scheduler"])
        for callback in self.callbacks:
            if callback.state_key in state["callbacks"]:
                callback.load_state_dict(state["callbacks"][callback.state_key])
                callback.load_tensor_state(prefixed(f"callback.{callback.state_key}."))
        trainer = state["trainer"]
        self.epoch = trainer["epoch"]
        self._epoch_complete = trainer["epoch_complete"]
        # nothing consumed yet: the epoch starts afresh from the restored random states
        self._resume_batch = None if self._epoch_complete else (trainer["batches_consumed"] or None)
        self.step = trainer["step"]
        self.should_stop = trainer["should_stop"]
        self.stop_reason = StopReason(trainer["stop_reason"]) if trainer["stop_reason"] else None
        self.history = list(trainer["history"])
        self.metrics = dict(trainer["metrics"])
        self.train_seconds = trainer["train_seconds"]
        self._classification = trainer["classification"]
        saved = trainer["accumulators"]
        self._accumulators = self._zero_accumulators()
        self._accumulators["loss"] += saved["loss"]
        self._accumulators["correct"] += saved["correct"]
        self._accumulators["count"] = saved["count"]
        random_plain: dict[str, Any] = {"rng": state["rng"]}
        random_tensors = tensors
        if strategy.world_size > 1:  # this rank's own part replaces rank 0's
            random_plain = state["ranks"][strategy.rank]
            random_tensors = prefixed(f"rank{strategy.rank}.")
            strategy.load_rank_state(self, random_plain, random_tensors)
        self._epoch_start_rng = _prefixed(random_tensors, "epoch_start_rng.")
        restore_rng(random_plain["rng"], _prefixed(random_tensors, "rng."))
        loader_states = _prefixed(random_tensors, "loader_rng.")
        loader_states.pop("torch", None)  # the global torch state was restored just above
        self._set_loader_rng_states(loader_states)


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _length(loader: Iterable[Any]) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None
