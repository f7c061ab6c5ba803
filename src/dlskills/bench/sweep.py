"""Hyper-parameter sensitivity studies on Optuna (catalog 1510.03820: Zhang & Wallace, "A
Sensitivity Analysis of (and Practitioners' Guide to) Convolutional Neural Networks for Sentence
Classification", 2015) — ``dlskills sweep``.

A study varies some keys of a training run (any ``dlskills train`` config key, e.g. ``lr`` or
``dropout``, or a model keyword, e.g. TextCNN's ``region_sizes``) over a list of values each,
keeps the others at ``base``, and trains every chosen setting ``repeats`` times (seeds
``seed .. seed + repeats − 1``: the data split, the initialisation and the batch order change;
every setting sees the same seeds). A trial's objective is the mean validation accuracy over its
repeats; each repeat's validation and test accuracy are kept with the trial. The samplers:

    grid    every combination of the values (optuna's GridSampler)
    ofat    one factor at a time, the paper's design: the baseline (each key's first value),
            then each key's other values with every other key at its baseline
    random  values drawn independently at random (optuna's RandomSampler)
    tpe     the Tree-structured Parzen Estimator (optuna's TPESampler)

Storage: an RDB URL (``sqlite:///study.db`` by default in ``dlskills sweep``; in-memory when
``storage`` is None). Several processes, on one machine or several, join the same study by
giving the same URL and study name: grid and ofat points are shared out by optuna's
GridSampler (ofat as a grid over the indices of its points). A run that is killed keeps every
finished trial; started again it continues where it stopped: a trial that was running when its
process died stops sending heartbeats, is marked failed once ``2 × heartbeat`` seconds have
passed, and is queued again with the same values (Ctrl-C re-queues the interrupted trial at
once). A study remembers its spec (model, data, space, base, sampler, repeats, seed) and refuses
to continue under a different one.

The paper's analysis: for each key, the distribution of the accuracies (every repeat of every
trial with that value; for ofat only the trials that vary that key, the others at their
baseline) per value (:func:`distributions`, :func:`plot_sensitivity`: box plots per value), and
the spread of the mean accuracy over a key's values (:func:`sensitivity`: max − min of the
per-value means), which ranks the keys by how much they matter.
"""

from __future__ import annotations

import itertools
import json
import statistics
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SAMPLERS = ("grid", "ofat", "random", "tpe")

#: the paper's grid (1510.03820 Sec. 4), scaled to the generated sentences: region sizes 1..7
#: and the baseline's (3, 4, 5); feature maps from 1/4 to 8× the baseline (the paper: 10..2000
#: around 100); its activations, pooling strategies and dropout rates. First value = baseline.
PAPER_SPACE: dict[str, list[Any]] = {
    "region_sizes": [(3, 4, 5), (1,), (2,), (3,), (5,), (7,)],
    "feature_maps": [8, 2, 4, 16, 32, 64],
    "activation": ["relu", "tanh", "sigmoid", "softplus", "identity"],
    "pooling": ["max", "avg", "kmax"],
    "dropout": [0.5, 0.0, 0.1, 0.3, 0.7],
}
#: the fixed training setup of the paper's study on the generated sentences: Kim's batch of 50,
#: Adam at a constant 1e-2 (Kim: Adadelta), no label smoothing, no weight averaging
PAPER_BASE: dict[str, Any] = {
    "model": "textcnn",
    "dataset": "sentences",
    "optimizer": "adam",
    "lr": 0.01,
    "weight_decay": 0.0,
    "schedule": "constant",
    "label_smoothing": 0.0,
    "ema_decay": 0.0,
    "batch_size": 50,
    "epochs": 10,
}


def label(value: Any) -> Any:
    """How a value is stored in optuna (str, int, float, bool or None): sequences as
    ``"3,4,5"``."""
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return value


