"""Run directories: build a whole training run from a TrainConfig, fit it, write its record, and
read one back.

A run directory (DESIGN.md) holds::

    config.json      the full TrainConfig
    metrics.csv      one row per epoch (CSVLogger)
    checkpoints/     best.{json,safetensors} and last.{json,safetensors}
    loss.png, accuracy.png, lr.png, report.md   (dlskills.report.run_report)
    summary.json     results + environment (torch, python, platform, git commit, code hash)

``train_run(config)`` does all of it and returns the summary; every value, name and file of the
config is checked (``build``) before the folder is made. SIGINT/SIGTERM end a one-process run
after the step in progress with a checkpoint there and a summary (``_StopOnSignal``).
``resume_run(run_dir)`` continues an interrupted run exactly from its last checkpoint;
``load_run(path)`` gives back the config, the model with the best checkpoint's weights, the data
splits, the metrics rows and the summary.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlskills._io import atomic_write_json
from dlskills._seed import seed_everything
from dlskills.train.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    GradClip,
    LRMonitor,
    ModelCheckpoint,
    NaNGuard,
    ProgressBar,
    WeightAveraging,
)
from dlskills.train.callbacks.base import CancelFit, StopReason
from dlskills.train.callbacks.csv_logger import read_metrics
from dlskills.train.checkpoint import CheckpointError, checkpoint_paths, load_checkpoint
from dlskills.train.compile import compile_model
from dlskills.train.config import (
    KEYS,
    RECIPE_LR,
    RECIPE_OPTIMIZER,
    TrainConfig,
    key_name,
    make_config,
    milestone_steps,
    resolve,
)
from dlskills.train.strategy import Strategy
from dlskills.train.techniques.label_smoothing import LabelSmoothingCrossEntropy
from dlskills.train.trainer import Trainer

# keys a resumed run may change: how it runs, not what it computes. The budget is fixed too: the
# LR schedule saved in the checkpoint was built for it (a longer cosine run would continue at
# its final, zero learning rate).
RESUMABLE_OVERRIDES = frozenset({"progress", "device", "tensorboard", "threads", "max_restarts"})


@dataclasses.dataclass
class Components:
    """What a config builds: data, model, optimizer, schedule and loss, and the config with the
    values it left to the run filled in (``config.resolve``)."""

    config: TrainConfig
    splits: Any
    train_loader: Any
    val_loader: Any
    test_loader: Any
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loss_fn: Any
    total_steps: int


def _named(key: str, build: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``build``; a ValueError (unknown name, bad argument) is re-raised naming the key."""
    try:
        return build(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{key_name(key)}: {exc}") from exc


def load_data(config: TrainConfig) -> Any:
    from dlskills import data

    kwargs = {"data_dir": config.data_dir} if config.data_dir else {}
    try:
        seed = config.seed if config.data_seed is None else config.data_seed
        return _named("dataset", data.load, config.dataset, seed=seed, **kwargs)
    except FileNotFoundError as exc:  # the dataset's files are not where data_dir points
        raise FileNotFoundError(f"{key_name('data_dir')}: {exc}") from exc


def build_model(config: TrainConfig, splits: Any) -> nn.Module:
    """The model named by the config, shaped for ``splits``, initialised by ``config.init``.
    Text models (registered with ``input="tokens"``) also get the data's ``vocab_size``."""
    from dlskills import models

    options = {
        key: getattr(config, key)
        for key in ("activation", "norm", "dropout")
        if getattr(config, key) is not None
    }
    if (
        "vocab_size" in splits.info
        and _named("model", models.MODELS.entry, config.model).meta.get("input") == "tokens"
    ):
        options["vocab_size"] = splits.info["vocab_size"]
    options.update(config.model_args)
    model = _named(
        "model",
        models.create,
        config.model,
        input_shape=tuple(splits.input_shape),
        num_classes=splits.output_dim,
        **options,
    )
    if config.init is not None:
        from dlskills import init

        entry = _named("init", init.INITIALIZERS.entry, config.init)
        extra = {}
        if entry.meta.get("needs_data"):
            extra["data"] = splits.train.tensors[0][:256]
        _named("init", init.apply, model, config.init, **extra)
    return model


def _optimizer_kwargs(
    config: TrainConfig, optimizer_class: type, model: nn.Module
) -> dict[str, Any]:
    """lr, weight_decay and momentum for the optimizer, then the ``opt`` overrides. A default
    weight_decay is left out for optimizers without one; a value the user set is an error there,
    as is an ``opt`` key the optimizer does not take. Optimizers that read the model itself
    (K-FAC hooks its layers) get it as ``model``. ``config.lr`` must be resolved."""
    import dataclasses
    import difflib
    import inspect

    accepted = inspect.signature(optimizer_class).parameters
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    kwargs: dict[str, Any] = {"lr": config.lr}
    for key in ("weight_decay", "momentum"):
        value = getattr(config, key)
        if value is None:
            continue
        if key in accepted:
            kwargs[key] = value
        elif value != defaults[key]:
            raise ValueError(
                f"{key_name(key)}: optimizer {config.optimizer!r} has no {key} argument"
            )
    if "model" in accepted:
        kwargs["model"] = model
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        names = [n for n in accepted if n not in ("self", "params", "model")]
        for key in config.opt:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ValueError(
                    f"{key_name('opt')}: optimizer {config.optimizer!r} takes no argument "
                    f"{key!r}; {hint}it takes {', '.join(names)}"
                )
    kwargs.update(config.opt)
    return kwargs


def default_lr(optimizer: str) -> float:
    """The learning rate a run of ``optimizer`` gets without ``lr``: the recipe's 3e-3 for its
    AdamW, the registry's ``run_lr`` where the class default is no place to start (plain SGD),
    else the default of the optimizer's registered class or factory."""
    import inspect

    from dlskills import optim

    entry = _named("optimizer", optim.OPTIMIZERS.entry, optimizer)
    if entry.name == RECIPE_OPTIMIZER:
        return RECIPE_LR
    if "run_lr" in entry.meta:
        return float(entry.meta["run_lr"])
    parameter = inspect.signature(entry.obj).parameters.get("lr")
    if parameter is None or not isinstance(parameter.default, int | float):
        raise ValueError(
            f"{key_name('lr')}: optimizer {optimizer!r} has no default learning rate; give --lr"
        )
    return float(parameter.default)


def _check_batch_size(config: TrainConfig, splits: Any) -> None:
    examples = len(splits.train)
    if config.batch_size > examples:
        raise ValueError(
            f"{key_name('batch_size')} is {config.batch_size} but the {config.dataset} training "
            f"set has {examples} examples: use at most {examples} (one batch = the whole set)"
        )


def build(config: TrainConfig, strategy: Strategy | None = None) -> Components:
    """Seed, then build data, model, optimizer, LR schedule and loss from ``config``; the train
    loader is this rank's shard under ``strategy``, and the strategy may supply the optimizer.
    The values ``config`` leaves to the run are resolved here (``Components.config``)."""
    from dlskills import optim
    from dlskills.optim.schedules import build_schedule

    if config.threads is not None:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    splits = load_data(config)
    _check_batch_size(config, splits)
    train_loader, val_loader, test_loader = splits.loaders(
        config.batch_size, seed=config.seed, eval_batch_size=max(512, config.batch_size)
    )
    strategy = strategy or Strategy()
    train_loader = _named("batch_size", strategy.prepare_loader, train_loader, config.seed)
    steps_per_epoch = -(-len(train_loader) // config.accumulate)
    steps_by_epochs = config.epochs * steps_per_epoch if config.epochs else None
    total_steps = min(s for s in (steps_by_epochs, config.max_steps) if s is not None)
    config = resolve(
        config,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        default_lr=config.lr if config.lr is not None else default_lr(config.optimizer),
    )
    model = build_model(config, splits)
    optimizer_kwargs = _optimizer_kwargs(config, optim.OPTIMIZERS.get(config.optimizer), model)
    optimizer = _named(
        "strategy",
        strategy.configure_optimizer,
        model.parameters(),
        optimizer=config.optimizer,
        **optimizer_kwargs,
    ) or _named(
        "opt" if config.opt else "optimizer",
        optim.create,
        config.optimizer,
        model.parameters(),
        **optimizer_kwargs,
    )
    scheduler = _named(
        "schedule",
        build_schedule,
        config.schedule,
        optimizer,
        total_steps,
        warmup_steps=config.warmup_steps,
        milestones=milestone_steps(config.milestones or [], steps_per_epoch),
    )
    task = getattr(splits, "task", "classification")
    if task != "classification":
        loss_fn = nn.functional.mse_loss
    elif config.label_smoothing:
        loss_fn = LabelSmoothingCrossEntropy(config.label_smoothing)
    else:
        loss_fn = nn.functional.cross_entropy
    return Components(
        config=config,
        splits=splits,
        train_loader=train_loader,
        val_loader=val_loader,
        test_loader=test_loader,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        loss_fn=loss_fn,
        total_steps=total_steps,
    )


def default_callbacks(
    config: TrainConfig,
    task: str = "classification",
    *,
    main: bool = True,
    total_steps: int | None = None,
) -> list[Callback]:
    """The callbacks a config asks for, in firing order (guard before clipping). The best
    checkpoint is chosen by validation accuracy, or by validation loss for regression. The
    weight average (``ema_decay``) starts after half of the run's ``total_steps``. Ranks
    other than the main one (``main=False``) get no loggers and no progress bar; they keep the
    checkpoint callback, whose saves gather every rank's state (rank 0 writes)."""
    callbacks: list[Callback] = []
    if config.nan_policy != "off":
        callbacks.append(NaNGuard(config.nan_policy))
    if config.clip_grad_norm is not None:
        callbacks.append(GradClip(config.clip_grad_norm))
    if config.ema_decay:  # before the checkpoints: they save the averages it builds at fit start
        callbacks.append(WeightAveraging("ema", config.ema_decay, start=(total_steps or 0) // 2))
    if main:
        callbacks += [LRMonitor(every_n_steps=10), CSVLogger()]
    if config.early_stopping is not None:
        callbacks.append(EarlyStopping(config.early_stopping, monitor="val_loss"))
    monitor = "val_accuracy" if task == "classification" else "val_loss"
    callbacks.append(ModelCheckpoint(monitor=monitor, every_n_steps=config.checkpoint_every))
    if config.tensorboard and main:
        from dlskills.train.callbacks.tensorboard import TensorBoardLogger

        callbacks.append(TensorBoardLogger())
    if main:
        callbacks.append(ProgressBar(enabled=None if config.progress else False))
    return callbacks


def new_run_dir(config: TrainConfig, root: str | os.PathLike[str] = "runs") -> Path:
    """``config.out`` if given, else ``runs/<name>`` or ``runs/<timestamp>`` (made unique)."""
    if config.out is not None:
        return Path(config.out)
    base = Path(root) / (config.name or time.strftime("%Y%m%d-%H%M%S"))
    candidate, suffix = base, 1
    while candidate.exists():
        suffix += 1
        candidate = base.with_name(f"{base.name}-{suffix}")
    return candidate


def _make_trainer(
    config: TrainConfig,
    parts: Components,
    run_dir: Path,
    extra: list[Callback],
    strategy: Strategy,
) -> Trainer:
    model = compile_model(parts.model) if config.compile else parts.model
    task = getattr(parts.splits, "task", "classification")
    return Trainer(
        model,
        parts.optimizer,
        parts.loss_fn,
        parts.train_loader,
        parts.val_loader,
        [
            *default_callbacks(config, task, main=strategy.is_main, total_steps=parts.total_steps),
            *extra,
        ],
        max_epochs=config.epochs,
        max_steps=config.max_steps,
        scheduler=parts.scheduler,
        seed=config.seed,
        device=config.device,
        run_dir=run_dir,
        config=config.to_dict(),
        strategy=strategy,
        accumulate_grad_batches=config.accumulate,
        precision=config.precision,
    )


def _strategy_for(config: TrainConfig, strategy: Strategy | None) -> Strategy:
    if strategy is not None:
        return strategy
    if config.strategy is not None:
        raise ValueError(
            f"{key_name('strategy')} is {config.strategy!r}: pass the strategy object "
            "(dlskills.distributed.strategy_for(config)) or run `dlskills train`"
        )
    return Strategy()


def _record(config: TrainConfig, strategy: Strategy) -> dict[str, Any]:
    """config.json: the config and the number of ranks it ran on."""
    return {**config.to_dict(), "world_size": strategy.world_size}


def config_from_record(record: dict[str, Any]) -> TrainConfig:
    """The TrainConfig of a config.json (without what the run recorded beside it)."""
    return make_config({k: v for k, v in record.items() if k in KEYS})


def check_names(config: TrainConfig) -> None:
    """Reject unknown component names (naming the config key) before anything is written."""
    from dlskills import data, init, models, optim
    from dlskills.nn.activations import ACTIVATIONS
    from dlskills.nn.normalization import NORMS
    from dlskills.optim.schedules import SCHEDULES

    registries = {
        "model": models.MODELS,
        "dataset": data.DATASETS,
        "optimizer": optim.OPTIMIZERS,
        "schedule": SCHEDULES,
        "init": init.INITIALIZERS,
        "activation": ACTIVATIONS,
        "norm": NORMS,
    }
    for key, registry in registries.items():
        if getattr(config, key) is not None:
            _named(key, registry.entry, getattr(config, key))


def train_run(
    config: TrainConfig,
    *,
    callbacks: Sequence[Callback] = (),
    run_dir: Path | None = None,
    strategy: Strategy | None = None,
) -> dict[str, Any]:
    """Train a fresh run from ``config`` into a new run directory; returns its summary. Under a
    distributed ``strategy`` every rank calls it; rank 0 names and writes the run folder."""
    check_names(config)
    strategy = _strategy_for(config, strategy)
    strategy.start(torch.device(config.device))
    if strategy.is_main:
        run_dir = run_dir or new_run_dir(config)
        if (run_dir / "checkpoints").exists():
            raise ValueError(
                f"run folder {run_dir} already holds checkpoints; pick another --out or resume "
                "it with --resume"
            )
    run_dir = Path(strategy.broadcast(str(run_dir) if strategy.is_main else None))
    with _StopOnSignal.installed(strategy) as stopper:
        parts = build(config, strategy)
        if stopper.received:  # before anything is written: nothing to resume
            raise KeyboardInterrupt
        if strategy.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(run_dir / "config.json", _record(parts.config, strategy))
        trainer = _make_trainer(parts.config, parts, run_dir, [*callbacks, stopper], strategy)
        _fit(trainer, stopper)
        return finish_run(trainer, parts, parts.config, run_dir)


def resume_run(
    path: str | os.PathLike[str],
    overrides: dict[str, Any] | None = None,
    *,
    callbacks: Sequence[Callback] = (),
    strategy: Strategy | None = None,
) -> dict[str, Any]:
    """Continue the run at ``path`` (a run directory, or a checkpoint inside one) exactly from
    its last checkpoint. ``overrides`` may only change RESUMABLE_OVERRIDES keys. A distributed
    run resumes with the same strategy and number of ranks (every rank calls this)."""
    run_dir, checkpoint = _locate(path)
    saved = read_run_config(run_dir)
    recorded_world = saved.pop("world_size", 1)
    changed = sorted(k for k, v in (overrides or {}).items() if v is not None and saved.get(k) != v)
    forbidden = [k for k in changed if k not in RESUMABLE_OVERRIDES]
    if forbidden:
        raise ValueError(
            f"cannot change {', '.join(repr(k) for k in forbidden)} when resuming (only "
            f"{', '.join(sorted(RESUMABLE_OVERRIDES))} may change)"
        )
    config = make_config(saved, {k: overrides[k] for k in changed})
    strategy = _strategy_for(config, strategy)
    if recorded_world != strategy.world_size:
        raise ValueError(
            f"run {run_dir} was trained on {recorded_world} rank(s); resume it with "
            f"--nproc {recorded_world} (this is {strategy.world_size}): the data order of "
            "every rank depends on the number of ranks"
        )
    strategy.start(torch.device(config.device))
    with _StopOnSignal.installed(strategy) as stopper:
        parts = build(config, strategy)
        if strategy.is_main:
            atomic_write_json(run_dir / "config.json", _record(parts.config, strategy))
        trainer = _make_trainer(parts.config, parts, run_dir, [*callbacks, stopper], strategy)
        _fit(trainer, stopper, resume_from=checkpoint)
        return finish_run(trainer, parts, parts.config, run_dir)


def _locate(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(run directory, checkpoint) for a run directory or a checkpoint path in one."""
    path = Path(path)
    if path.is_dir() or path.parent.name != "checkpoints":
        run_dir, checkpoint = path, path / "checkpoints" / "last"
    else:
        checkpoint = checkpoint_paths(path)[0].with_suffix("")
        run_dir = checkpoint.parent.parent
    read_run_config(run_dir)
    if not checkpoint_paths(checkpoint)[0].is_file():
        raise FileNotFoundError(
            f"run folder {run_dir} has no checkpoint {checkpoint}.json to resume from (the run "
            "stopped before its first checkpoint: start it again)"
        )
    return run_dir, checkpoint


def read_run_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The config.json record of the run folder ``run_dir`` (FileNotFoundError for a folder
    that is not a run)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"not a run folder: {run_dir} (no config.json)")
    return json.loads(path.read_text(encoding="utf-8"))


class _StopOnSignal(Callback):
    """SIGINT (Ctrl-C) or SIGTERM stop a one-process run cleanly: after the optimizer step in
    progress the run saves its ``last`` checkpoint there and ends with stop reason
    ``interrupted``; its summary and report are written as for any other stop, and
    ``dlskills train --resume RUN`` continues exactly. A second signal stops at once
    (KeyboardInterrupt); the summary is still written and the last checkpoint is the previous
    save. The handlers are installed only around a run in the main thread of one process (a
    group of ranks is stopped by its launcher)."""

    def __init__(self) -> None:
        self.received: str | None = None

    @classmethod
    @contextlib.contextmanager
    def installed(cls, strategy: Strategy) -> Iterator[_StopOnSignal]:
        stopper = cls()
        if strategy.world_size > 1 or threading.current_thread() is not threading.main_thread():
            yield stopper
            return

        def handle(signum: int, frame: Any) -> None:
            del frame
            if stopper.received is not None:
                raise KeyboardInterrupt
            stopper.received = signal.Signals(signum).name

        previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield stopper
        finally:
            for number, handler in previous.items():
                signal.signal(number, signal.SIG_DFL if handler is None else handler)

    def on_fit_start(self, trainer: Trainer) -> None:
        # the last checkpoint already holds this state: the fresh fit's step-0 save, or the
        # checkpoint a resume loaded
        self._stop_if_signalled(trainer, save=False)

    def on_batch_end(self, trainer: Trainer) -> None:
        self._stop_if_signalled(trainer, save=True)

    def _stop_if_signalled(self, trainer: Trainer, *, save: bool) -> None:
        if self.received is None:
            return
        checkpointer = trainer.find_callback(ModelCheckpoint)
        if save and checkpointer is not None and checkpointer.last_path is not None:
            trainer.save_checkpoint(checkpointer.last_path)
        raise CancelFit(
            StopReason.INTERRUPTED,
            f"{self.received} at step {trainer.step}; the last checkpoint holds this step",
        )


def _fit(trainer: Trainer, stopper: _StopOnSignal, resume_from: Path | None = None) -> None:
    """``trainer.fit``; a second signal (KeyboardInterrupt) still leaves a stopped trainer whose
    summary can be written."""
    try:
        trainer.fit(resume_from=resume_from)
    except KeyboardInterrupt:
        if stopper.received is None or trainer.strategy.world_size > 1:
            raise
        trainer.stop_message = (
            f"second {stopper.received} at step {trainer.step}: stopped at once; a resume "
            "continues from the last checkpoint saved before"
        )


def finish_run(
    trainer: Trainer, parts: Components, config: TrainConfig, run_dir: Path
) -> dict[str, Any]:
    """Evaluate the best checkpoint on the test split; write summary.json, plots and report.md
    (rank 0; other ranks return their rank, world and stop reason)."""
    from dlskills.report.run_report import write_run_report

    strategy = trainer.strategy
    if not strategy.is_main:
        return {
            "rank": strategy.rank,
            "run_dir": str(run_dir),
            "stop_reason": trainer.stop_reason.value if trainer.stop_reason else None,
            **strategy.describe(),
        }
    best = run_dir / "checkpoints" / "best"
    weights = best if checkpoint_paths(best)[0].is_file() else None
    if weights is not None:
        load_model_weights(parts.model, weights)
    test = trainer.evaluate(parts.test_loader, model=parts.model)
    checkpointer = trainer.find_callback(ModelCheckpoint)
    val_accuracies = [row["val_accuracy"] for row in trainer.history if "val_accuracy" in row]
    summary = {
        "test_accuracy": test.get("accuracy"),
        "test_loss": test.get("loss"),
        "best_val_accuracy": max(val_accuracies) if val_accuracies else None,
        "best_epoch": checkpointer.best_epoch if checkpointer else None,
        "epochs": len(trainer.history),
        "steps": trainer.step,
        "train_seconds": round(trainer.train_seconds, 3),
        "parameters": sum(p.numel() for p in parts.model.parameters()),
        "seed": config.seed,
        "stop_reason": trainer.stop_reason.value if trainer.stop_reason else None,
        "stop_message": trainer.stop_message,
        "evaluated_checkpoint": "best" if weights is not None else "final",
        "model": config.model,
        "dataset": config.dataset,
        "optimizer": config.optimizer,
        **strategy.describe(),
        "run_dir": str(run_dir),
        "environment": environment(),
    }
    atomic_write_json(run_dir / "summary.json", summary)
    lr_monitor = trainer.find_callback(LRMonitor)
    write_run_report(
        run_dir,
        config=config.to_dict(),
        summary=summary,
        history=trainer.history,
        lr_history=lr_monitor.history if lr_monitor else None,
    )
    return summary


def load_model_weights(model: nn.Module, checkpoint: str | os.PathLike[str]) -> nn.Module:
    """Load the model tensors of a checkpoint into ``model`` (strict)."""
    _, tensors = load_checkpoint(checkpoint)
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {checkpoint} does not fit the model: {exc}") from exc
    return model


def environment() -> dict[str, Any]:
    """Versions and code identity recorded with every run (airbench-style)."""
    import numpy

    import dlskills

    return {
        "dlskills": dlskills.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
        "git_commit": _git_commit(),
        "code_hash": code_hash(),
    }


def code_hash() -> str:
    """sha256 over the dlskills package's Python sources (works without git, e.g. a wheel)."""
    import dlskills

    root = Path(dlskills.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _git_commit() -> str | None:
    import dlskills

    source = Path(dlskills.__file__).parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "."],
            cwd=source,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode != 0:
        return None
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


@dataclasses.dataclass
class LoadedRun:
    """A finished (or interrupted) run read back from its folder."""

    path: Path
    config: dict[str, Any]
    model: nn.Module
    splits: Any
    metrics: list[dict[str, Any]]
    summary: dict[str, Any]


def load_run(path: str | os.PathLike[str]) -> LoadedRun:
    """Read the run folder ``path``: config, the model with the best checkpoint's weights (the
    last checkpoint's when there is no best), the data splits, metrics rows and summary."""
    run_dir = Path(path)
    config = config_from_record(read_run_config(run_dir))
    seed_everything(config.seed)
    splits = load_data(config)
    model = build_model(config, splits)
    checkpoint = next(
        (
            run_dir / "checkpoints" / name
            for name in ("best", "last")
            if checkpoint_paths(run_dir / "checkpoints" / name)[0].is_file()
        ),
        None,
    )
    if checkpoint is None:
        raise FileNotFoundError(f"run folder {run_dir} has no checkpoint")
    load_model_weights(model, checkpoint)
    model.eval()
    metrics_path = run_dir / "metrics.csv"
    summary_path = run_dir / "summary.json"
    return LoadedRun(
        path=run_dir,
        config=config.to_dict(),
        model=model,
        splits=splits,
        metrics=read_metrics(metrics_path) if metrics_path.is_file() else [],
        summary=json.loads(summary_path.read_text("utf-8")) if summary_path.is_file() else {},
    )
