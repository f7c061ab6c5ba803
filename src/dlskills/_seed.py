"""Seeding and random-state capture, so every run takes a seed and a resumed run replays it.

``seed_everything(seed)`` seeds Python's ``random``, NumPy's global generator and torch's global
generator. ``capture_rng()``/``restore_rng()`` save and restore all three as plain data: Python's
and NumPy's states as JSON-able lists, torch's as a uint8 tensor (it goes to safetensors).
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
    """The global random states: (JSON-able part, tensor part)."""
    version, internal, gauss_next = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    plain = {
        "python": [version, list(internal), gauss_next],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda{index}"] = state
    return plain, tensors


def restore_rng(plain: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Inverse of ``capture_rng``."""
    version, internal, gauss_next = plain["python"]
    random.setstate((version, tuple(internal), gauss_next))
    kind, keys, pos, has_gauss, cached = plain["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["torch"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("cuda")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)
