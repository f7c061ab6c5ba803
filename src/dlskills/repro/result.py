"""The record a reproduction returns: claim, measured quantities, thresholds, verdict, run record.

The JSON form is the contract in RESULT_SCHEMA.md (``schema`` 1), read by ``dlskills report
--site``. A verdict is never written by hand: it follows from the thresholds,

    every threshold holds  -> "reproduced"
    some hold              -> "partial"
    none holds             -> "not reproduced"

and the reason names each threshold that fails with its measured value. A threshold judges the
mean of its quantity over the seeds (a repro that needs "on every seed" reports the worst seed
as its own quantity).

``Run`` is what a repro function starts with: it validates ``scale``/``seeds``/``out`` before
anything runs, keeps the start time, and turns the measurements into a ``Result`` with the run
record (dlskills version, git commit or null, sha256 of the package sources, torch version,
threads, Python, platform, config, seeds, start time).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import operator
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = 1
SCALES = ("fast", "full")
VERDICTS = ("reproduced", "partial", "not reproduced")
RESULT_FILE = "result.json"

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Claim:
    """What the paper says: its sentence, its number (as text) and where it is (figure/table)."""

    text: str
    value: str
    source: str


@dataclass(frozen=True)
class Measured:
    """One measured quantity. ``values``/``seeds``/``std`` are None for a deterministic one."""

    name: str
    unit: str
    mean: float
    std: float | None = None
    values: tuple[float, ...] | None = None
    seeds: tuple[int, ...] | None = None

    @classmethod
    def exact(cls, name: str, unit: str, value: float) -> Measured:
        """A deterministic quantity (one number, no seeds)."""
        return cls(name, unit, float(value))

    @classmethod
    def over_seeds(
        cls, name: str, unit: str, values: Sequence[float], seeds: Sequence[int]
    ) -> Measured:
        """Mean ± sample standard deviation of one value per seed."""
        if len(values) != len(seeds) or not values:
            raise ValueError(
                f"{name}: need one value per seed, got {len(values)} values for {len(seeds)} seeds"
            )
        floats = tuple(float(v) for v in values)
        std = statistics.stdev(floats) if len(floats) > 1 else 0.0
        return cls(name, unit, statistics.fmean(floats), std, floats, tuple(int(s) for s in seeds))

    def text(self) -> str:
        """``mean ± std unit`` (or ``value unit``), four significant digits."""
        unit = f" {self.unit}" if self.unit else ""
        if self.std is None:
            return f"{self.mean:.4g}{unit}"
        return f"{self.mean:.4g} ± {self.std:.2g}{unit}"


@dataclass(frozen=True)
class Threshold:
    """``quantity op value``, judged on the quantity's mean; ``why`` says where the number comes
    from (the paper's margin, a law at this scale, a control arm)."""

    quantity: str
    op: str
    value: float
    why: str

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"threshold op must be one of {', '.join(_OPS)}, got {self.op!r}")

    def holds(self, measured: Measured) -> bool:
        if measured.name != self.quantity:
            raise ValueError(f"threshold on {self.quantity!r} judged on {measured.name!r}")
        return not math.isnan(measured.mean) and _OPS[self.op](measured.mean, self.value)

    def text(self) -> str:
        return f"{self.op} {self.value:.4g}"


def judge(measured: Sequence[Measured], thresholds: Sequence[Threshold]) -> tuple[str, str]:
    """(verdict, reason) from the thresholds (see the module docstring)."""
    if not thresholds:
        raise ValueError("a reproduction needs at least one threshold")
    by_name = {m.name: m for m in measured}
    failing = []
    for threshold in thresholds:
        if threshold.quantity not in by_name:
            raise ValueError(f"threshold on {threshold.quantity!r}, which is not measured")
        quantity = by_name[threshold.quantity]
        if not threshold.holds(quantity):
            failing.append(f"{quantity.name} = {quantity.text()} (needs {threshold.text()})")
    if not failing:
        return "reproduced", f"all {len(thresholds)} thresholds hold"
    verdict = "not reproduced" if len(failing) == len(thresholds) else "partial"
    return verdict, f"{len(failing)} of {len(thresholds)} thresholds fail: " + "; ".join(failing)


