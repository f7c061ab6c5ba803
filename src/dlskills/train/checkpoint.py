"""Checkpoints without pickle: ``<name>.safetensors`` (every tensor) + ``<name>.json`` (the rest).

The JSON file is the record: format tag and version, the sha256 of the safetensors file, and any
nested state (optimizer ``param_groups``, scheduler state, callback state, RNG states, trainer
position, run config). Tensors found inside nested state are moved to the safetensors side and
left in the JSON as ``{"__tensor__": key}`` references, so ``optimizer.state_dict()`` and similar
round-trip exactly. Python types JSON lacks are tagged: tuples as ``{"__tuple__": [...]}`` and
dicts with non-string keys (optimizer state is keyed by int) as ``{"__items__": [[k, v], ...]}``.

Both files are written atomically (dlskills._io), tensors first; the tensor file being replaced
is kept as ``<name>.prev.safetensors`` until the new JSON is in place (then removed), so a crash
at any moment of a save leaves a loadable pair (the old JSON still finds the tensors its sha256
names). Loading reads the JSON, checks the format, verifies the sha256, loads tensors with
safetensors (never pickle) and checks that every referenced tensor exists; any failure raises
``CheckpointError`` with the file and the cause.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from dlskills._io import atomic_link, atomic_write_bytes, atomic_write_text

FORMAT = "dlskills-checkpoint"
VERSION = 1
_TAGS = ("__tensor__", "__tuple__", "__items__")


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, tampered with or does not match what loads it."""


def checkpoint_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(json, safetensors) paths for ``path`` given as ``<name>``, ``<name>.json`` or
    ``<name>.safetensors``."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".json", ".safetensors") else path
    return stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".safetensors")


def encode(value: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """``value`` as JSON-able data; tensors are added to ``tensors`` under keys from ``prefix``."""
    if isinstance(value, torch.Tensor):
        # clone: safetensors refuses tensors that share storage (tied weights, views)
        tensors[prefix] = value.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": prefix}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, f"{prefix}.{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode(v, f"{prefix}.{i}", tensors) for i, v in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and not any(t in value for t in _TAGS):
            return {k: encode(v, f"{prefix}.{k}", tensors) for k, v in value.items()}
        return {"__items__": [[k, encode(v, f"{prefix}.{k}", tensors)] for k, v in value.items()]}
    raise TypeError(
        f"cannot checkpoint {prefix!r}: {type(value).__name__} is neither a tensor nor JSON data"
    )


def decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of ``encode``."""
    if isinstance(value, list):
        return [decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        key = value["__tensor__"]
        if key not in tensors:
            raise CheckpointError(f"tensor {key!r} is referenced but missing from the tensor file")
        return tensors[key]
    if "__tuple__" in value:
        return tuple(decode(v, tensors) for v in value["__tuple__"])
    if "__items__" in value:
        return {k: decode(v, tensors) for k, v in value["__items__"]}
    return {k: decode(v, tensors) for k, v in value.items()}


def save_checkpoint(
    path: str | os.PathLike[str],
    state: dict[str, Any],
    tensors: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``state`` (nested data with tensors anywhere) and the flat ``tensors`` mapping as a
    checkpoint pair; returns the JSON path."""
    flat = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in (tensors or {}).items()}
    encoded = encode(state, "state", flat)
    blob = save_safetensors(flat)
    digest = hashlib.sha256(blob).hexdigest()
    return _write_pair(path, digest, encoded, lambda target: atomic_write_bytes(target, blob))


def copy_checkpoint(source: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Give the checkpoint pair at ``source`` a second name ``path`` (``best`` from ``last``)
    without serialising it again: the tensor file is hard-linked (copied where the file system
    has no hard links) and the small JSON record rewritten to name it. Saves always write new
    files, so a later save of ``source`` leaves the copy intact. Returns the JSON path."""
    source_json, _ = checkpoint_paths(source)
    record = json.loads(source_json.read_text(encoding="utf-8"))
    tensor_file = source_json.with_name(record["tensor_file"])
    return _write_pair(
        path, record["sha256"], record["state"], lambda target: atomic_link(tensor_file, target)
    )


def _write_pair(
    path: str | os.PathLike[str],
    digest: str,
    encoded_state: Any,
    write_tensors: Callable[[Path], Any],
) -> Path:
    json_path, tensor_path = checkpoint_paths(path)
    record = {
        "format": FORMAT,
        "version": VERSION,
        "tensor_file": tensor_path.name,
        "sha256": digest,
        "state": encoded_state,
    }
    # keep the tensors the current JSON describes until the new JSON is in place
    if tensor_path.exists():
        os.replace(tensor_path, _previous(tensor_path))
    write_tensors(tensor_path)
    atomic_write_text(json_path, json.dumps(record, separators=(",", ":")) + "\n")
    _previous(tensor_path).unlink(missing_ok=True)
    return json_path


def _previous(tensor_path: Path) -> Path:
    return tensor_path.with_name(tensor_path.stem + ".prev.safetensors")


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a checkpoint pair: (state with tensors restored in place, the flat tensors)."""
    json_path, tensor_path = checkpoint_paths(path)
    if not json_path.is_file():
        raise CheckpointError(f"checkpoint {json_path} not found")
    try:
        record = json.loads(json_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(
            f"checkpoint {json_path} is not valid JSON (truncated?): {exc}"
        ) from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"{json_path} is not a dlskills checkpoint")
    if record.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {json_path} has format version {record.get('version')!r}; "
            f"this dlskills reads version {VERSION}"
        )
    missing = [k for k in ("tensor_file", "sha256", "state") if k not in record]
    if missing:
        raise CheckpointError(f"checkpoint {json_path} lacks {', '.join(missing)}")
    tensor_path = json_path.with_name(record["tensor_file"])
    blob, digest = _read_with_digest(tensor_path)
    if digest != record["sha256"]:
        # a save interrupted between its two renames: the JSON still describes the previous tensors
        previous, previous_digest = _read_with_digest(_previous(tensor_path))
        if previous_digest != record["sha256"]:
            if blob is None:
                raise CheckpointError(f"checkpoint tensor file {tensor_path} not found")
            raise CheckpointError(
                f"checkpoint {tensor_path} does not match the sha256 in {json_path.name} "
                f"(file changed or truncated): expected {record['sha256'][:16]}…, "
                f"got {digest[:16]}…"
            )
        blob = previous
    try:
        flat = load_safetensors(blob)
    except (SafetensorError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {tensor_path} is not a valid safetensors file: {exc}"
        ) from exc
    return decode(record["state"], flat), flat


def _read_with_digest(path: Path) -> tuple[bytes | None, str | None]:
    if not path.is_file():
        return None, None
    blob = path.read_bytes()
    return blob, hashlib.sha256(blob).hexdigest()
