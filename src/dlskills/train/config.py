"""The run configuration of ``dlskills train``: one flat table of named, validated keys.

Sources, later ones winning: the defaults below, a ``--config`` file (TOML via tomllib, or YAML via
PyYAML when installed), then command-line options. Unknown keys and bad values are rejected with a
ValueError that names the key (``unknown config key 'lrr'; did you mean 'lr'?``). Component names
(model, dataset, optimizer, schedule, init) are checked against their registries when the run is
built, and errors there also name the key.

The defaults are the recipe measured for the main job (docs/training.md): the small CNN on digits
with AdamW (lr 3e-3, weight decay 5e-4), a cosine schedule after a 20-step warm-up, 20 epochs of
batch 64, label smoothing 0.1 (catalog 1902.04103), validation and checkpoints with the EMA of the
weights at decay 0.99 from half-way through the run (catalog polyak-juditsky-1992), one torch
thread (benchmarks/default_recipe.py measures it; ``label_smoothing = 0`` and ``ema_decay = 0``
turn those two off). Three defaults adapt to the run (``resolve``, called once the data
fixes the number of optimizer steps; the run's config.json records the values used):

- ``lr`` unset: 3e-3 with the recipe's AdamW, else the optimizer's own default (the ``lr``
  default of its registered class or factory; an optimizer without one needs ``--lr``);
- ``warmup_steps`` unset: min(20, ⌊steps/10⌋), so a short run keeps most of its steps;
- ``milestones`` unset with the ``step`` schedule: half and three quarters of the run (in
  epochs, possibly fractional; the LR is multiplied by 0.1 at each).

Explicit values that cannot work in the run (a warm-up as long as the run, a milestone past its
end) are errors naming the option. ``threads = 1`` by default because these laptop-scale models gain
little from intra-op threads and lose a lot when the cores are shared: on the 2-core development
machine under load the default run took 177 s with 2 threads and 10 s with 1. It also makes a
run's floating-point results independent of the machine's core count. ``threads = None`` keeps
torch's own setting. ``seed`` draws everything random in a run (the data split, the
initialisation, the batch order, dropout); ``data_seed``, when set, draws the split instead, so
runs that differ only in ``seed`` train on the same split (an ensemble of runs, the spread over
initialisations).
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NAN_POLICIES = ("stop", "rollback", "off")
PRECISIONS = ("32", "bf16")
#: more local processes than this many per CPU core only queue behind each other
MAX_PROCESSES_PER_CORE = 8


@dataclass
class TrainConfig:
    model: str = "cnn"
    dataset: str = "digits"
    data_dir: str | None = None
    optimizer: str = "adamw"
    lr: float | None = None
    weight_decay: float | None = 5e-4
    momentum: float | None = None
    opt: dict[str, Any] = field(default_factory=dict)
    model_args: dict[str, Any] = field(default_factory=dict)
    activation: str | None = None
    norm: str | None = None
    init: str | None = None
    dropout: float | None = None
    schedule: str = "cosine"
    warmup_steps: int | None = None
    milestones: list[float] | None = None
    epochs: int | None = 20
    max_steps: int | None = None
    batch_size: int = 64
    seed: int = 0
    data_seed: int | None = None
    out: str | None = None
    name: str | None = None
    device: str = "cpu"
    threads: int | None = 1
    compile: bool = False
    clip_grad_norm: float | None = None
    label_smoothing: float = 0.1
    ema_decay: float = 0.99
    nan_policy: str = "stop"
    progress: bool = True
    tensorboard: bool = False
    early_stopping: int | None = None
    checkpoint_every: int | None = None
    accumulate: int = 1
    precision: str = "32"
    strategy: str | None = None
    nproc: int = 1
    sync_every: int | None = None
    strategy_args: dict[str, Any] = field(default_factory=dict)
    max_restarts: int = 0

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TrainConfig))

#: the measured recipe's optimizer, its learning rate and its warm-up (docs/training.md)
RECIPE_OPTIMIZER = "adamw"
RECIPE_LR = 3e-3
RECIPE_WARMUP_STEPS = 20
#: an automatic warm-up takes at most this fraction of the run's optimizer steps
WARMUP_FRACTION = 0.1
#: automatic milestones of the step schedule, as fractions of the run
MILESTONE_FRACTIONS = (0.5, 0.75)

# options whose name is not "--" + the key with dashes
_OPTION_NAMES = {
    "opt": "--opt",
    "model_args": "--model-arg",
    "strategy_args": "--strategy-arg",
    "progress": "--no-progress",
}


def option_name(key: str) -> str:
    """The ``dlskills train`` option that sets config key ``key``."""
    return _OPTION_NAMES.get(key, "--" + key.replace("_", "-"))


def key_name(key: str) -> str:
    """How errors name a config key, for config files and the command line alike."""
    return f"config key {key!r} ({option_name(key)})"


# key -> (accepted Python types, whether None is allowed, extra check or None, what it must be)
_POSITIVE = (lambda v: v > 0, "> 0")
_NON_NEGATIVE = (lambda v: v >= 0, "≥ 0")
_RULES: dict[str, tuple[tuple[type, ...], bool, tuple[Any, str] | None]] = {
    "model": ((str,), False, None),
    "dataset": ((str,), False, None),
    "data_dir": ((str,), True, None),
    "optimizer": ((str,), False, None),
    "lr": ((float, int), True, _POSITIVE),
    "weight_decay": ((float, int), True, _NON_NEGATIVE),
    "momentum": ((float, int), True, (lambda v: 0 <= v < 1, "in [0, 1)")),
    "opt": ((dict,), False, None),
    "model_args": ((dict,), False, None),
    "activation": ((str,), True, None),
    "norm": ((str,), True, None),
    "init": ((str,), True, None),
    "dropout": ((float, int), True, (lambda v: 0 <= v < 1, "in [0, 1)")),
    "schedule": ((str,), False, None),
    "warmup_steps": ((int,), True, _NON_NEGATIVE),
    "milestones": (
        (list,),
        True,
        (
            lambda v: (
                all(_is_number(m) and m > 0 for m in v)
                and all(a < b for a, b in itertools.pairwise(v))
            ),
            "increasing positive epochs",
        ),
    ),
    "epochs": ((int,), True, _POSITIVE),
    "max_steps": ((int,), True, _POSITIVE),
    "batch_size": ((int,), False, _POSITIVE),
    "seed": ((int,), False, (lambda v: 0 <= v < 2**32, "in [0, 2**32)")),
    "data_seed": ((int,), True, (lambda v: 0 <= v < 2**32, "in [0, 2**32)")),
    "out": ((str,), True, None),
    "name": ((str,), True, (lambda v: v and os.sep not in v, "a plain folder name")),
    "device": ((str,), False, None),
    "threads": ((int,), True, _POSITIVE),
    "compile": ((bool,), False, None),
    "clip_grad_norm": ((float, int), True, _POSITIVE),
    "label_smoothing": ((float, int), False, (lambda v: 0 <= v < 1, "in [0, 1)")),
    "ema_decay": ((float, int), False, (lambda v: 0 <= v < 1, "in [0, 1)")),
    "nan_policy": ((str,), False, (lambda v: v in NAN_POLICIES, f"one of {NAN_POLICIES}")),
    "progress": ((bool,), False, None),
    "tensorboard": ((bool,), False, None),
    "early_stopping": ((int,), True, _POSITIVE),
    "checkpoint_every": ((int,), True, _POSITIVE),
    "accumulate": ((int,), False, _POSITIVE),
    "precision": ((str,), False, (lambda v: v in PRECISIONS, f"one of {PRECISIONS}")),
    "strategy": ((str,), True, None),
    "nproc": (
        (int,),
        False,
        (
            lambda v: 1 <= v <= MAX_PROCESSES_PER_CORE * (os.cpu_count() or 1),
            f"in [1, {MAX_PROCESSES_PER_CORE} × the {os.cpu_count() or 1} CPU cores]",
        ),
    ),
    "sync_every": ((int,), True, _POSITIVE),
    "strategy_args": ((dict,), False, None),
    "max_restarts": ((int,), False, _NON_NEGATIVE),
}


def validate(config: TrainConfig) -> None:
    """Raise ValueError naming the first key whose value has the wrong type or range."""
    for key in KEYS:
        value = getattr(config, key)
        types, nullable, check = _RULES[key]
        if value is None:
            if nullable:
                continue
            raise ValueError(f"{key_name(key)} must be set")
        # bool is an int in Python; only keys typed bool accept it
        if isinstance(value, bool) and bool not in types:
            raise ValueError(f"{key_name(key)} must be {_type_names(types)}, got {value!r}")
        if not isinstance(value, types):
            raise ValueError(f"{key_name(key)} must be {_type_names(types)}, got {value!r}")
        if check is not None and not check[0](value):
            raise ValueError(f"{key_name(key)} must be {check[1]}, got {value!r}")
        if isinstance(value, dict) and not all(isinstance(k, str) for k in value):
            raise ValueError(f"{key_name(key)} must map names to values, got {value!r}")
    if config.epochs is None and config.max_steps is None:
        raise ValueError("config keys 'epochs' and 'max_steps' are both unset; give one")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _type_names(types: tuple[type, ...]) -> str:
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}
    if float in types:
        return "a number"
    if list in types:
        return "a list"
    return " or ".join(names.get(t, "a table") for t in types)


def normalise_key(key: str) -> str:
    return key.strip().replace("-", "_")


def check_keys(mapping: dict[str, Any], where: str = "") -> dict[str, Any]:
    """``mapping`` with normalised keys; unknown keys rejected with a did-you-mean hint."""
    result = {}
    for key, value in mapping.items():
        name = normalise_key(str(key))
        if name not in KEYS:
            close = difflib.get_close_matches(name, KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (known keys: {', '.join(KEYS)})"
            raise ValueError(f"unknown config key {key!r}{where}{hint}")
        result[name] = value
    return result


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The table in a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file, keys checked."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} not found")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    if suffix == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config file {path}: invalid TOML: {exc}") from exc
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:
            raise ValueError(
                f"config file {path} is YAML, which needs PyYAML: pip install 'dlskills[yaml]' "
                "(or write the config as TOML)"
            ) from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"config file {path}: invalid YAML: {exc}") from exc
        data = {} if data is None else data
    else:
        raise ValueError(f"config file {path}: use a .toml, .yaml or .yml file")
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a table of keys, got {type(data).__name__}")
    return check_keys(data, where=f" in {path.name}")


def make_config(*layers: dict[str, Any]) -> TrainConfig:
    """Defaults overridden by each layer in turn (None values in a layer mean "not given")."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: v for k, v in check_keys(layer).items() if v is not None})
    for key in ("lr", "weight_decay", "momentum", "dropout", "clip_grad_norm"):
        if isinstance(merged.get(key), int) and not isinstance(merged[key], bool):
            merged[key] = float(merged[key])
    if isinstance(merged.get("milestones"), tuple):
        merged["milestones"] = list(merged["milestones"])
    return TrainConfig(**merged)