@dataclass(frozen=True)
class SweepSpec:
    """What a study varies (``space``: key → values, the first value being the baseline), what it
    keeps fixed (``base``: config keys), how it samples, and how often it repeats each setting."""

    space: dict[str, list[Any]]
    base: dict[str, Any] = field(default_factory=dict)
    sampler: str = "grid"
    repeats: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        from dlskills.train.config import KEYS

        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        for name, value, least in (("repeats", self.repeats, 1), ("seed", self.seed, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an int >= {least}, got {value!r}")
        if not self.space:
            raise ValueError("space must name at least one key to vary")
        for key, values in self.space.items():
            if isinstance(values, str) or not isinstance(values, Sequence) or not values:
                raise ValueError(f"space: {key!r} needs a non-empty list of values, got {values!r}")
            labels = [label(v) for v in values]
            if len(set(map(repr, labels))) != len(labels):
                raise ValueError(f"space: {key!r} lists a value twice: {list(values)}")
            if key in ("seed", "out", "name"):
                raise ValueError(f"space: {key!r} cannot be swept (use repeats for seeds)")
        unknown = [k for k in self.base if k not in KEYS]
        if unknown:
            raise ValueError(f"base: unknown config key(s) {', '.join(map(repr, unknown))}")
        object.__setattr__(self, "space", {k: list(v) for k, v in self.space.items()})

    def to_json(self) -> str:
        data = asdict(self)
        data["space"] = {k: [label(v) for v in vs] for k, vs in self.space.items()}
        return json.dumps(data, sort_keys=True, default=str)

    @property
    def baseline(self) -> dict[str, Any]:
        return {key: values[0] for key, values in self.space.items()}

    def points(self) -> list[dict[str, Any]] | None:
        """The settings grid and ofat visit, in order (None for random and tpe)."""
        if self.sampler == "grid":
            keys = list(self.space)
            return [dict(zip(keys, combo)) for combo in itertools.product(*self.space.values())]
        if self.sampler == "ofat":
            baseline = self.baseline
            varied = [
                {**baseline, key: value}
                for key, values in self.space.items()
                for value in values[1:]
            ]
            return [baseline, *varied]
        return None

    def config(self, params: Mapping[str, Any], seed: int) -> Any:
        """The TrainConfig of one repeat: ``base``, then ``params`` (config keys, else model
        keywords), then the seed."""
        from dlskills.train.config import KEYS, make_config

        model_args = dict(self.base.get("model_args", {}))
        keys: dict[str, Any] = {}
        for key, value in params.items():
            if key in KEYS:
                keys[key] = value
            else:
                model_args[key] = value
        return make_config(
            {"progress": False}, self.base, keys, {"model_args": model_args, "seed": seed}
        )


def fit_once(config: Any) -> dict[str, float]:
    """Train one run of ``config`` in memory (``dlskills.train``: data, model, optimizer,
    schedule, loss and the config's callbacks, but no run folder, checkpoints or logs);
    validation and test accuracy (%) of the final model."""
    from dlskills.train.callbacks import ModelCheckpoint
    from dlskills.train.runs import build, default_callbacks
    from dlskills.train.trainer import Trainer

    parts = build(config)
    task = parts.splits.task
    if task != "classification":
        raise ValueError(f"dataset {config.dataset!r} is a {task} task: sweeps need accuracies")
    callbacks = [
        c
        for c in default_callbacks(parts.config, task, main=False, total_steps=parts.total_steps)
        if not isinstance(c, ModelCheckpoint)
    ]
    trainer = Trainer(
        parts.model,
        parts.optimizer,
        parts.loss_fn,
        parts.train_loader,
        parts.val_loader,
        callbacks,
        max_epochs=parts.config.epochs,
        max_steps=parts.config.max_steps,
        scheduler=parts.scheduler,
        seed=parts.config.seed,
        device=parts.config.device,
        accumulate_grad_batches=parts.config.accumulate,
        precision=parts.config.precision,
    )
    trainer.fit()
    val = trainer.evaluate(parts.val_loader)["accuracy"]
    test = trainer.evaluate(parts.test_loader)["accuracy"]
    return {"val": 100 * val, "test": 100 * test}


def _sampler(spec: SweepSpec) -> Any:
    import optuna

    points = spec.points()
    if spec.sampler == "grid":
        space = {key: [label(v) for v in values] for key, values in spec.space.items()}
        return optuna.samplers.GridSampler(space, seed=spec.seed)
    if spec.sampler == "ofat":
        return optuna.samplers.GridSampler({"point": list(range(len(points)))}, seed=spec.seed)
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=spec.seed)
    return optuna.samplers.TPESampler(seed=spec.seed)


def open_study(
    spec: SweepSpec,
    storage: str | None = None,
    study_name: str = "sweep",
    *,
    heartbeat: int = 10,
) -> Any:
    """The study ``study_name`` in ``storage`` (an RDB URL; None: in memory), created or, if it
    exists with the same spec, loaded. ``heartbeat``: seconds between a running trial's
    heartbeats (RDB storage only; a trial silent for twice that is failed and re-queued)."""
    import optuna

    if isinstance(heartbeat, bool) or not isinstance(heartbeat, int) or heartbeat < 1:
        raise ValueError(f"heartbeat must be a positive int (seconds), got {heartbeat!r}")
    if storage is not None:
        if not isinstance(storage, str) or "://" not in storage:
            raise ValueError(
                f"storage must be an RDB URL such as sqlite:///study.db, got {storage!r}"
            )
        if storage.startswith("sqlite:///"):
            Path(storage.removeprefix("sqlite:///")).expanduser().parent.mkdir(
                parents=True, exist_ok=True
            )
        with warnings.catch_warnings():  # heartbeats are "experimental" since optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(
                storage,
                # SQLite lets one writer in at a time: wait for the lock (heartbeat threads and
                # other processes write too) rather than fail after sqlite3's default 5 s
                engine_kwargs={"connect_args": {"timeout": 60}}
                if storage.startswith("sqlite")
                else None,
                heartbeat_interval=heartbeat,
                grace_period=2 * heartbeat,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(),
            )
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not "created" / "using existing"
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=study_name,
            direction="maximize",
            sampler=_sampler(spec),
            load_if_exists=True,
        )
    finally:
        optuna.logging.set_verbosity(verbosity)
    saved = study.user_attrs.get("spec")
    if saved is None:
        study.set_user_attr("spec", spec.to_json())
    elif saved != spec.to_json():
        raise ValueError(
            f"study {study_name!r} in this storage was made with another spec ({saved}); give a "
            "new --study name or --storage to start a different sweep"
        )
    return study


