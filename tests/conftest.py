"""Shared test set-up: headless plots, one torch thread per xdist worker, seeded RNGs."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest


def pytest_configure(config):
    import torch

    threads = torch.get_num_threads()
    # torch 2.13 (CPU): the first multi-threaded sqrt of a process is sometimes inexact on the
    # worker thread's half of the tensor (≈ 3e-4 relative; seen in about one process in three,
    # never after the first call). Tests that compare two computations would compare that
    # glitch, not the maths: take the first call here, on two threads.
    torch.set_num_threads(2)
    torch.ones(1 << 16).sqrt()
    torch.set_num_threads(threads)
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


@pytest.fixture
def saved_figures(monkeypatch):
    """The figures ``dlskills._plot.save_figure`` writes during the test (figure_checks)."""
    from figure_checks import record_figures

    return record_figures(monkeypatch)
