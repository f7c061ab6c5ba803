"""The run configuration of ``dlskills train``: one flat table of named, validated keys.

Sources, later ones winning: the defaults below, a ``--config`` file (TOML via tomllib, or YAML via
PyYAML when installed), then command-line options. Unknown keys and bad values are rejected with a
ValueError that names the key (``unknown config key 'lrr'; did you mean 'lr'?``). Component names
(model, dataset, optimizer, schedule, init) are checked against their registries when the run is
built, and errors there also name the key.

The defaults are the recipe measured for the main job (docs/training.md,
benchmarks/default_recipe.py): the small CNN on digits with AdamW (lr 3e-3, weight decay 5e-4), a
cosine schedule after a 20-step warm-up, 20 epochs of batch 64, label smoothing 0.1 (catalog
1902.04103), validation and checkpoints with the EMA of the weights at decay 0.99 (catalog
polyak-juditsky-1992), one torch thread. ``label_smoothing = 0`` and ``ema_decay = 0`` turn those
two off (an EMA with decay 0 is the live weights). ``threads = 1`` by default because these
laptop-scale models gain little from intra-op threads and lose a lot when the cores are shared:
on the 2-core development machine under load the default run took 177 s with 2 threads and 10 s
with 1. It also makes a
run's floating-point results independent of the machine's core count. ``threads = None`` keeps
torch's own setting.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
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
    lr: float = 3e-3
    weight_decay: float | None = 5e-4
    momentum: float | None = None
    opt: dict[str, Any] = field(default_factory=dict)
    model_args: dict[str, Any] = field(default_factory=dict)
    activation: str | None = None
    norm: str | None = None
    init: str | None = None
    dropout: float | None = None
    schedule: str = "cosine"
    warmup_steps: int = 20
    epochs: int | None = 20
    max_steps: int | None = None
    batch_size: int = 64
    seed: int = 0
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

# key -> (accepted Python types, whether None is allowed, extra check or None, what it must be)
_POSITIVE = (lambda v: v > 0, "> 0")
_NON_NEGATIVE = (lambda v: v >= 0, "≥ 0")
_RULES: dict[str, tuple[tuple[type, ...], bool, tuple[Any, str] | None]] = {
    "model": ((str,), False, None),
    "dataset": ((str,), False, None),
    "data_dir": ((str,), True, None),
    "optimizer": ((str,), False, None),
    "lr": ((float, int), False, _POSITIVE),
    "weight_decay": ((float, int), True, _NON_NEGATIVE),
    "momentum": ((float, int), True, (lambda v: 0 <= v < 1, "in [0, 1)")),
    "opt": ((dict,), False, None),
    "model_args": ((dict,), False, None),
    "activation": ((str,), True, None),
    "norm": ((str,), True, None),
    "init": ((str,), True, None),
    "dropout": ((float, int), True, (lambda v: 0 <= v < 1, "in [0, 1)")),
    "schedule": ((str,), False, None),
    "warmup_steps": ((int,), False, _NON_NEGATIVE),
    "epochs": ((int,), True, _POSITIVE),
    "max_steps": ((int,), True, _POSITIVE),
    "batch_size": ((int,), False, _POSITIVE),
    "seed": ((int,), False, (lambda v: 0 <= v < 2**32, "in [0, 2**32)")),
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
            raise ValueError(f"config key {key!r} must be set")
        # bool is an int in Python; only keys typed bool accept it
        if isinstance(value, bool) and bool not in types:
            raise ValueError(f"config key {key!r} must be {_type_names(types)}, got {value!r}")
        if not isinstance(value, types):
            raise ValueError(f"config key {key!r} must be {_type_names(types)}, got {value!r}")
        if check is not None and not check[0](value):
            raise ValueError(f"config key {key!r} must be {check[1]}, got {value!r}")
        if isinstance(value, dict) and not all(isinstance(k, str) for k in value):
            raise ValueError(f"config key {key!r} must map names to values, got {value!r}")
    if config.epochs is None and config.max_steps is None:
        raise ValueError("config keys 'epochs' and 'max_steps' are both unset; give one")


def _type_names(types: tuple[type, ...]) -> str:
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}
    if float in types:
        return "a number"
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
    return TrainConfig(**merged)


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