@dataclass(frozen=True)
class Result:
    """One reproduction (RESULT_SCHEMA.md). ``figures`` are relative to the result's folder."""

    id: str
    title: str
    scale: str
    claim: Claim
    measured: tuple[Measured, ...]
    thresholds: tuple[Threshold, ...]
    verdict: str
    reason: str
    figures: tuple[str, ...]
    wall_time_s: float
    run: dict[str, Any]
    schema: int = SCHEMA

    def quantity(self, name: str) -> Measured:
        """The measured row called ``name``."""
        for row in self.measured:
            if row.name == name:
                return row
        known = ", ".join(repr(m.name) for m in self.measured)
        raise KeyError(f"{self.id} measured no {name!r} (measured: {known})")

    def __getitem__(self, name: str) -> float:
        """The mean of the measured quantity ``name`` (``result["speed-up"]``)."""
        return self.quantity(name).mean

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))  # tuples -> lists, plain JSON types

    def write(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``folder/result.json`` atomically (the figures are already there)."""
        from dlskills._io import atomic_write_json

        target = prepare_folder(folder)
        missing = [f for f in self.figures if not (target / f).is_file()]
        if missing:
            raise FileNotFoundError(f"{self.id}: figure(s) {', '.join(missing)} not in {target}")
        return atomic_write_json(target / RESULT_FILE, self.to_dict())


def prepare_folder(folder: str | os.PathLike[str]) -> Path:
    """``folder`` created if needed; a file in the way or an unwritable place is a ValueError."""
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise ValueError(f"output folder {str(target)!r} is a file")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create output folder {str(target)!r}: {exc.strerror}") from exc
    if not os.access(target, os.W_OK | os.X_OK):
        raise ValueError(f"output folder {str(target)!r} is not writable")
    return target


def _require(data: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise ValueError(f"{where}: missing {key!r}")
    value = data[key]
    if not isinstance(value, kind):
        raise ValueError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def from_dict(data: Any, where: str = "result") -> Result:
    """A Result from its JSON form; anything malformed is a ValueError naming ``where``."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: a result must be a JSON object")
    schema = _require(data, "schema", int, where)
    if schema != SCHEMA:
        raise ValueError(f"{where}: schema {schema} is not supported (expected {SCHEMA})")
    number = (int, float)
    try:
        claim = _require(data, "claim", dict, where)
        measured = tuple(
            Measured(
                name=_require(row, "name", str, where),
                unit=_require(row, "unit", str, where),
                mean=float(_require(row, "mean", number, where)),
                std=None if row.get("std") is None else float(row["std"]),
                values=None if row.get("values") is None else tuple(map(float, row["values"])),
                seeds=None if row.get("seeds") is None else tuple(map(int, row["seeds"])),
            )
            for row in _require(data, "measured", list, where)
        )
        thresholds = tuple(
            Threshold(
                quantity=_require(row, "quantity", str, where),
                op=_require(row, "op", str, where),
                value=float(_require(row, "value", number, where)),
                why=_require(row, "why", str, where),
            )
            for row in _require(data, "thresholds", list, where)
        )
        verdict = _require(data, "verdict", str, where)
        if verdict not in VERDICTS:
            raise ValueError(f"{where}: unknown verdict {verdict!r}")
        scale = _require(data, "scale", str, where)
        if scale not in SCALES:
            raise ValueError(f"{where}: unknown scale {scale!r}")
        return Result(
            id=_require(data, "id", str, where),
            title=_require(data, "title", str, where),
            scale=scale,
            claim=Claim(
                text=_require(claim, "text", str, where),
                value=_require(claim, "value", str, where),
                source=_require(claim, "source", str, where),
            ),
            measured=measured,
            thresholds=thresholds,
            verdict=verdict,
            reason=_require(data, "reason", str, where),
            figures=tuple(_require(data, "figures", list, where)),
            wall_time_s=float(_require(data, "wall_time_s", number, where)),
            run=_require(data, "run", dict, where),
        )
    except (TypeError, ValueError) as exc:
        message = str(exc)
        raise ValueError(message if message.startswith(where) else f"{where}: {message}") from None


def load(path: str | os.PathLike[str]) -> Result:
    """The Result in ``path`` (a result.json, or a folder holding one)."""
    target = Path(path)
    if target.is_dir():
        target = target / RESULT_FILE
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"no result file {str(target)!r}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{target}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    return from_dict(data, str(target))