def completed(study: Any) -> list[Any]:
    """The study's finished trials, in order."""
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def run_sweep(
    spec: SweepSpec,
    *,
    trials: int | None = None,
    storage: str | None = None,
    study_name: str = "sweep",
    heartbeat: int = 10,
    progress: Callable[[int, int, str], None] | None = None,
    fit: Callable[[Any], dict[str, float]] = fit_once,
) -> Any:
    """Run (or continue) the study until it has ``trials`` finished trials (default: every point
    of a grid/ofat design; random and tpe need ``trials``); returns the optuna Study.
    ``progress(done, total, what)`` is called after each finished trial; ``fit(config)`` trains
    one repeat and returns its ``{"val": %, "test": %}``."""
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    points = spec.points()
    if trials is None:
        if points is None:
            raise ValueError(f"sampler {spec.sampler!r} needs a number of trials")
        trials = len(points)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be a positive int, got {trials!r}")
    study = open_study(spec, storage, study_name, heartbeat=heartbeat)
    seeds = [spec.seed + r for r in range(spec.repeats)]
    running: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        running[:] = [trial.number]
        if points is not None and spec.sampler == "ofat":
            params = points[trial.suggest_categorical("point", list(range(len(points))))]
        else:
            params = {}
            for key, values in spec.space.items():
                by_label = {label(v): v for v in values}
                params[key] = by_label[trial.suggest_categorical(key, list(by_label))]
        started = time.perf_counter()
        scores = [fit(spec.config(params, seed)) for seed in seeds]
        trial.set_user_attr("params", {k: label(v) for k, v in params.items()})
        trial.set_user_attr("seeds", seeds)
        trial.set_user_attr("val", [s["val"] for s in scores])
        trial.set_user_attr("test", [s["test"] for s in scores])
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 3))
        return statistics.fmean(s["val"] for s in scores)

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if progress is not None and trial.state == TrialState.COMPLETE:
            shown = ", ".join(f"{k}={v}" for k, v in trial.user_attrs["params"].items())
            done = min(len(completed(study)), trials)
            progress(done, trials, f"#{trial.number} {shown}: {trial.value:.2f} %")

    if len(completed(study)) >= trials:
        return study
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # ``progress`` reports the trials
    try:
        study.optimize(
            objective,
            callbacks=[MaxTrialsCallback(trials, states=(TrialState.COMPLETE,)), report],
        )
    except KeyboardInterrupt:
        # the interrupted trial is failed by optuna: queue it again so no setting is lost
        for number in running:
            interrupted = study.get_trials(deepcopy=False)[number]
            if interrupted.state == TrialState.FAIL:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    retry = optuna.storages.RetryHeartbeatStaleTrialCallback()
                retry(study, interrupted)
        raise
    finally:
        optuna.logging.set_verbosity(verbosity)
    return study


# --- the paper's analysis ---------------------------------------------------------------------


def spec_of(study: Any) -> SweepSpec:
    """The spec a study was made with (values as stored: sequences as "3,4,5")."""
    data = json.loads(study.user_attrs["spec"])
    return SweepSpec(**data)


