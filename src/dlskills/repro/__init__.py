"""Reproductions: one function per checked reading-list entry, returning a :class:`Result`.

Each lives in its own module under ``dlskills.repro`` (named by technique) and registers itself
under its catalog id::

    @register("1812.05994")
    def repro(scale="fast", seeds=None, out=None) -> Result: ...

``scale`` is ``"fast"`` (what the tests and CI run: seconds) or ``"full"`` (closer to the paper:
minutes on 2 cores); ``seeds`` an int N (seeds 0..N-1) or a list of seeds (None: the entry's
defaults for the scale); ``out`` the folder for figures (None: no figures). ``run(id, ...)``
also writes ``out/result.json``.

``register(id, fast=...)`` declares the verdict the entry's fast scale gives; the entry's test
calls the repro at fast scale and asserts that verdict (and the key numbers), and the catalog's
status follows from it (``catalog.validate``): ``verified`` exactly when the declared fast
verdict is ``"reproduced"``, ``implemented`` otherwise. A claim that does not reproduce at fast
scale is declared so, with its numbers in the Result: honest results over green ticks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from dlskills._registry import Registry
from dlskills.repro.result import (
    RESULT_FILE,
    SCALES,
    VERDICTS,
    Claim,
    Measured,
    Result,
    Run,
    Threshold,
    judge,
    load,
    prepare_folder,
    resolve_seeds,
)

REPROS = Registry("reproduction", discover="dlskills.repro")

ReproFunction = Callable[..., Result]


def register(
    catalog_id: str, *, fast: str = "reproduced"
) -> Callable[[ReproFunction], ReproFunction]:
    """Register ``fn(scale="fast", seeds=None, out=None) -> Result`` under ``catalog_id``;
    ``fast`` is the verdict its fast scale gives (asserted by its test)."""
    if fast not in VERDICTS:
        raise ValueError(f"fast verdict must be one of {', '.join(VERDICTS)}, got {fast!r}")

    def decorator(fn: ReproFunction) -> ReproFunction:
        REPROS.add(catalog_id, fn, catalog_id=catalog_id, fast_verdict=fast)
        return fn

    return decorator


def ids() -> list[str]:
    """Registered catalog ids, in reading-list order."""
    from dlskills import catalog

    registered = set(REPROS.names())
    return [entry.id for entry in catalog.load() if entry.id in registered]


def is_registered(catalog_id: str) -> bool:
    return catalog_id in REPROS


def fast_verdict(catalog_id: str) -> str:
    """The verdict the entry's fast scale is declared (and tested) to give."""
    return REPROS.entry(catalog_id).meta["fast_verdict"]


def get(catalog_id: str) -> ReproFunction:
    """The repro function of ``catalog_id``. An unknown id is a ValueError suggesting the
    nearest ids; a known entry without a reproduction says so."""
    from dlskills import catalog

    entry = catalog.get(catalog_id)  # unknown ids: ValueError with suggestions
    if entry.id not in REPROS:
        where = f"; its check is {entry.check}" if entry.check.startswith("tests/") else ""
        raise ValueError(
            f"{entry.id} ({entry.title}) has no registered reproduction "
            f"(status: {entry.status}{where}); `dlskills repro --list` lists those that do"
        )
    return REPROS.get(entry.id)


def run(
    catalog_id: str,
    scale: str = "fast",
    seeds: int | Iterable[int] | None = None,
    out: str | os.PathLike[str] | None = None,
) -> Result:
    """Run the reproduction of ``catalog_id``; with ``out``, also write ``out/result.json``
    (atomically, after the figures: an interrupted run leaves no result.json behind)."""
    repro = get(catalog_id)
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    resolve_seeds(seeds, default=(0,))
    if out is not None:
        # a folder never pairs an old result.json with the figures of a new run
        (prepare_folder(out) / RESULT_FILE).unlink(missing_ok=True)
    result = repro(scale=scale, seeds=seeds, out=out)
    if out is not None:
        result.write(out)
    return result


__all__ = [
    "REPROS",
    "SCALES",
    "VERDICTS",
    "Claim",
    "Measured",
    "Result",
    "Run",
    "Threshold",
    "fast_verdict",
    "get",
    "ids",
    "is_registered",
    "judge",
    "load",
    "register",
    "run",
]
