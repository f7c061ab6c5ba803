"""Folders that ship with the source repository, not the wheel (benchmarks/, tests/)."""

from __future__ import annotations

import os
from pathlib import Path


def checkout_folder(name: str, explicit: str | None = None, env: str | None = None) -> Path:
    """The repository folder ``name``: ``explicit``, then ``$env``, then next to the source
    checkout of dlskills, then under the current folder."""
    import dlskills

    candidates = [explicit, os.environ.get(env) if env else None]
    candidates += [Path(dlskills.__file__).resolve().parents[2] / name, Path(name)]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise FileNotFoundError(
        f"no {name}/ folder found: it ships with the source repository, not the wheel; "
        "run from a checkout or pass --dir"
    )