def distributions(study: Any, key: str, metric: str = "val") -> dict[Any, list[float]]:
    """Value of ``key`` → accuracies (%, ``metric`` "val" or "test") of every repeat of every
    finished trial with that value, in the order of the spec's values. For an ofat study only
    trials whose other keys sit at their baseline count (the paper's one-factor-at-a-time
    comparison)."""
    if metric not in ("val", "test"):
        raise ValueError(f"metric must be 'val' or 'test', got {metric!r}")
    spec = spec_of(study)
    if key not in spec.space:
        raise ValueError(f"key {key!r} is not swept (swept: {', '.join(spec.space)})")
    baseline = spec.baseline
    result: dict[Any, list[float]] = {value: [] for value in spec.space[key]}
    for trial in completed(study):
        params = trial.user_attrs["params"]
        if spec.sampler == "ofat" and any(params[k] != baseline[k] for k in spec.space if k != key):
            continue
        result[params[key]] += trial.user_attrs[metric]
    return result


def sensitivity(study: Any, metric: str = "val") -> dict[str, float]:
    """Key → spread (max − min, in accuracy points) of the mean accuracy over its values; values
    (and keys) no finished trial tried are left out."""
    spreads = {}
    for key in spec_of(study).space:
        means = [statistics.fmean(v) for v in distributions(study, key, metric).values() if v]
        if means:
            spreads[key] = max(means) - min(means)
    return spreads


def best(study: Any) -> dict[str, Any]:
    """The best finished trial: number, values, mean validation and test accuracy (%)."""
    trial = study.best_trial
    return {
        "trial": trial.number,
        "params": trial.user_attrs["params"],
        "val_accuracy": trial.value,
        "test_accuracy": statistics.fmean(trial.user_attrs["test"]),
    }


def summary(study: Any) -> dict[str, Any]:
    """What ``dlskills sweep`` writes to sweep.json: spec, counts, best, sensitivity and every
    finished trial's values and accuracies."""
    from optuna.trial import TrialState

    states = [t.state for t in study.get_trials(deepcopy=False)]
    return {
        "study": study.study_name,
        "spec": json.loads(study.user_attrs["spec"]),
        "trials": {state.name.lower(): states.count(state) for state in TrialState},
        "best": best(study) if completed(study) else None,
        "sensitivity": sensitivity(study),
        "completed": [
            {"trial": t.number, **{k: t.user_attrs[k] for k in ("params", "val", "test")}}
            for t in completed(study)
        ],
    }


def plot_sensitivity(
    study: Any, path: str | Path, *, metric: str = "val", title: str | None = None
) -> Path:
    """One panel per swept key: a box plot of the accuracies (``metric``) per value (every
    repeat; mean as a diamond, runs per value under its name), panels ordered by spread."""
    from dlskills._plot import label_axes, new_figure, save_figure

    spec = spec_of(study)
    spreads = sensitivity(study, metric)
    what = "validation" if metric == "val" else "test"
    keys = sorted(spreads, key=lambda k: -spreads[k])  # an ofat study stopped early may lack some
    if not keys:
        raise ValueError(f"study {study.study_name!r} has no finished trial to plot")
    columns = min(3, len(keys))
    rows = -(-len(keys) // columns)
    fig, axes = new_figure(rows, columns, size=(4.2, 3.4))
    axes = [axes] if len(keys) == 1 else list(getattr(axes, "flat", axes))
    for ax, key in zip(axes, keys):
        groups = {v: a for v, a in distributions(study, key, metric).items() if a}
        names = [f"{v}\nn={len(a)}" for v, a in groups.items()]
        ax.boxplot(list(groups.values()), tick_labels=names, widths=0.6)
        means = [statistics.fmean(a) for a in groups.values()]
        ax.plot(range(1, len(means) + 1), means, "D", color="tab:red")
        label_axes(ax, key, f"{what} accuracy (%)", title=f"{key}: spread {spreads[key]:.1f} pts")
    for ax in axes[len(keys) :]:
        ax.set_visible(False)
    base = spec.base
    fig.suptitle(
        (
            title
            or f"{base.get('model', 'cnn')} on {base.get('dataset', 'digits')}: accuracy per "
            f"value ({spec.sampler}, {spec.repeats} repeat(s) per trial)"
        )
        + "\nbox: quartiles, orange line: median, whiskers: 1.5 IQR, red diamond: mean; "
        "n = runs per value"
    )
    return save_figure(fig, path)
