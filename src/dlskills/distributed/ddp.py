"""Data-parallel training with torch's DistributedDataParallel (catalog dist-survey-2018:
"synchronous data parallelism with all-reduce"; Li et al., "PyTorch Distributed", VLDB 2020).

Every rank holds a replica of the model and takes B/N examples of each global batch of B
(``DistributedSampler``, seeded, ``set_epoch`` every epoch). In the backward pass DDP
all-reduces the gradients in buckets while the rest of the backward runs, and divides by N:

    g = (1/N) Σ_r ∇L_r(θ),   L_r the mean loss over rank r's B/N examples,

which is the gradient of the mean loss over the global batch when the shards have equal sizes,
so N ranks take the optimizer steps one process takes on the global batches (tested to 1e-6 in
float64). Replicas stay identical, so a checkpoint stores one copy of the model plus every
rank's random state.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from torch.nn.parallel import DistributedDataParallel

from dlskills.distributed._base import DistributedStrategy, register_strategy

if TYPE_CHECKING:
    from dlskills.train.trainer import Trainer


@register_strategy("ddp", catalog_id="dist-survey-2018")
class DDP(DistributedStrategy):
    """DistributedDataParallel over the ranks of torchrun's group (gloo on CPU, nccl on GPU).
    ``bucket_cap_mb`` and ``find_unused_parameters`` go to DDP."""

    name = "ddp"

    def __init__(
        self, *, bucket_cap_mb: float = 25.0, find_unused_parameters: bool = False, **base: Any
    ) -> None:
        super().__init__(**base)
        if not bucket_cap_mb > 0:
            raise ValueError(f"bucket_cap_mb must be > 0, got {bucket_cap_mb!r}")
        self.bucket_cap_mb = bucket_cap_mb
        self.find_unused_parameters = bool(find_unused_parameters)

    def setup(self, trainer: Trainer) -> None:
        super().setup(trainer)
        if self.world_size > 1 and not isinstance(trainer.model, DistributedDataParallel):
            device_ids = [trainer.device] if trainer.device.type == "cuda" else None
            trainer.model = DistributedDataParallel(
                trainer.model,
                device_ids=device_ids,
                bucket_cap_mb=self.bucket_cap_mb,
                find_unused_parameters=self.find_unused_parameters,
            )

    def no_sync(self, trainer: Trainer) -> contextlib.AbstractContextManager[Any]:
        model = trainer.model
        if isinstance(model, DistributedDataParallel):
            return model.no_sync()
        return contextlib.nullcontext()

    def options(self) -> dict[str, Any]:
        return {"bucket_cap_mb": self.bucket_cap_mb}