def resolve(
    config: TrainConfig, *, steps_per_epoch: int, total_steps: int, default_lr: float
) -> TrainConfig:
    """``config`` with the values it leaves to the run filled in, for a run of ``total_steps``
    optimizer steps of which ``steps_per_epoch`` make an epoch, and an optimizer whose default
    learning rate is ``default_lr``. Explicit values that cannot work there raise ValueError."""
    changes: dict[str, Any] = {}
    if config.lr is None:
        changes["lr"] = default_lr
    if config.warmup_steps is None:
        changes["warmup_steps"] = min(RECIPE_WARMUP_STEPS, int(WARMUP_FRACTION * total_steps))
    elif config.warmup_steps >= total_steps:
        raise ValueError(
            f"{key_name('warmup_steps')} is {config.warmup_steps} but the run has only "
            f"{total_steps} optimizer steps: give fewer, or leave it out for "
            f"min({RECIPE_WARMUP_STEPS}, steps/10)"
        )
    run_epochs = total_steps / steps_per_epoch
    if config.schedule.strip().lower() != "step":
        if config.milestones is not None:
            raise ValueError(
                f"{key_name('milestones')} applies to --schedule step only (this run: "
                f"{config.schedule}): drop it or use the step schedule"
            )
    elif config.milestones is None:
        steps = sorted({max(1, int(f * total_steps)) for f in MILESTONE_FRACTIONS})
        changes["milestones"] = [_plain(s / steps_per_epoch) for s in steps]
    else:
        late = [m for m in config.milestones if round(m * steps_per_epoch) >= total_steps]
        if late:
            raise ValueError(
                f"{key_name('milestones')}: epoch {late[0]} is not inside the run's "
                f"{_plain(run_epochs)} epochs ({total_steps} steps): give earlier epochs"
            )
        steps = milestone_steps(config.milestones, steps_per_epoch)
        if steps[0] < 1 or len(set(steps)) < len(steps):
            raise ValueError(
                f"{key_name('milestones')}: {config.milestones} fall on steps {steps}; "
                f"give epochs that fall on distinct steps ≥ 1 (a step is {1 / steps_per_epoch:.3g} "
                "epochs)"
            )
    return dataclasses.replace(config, **changes) if changes else config


def milestone_steps(milestones: list[float], steps_per_epoch: int) -> list[int]:
    """Milestones in epochs as optimizer steps (counted from the first step)."""
    return [round(m * steps_per_epoch) for m in milestones]


def _plain(value: float) -> float | int:
    """``value`` as an int when it is whole (config.json shows 10, not 10.0)."""
    return int(value) if float(value).is_integer() else value


def parse_assignment(text: str, option: str) -> tuple[str, Any]:
    """``KEY=VALUE`` from the command line: VALUE as a Python/TOML-like literal (numbers,
    true/false, tuples like ``0.9,0.999``), else the plain string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise ValueError(f"{option} expects KEY=VALUE with KEY a name, got {text!r}")
    raw = raw.strip()
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return key, lowered == "true"
    if lowered in ("none", "null"):
        return key, None
    try:
        return key, ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return key, raw
