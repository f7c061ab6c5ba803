"""Shared test set-up: headless plots, one torch thread per xdist worker, seeded RNGs."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest


def pytest_configure(config):
    import torch

    if os.environ.get("PYTEST_XDIST_WORKER"):
        # two workers on two cores: oversubscribing threads makes every test slower
        torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_everything():
    import random

    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield
