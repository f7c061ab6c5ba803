"""Seeding and random-state capture, so every run takes a seed and a resumed run replays it.

``seed_everything(seed)`` seeds Python's ``random``, NumPy's global generator and torch's global
generator. ``capture_rng()``/``restore_rng()`` save and restore all three: small JSON-able
parts and tensors (torch's uint8 state, the Mersenne-Twister words of Python and NumPy as int64)
that go to safetensors.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and, when present, CUDA) global generators."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def capture_rng() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The global random states: (JSON-able part, tensor part). The Mersenne-Twister words of
    Python and NumPy (625 each) travel as int64 tensors, so a checkpoint's JSON stays small."""
    version, internal, gauss_next = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    plain = {
        "python": [version, gauss_next],
        "numpy": [kind, int(pos), int(has_gauss), float(cached)],
    }
    tensors = {
        "torch": torch.get_rng_state(),
        "python": torch.tensor(internal, dtype=torch.int64),
        "numpy": torch.from_numpy(keys.astype(np.int64)),
    }
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda{index}"] = state
    return plain, tensors


def restore_rng(plain: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Inverse of ``capture_rng`` (also reads the states of checkpoints written before the
    Mersenne-Twister words moved to tensors: JSON lists inside ``plain``)."""
    if "python" in tensors:
        (version, gauss_next), internal = plain["python"], tensors["python"].tolist()
        kind, pos, has_gauss, cached = plain["numpy"]
        keys = tensors["numpy"].numpy()
    else:
        version, internal, gauss_next = plain["python"]
        kind, keys, pos, has_gauss, cached = plain["numpy"]
    random.setstate((version, tuple(internal), gauss_next))
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["torch"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("cuda")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)