# --- the run record ---------------------------------------------------------------------------


def _package_root() -> Path:
    import dlskills

    return Path(dlskills.__file__).resolve().parent


@functools.cache
def code_hash() -> str:
    """sha256 over the package's sources (.py, .toml, .c; path and content, in path order)."""
    root = _package_root()
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".toml", ".c")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.cache
def git_commit() -> str | None:
    """The checkout's HEAD commit when dlskills runs from a git checkout, else None."""
    repository = _package_root().parents[1]
    if not (repository / ".git").exists():
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(repository), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def run_record(config: dict[str, Any], seeds: Sequence[int], started: datetime) -> dict[str, Any]:
    import torch

    import dlskills

    return {
        "dlskills": dlskills.__version__,
        "commit": git_commit(),
        "code_hash": code_hash(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "config": config,
        "seeds": list(seeds),
        "started": started.isoformat(timespec="seconds"),
    }


def resolve_seeds(seeds: int | Iterable[int] | None, default: Sequence[int]) -> tuple[int, ...]:
    """``None`` -> ``default``; an int N -> seeds 0..N-1; a sequence -> those seeds."""
    if seeds is None:
        return tuple(default)
    if isinstance(seeds, bool):
        raise TypeError("seeds must be an int or a sequence of ints")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be at least 1, got {seeds}")
        return tuple(range(seeds))
    chosen = tuple(seeds)
    if not chosen or not all(isinstance(s, int) and not isinstance(s, bool) for s in chosen):
        raise ValueError(f"seeds must be a positive count or a list of ints, got {seeds!r}")
    if any(s < 0 for s in chosen) or len(set(chosen)) != len(chosen):
        raise ValueError(f"seeds must be distinct non-negative ints, got {list(chosen)}")
    return chosen


@dataclass
class Run:
    """A reproduction in progress: validated scale/seeds/output folder, start time, figures.

    ``seeds`` maps each scale to its default seeds; ``out`` is where figures go (None: no
    figures are drawn, which is what the tests do)."""

    entry_id: str
    scale: str
    seeds: int | Iterable[int] | None
    out: str | os.PathLike[str] | None
    default_seeds: dict[str, Sequence[int]]
    figures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {self.scale!r}")
        self.seeds = resolve_seeds(self.seeds, self.default_seeds[self.scale])
        self.out = None if self.out is None else prepare_folder(self.out)
        self.started = datetime.now(UTC)
        self._clock = time.perf_counter()

    @property
    def fast(self) -> bool:
        return self.scale == "fast"

    def pick(self, fast: Any, full: Any) -> Any:
        """The setting for this scale."""
        return fast if self.fast else full

    def figure(self, name: str, draw: Callable[[Path], Any]) -> None:
        """``draw(path)`` writes the PNG ``name`` into ``out``; skipped when ``out`` is None."""
        if self.out is None:
            return
        draw(Path(self.out) / name)
        self.figures.append(name)

    def result(
        self,
        *,
        claim: Claim,
        measured: Sequence[Measured],
        thresholds: Sequence[Threshold],
        config: dict[str, Any],
        note: str = "",
    ) -> Result:
        """The Result, its verdict judged from ``thresholds``; ``note`` is added to the reason
        (what the numbers mean, e.g. why a claim does not reproduce at this scale)."""
        from dlskills import catalog

        verdict, reason = judge(measured, thresholds)
        if note:
            reason = f"{reason}. {note}"
        return Result(
            id=self.entry_id,
            title=catalog.get(self.entry_id).title,
            scale=self.scale,
            claim=claim,
            measured=tuple(measured),
            thresholds=tuple(thresholds),
            verdict=verdict,
            reason=reason,
            figures=tuple(self.figures),
            wall_time_s=round(time.perf_counter() - self._clock, 3),
            run=run_record({"scale": self.scale, **config}, list(self.seeds), self.started),
        )


__all__ = [
    "RESULT_FILE",
    "SCALES",
    "SCHEMA",
    "VERDICTS",
    "Claim",
    "Measured",
    "Result",
    "Run",
    "Threshold",
    "code_hash",
    "from_dict",
    "git_commit",
    "judge",
    "load",
    "prepare_folder",
    "resolve_seeds",
]
