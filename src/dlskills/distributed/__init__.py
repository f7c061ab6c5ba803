"""Training on several processes with torch.distributed (reading list §4.4: dist-survey-2018,
distbelief-2012, 1412.6651, 1706.02677, 1912.09789).

Each strategy is a ``dlskills.train.strategy.Strategy`` in its own file, registered by name:

    ddp        DistributedDataParallel + DistributedSampler (``ddp.py``)
    local-sgd  model averaging every H steps, post-local SGD after a warm-up (``local_sgd.py``)
    easgd      elastic averaging, synchronous or asynchronous, centre on rank 0 (``easgd.py``)
    downpour   asynchronous SGD against a parameter server on rank 0 (``downpour.py``)

``create(name, **options)`` builds one; ``Trainer(..., strategy=create("ddp"))`` uses it. The
process group comes from torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT):
``dlskills train --nproc N`` starts N local workers through torch's elastic launcher
(``launch.py``), and ``torchrun --nproc-per-node N -m dlskills train ...`` runs the same job.
A group the caller created before (``init_process_group``) is used and left alive; a caller that
wraps a model in DistributedDataParallel itself frees it with ``release_data_parallel`` before
``destroy_process_group`` (docs/distributed.md, "Your own process group").
"""

from __future__ import annotations

from typing import Any

from dlskills.distributed._base import (
    STRATEGIES,
    DistributedStrategy,
    register_strategy,
    release_data_parallel,
)

__all__ = [
    "STRATEGIES",
    "DistributedStrategy",
    "create",
    "register_strategy",
    "release_data_parallel",
]


def create(name: str, **options: Any) -> DistributedStrategy:
    """The strategy registered as ``name`` with its options (``sync_every`` etc.)."""
    return STRATEGIES.create(name, **options)
