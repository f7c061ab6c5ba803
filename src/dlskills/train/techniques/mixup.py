"""Mixup for classification and its geometry-preserving detection variant (catalog 1902.04103,
Zhang et al. 2019, "Bag of Freebies for Training Object Detection Neural Networks", §3.1;
classification mixup from Zhang et al. 2017, "mixup: Beyond Empirical Risk Minimization").

Classification: draw λ ~ Beta(α, α) once per batch and a random permutation π of the batch, then

    x̃_i = λ·x_i + (1 − λ)·x_π(i)        ỹ_i = λ·onehot(y_i) + (1 − λ)·onehot(y_π(i))

and train on the cross-entropy against ỹ (``soft_cross_entropy``).

Detection (the paper's "visually coherent" mixup): images of different sizes are overlaid on a
canvas of size (max H, max W) anchored at the top-left corner, with pixel weights λ and 1 − λ, so
no image is resized or moved and every box keeps its coordinates:

    canvas[:, :H_a, :W_a] += λ·image_a      canvas[:, :H_b, :W_b] += (1 − λ)·image_b

ALL boxes of both images are kept; box j gets the weight of its image (λ or 1 − λ), by which its
loss is multiplied. The paper draws λ ~ Beta(1.5, 1.5); here λ is an argument.

Deviations: the Trainer calls ``loss_fn(outputs, targets)`` with the loader's integer targets,
so the ``Mixup`` callback (i) hands the mixed inputs to the step by replacing ``trainer.batch``
(the loader's tensors are never written) and (ii) supplies the loss through ``Mixup.loss_fn``,
which uses the mixed soft targets when called with that batch's targets and the plain
(optionally label-smoothed) cross-entropy otherwise (evaluation). λ is drawn with NumPy from a
seed taken from the torch ``generator`` because torch's Beta sampler accepts no generator.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from dlskills.train.callbacks._registry import register_callback
from dlskills.train.callbacks.base import Callback
from dlskills.train.techniques.label_smoothing import smooth_targets, soft_cross_entropy


class MixedBatch(NamedTuple):
    inputs: torch.Tensor
    targets: torch.Tensor  # (N, num_classes) distributions
    lam: float
    permutation: torch.Tensor


def _check_alpha(alpha: float) -> float:
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    return float(alpha)


def sample_lambda(alpha: float, generator: torch.Generator) -> float:
    """λ ~ Beta(alpha, alpha), reproducible from ``generator``."""
    seed = int(torch.randint(0, 2**63 - 1, (), generator=generator))
    return float(np.random.default_rng(seed).beta(_check_alpha(alpha), alpha))


def mixup_batch(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    *,
    num_classes: int,
    generator: torch.Generator,
) -> MixedBatch:
    """Mix the batch ``(x, y)`` with itself under a random permutation (rule in the module
    docstring). ``y`` holds class indices (N,) or distributions (N, num_classes)."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same batch size, got {len(x)} and {len(y)}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    lam = sample_lambda(alpha, generator)
    permutation = torch.randperm(x.shape[0], generator=generator).to(x.device)
    distributions = smooth_targets(y, num_classes, 0.0).to(x.dtype)
    mixed_x = torch.lerp(x[permutation], x, lam)
    mixed_y = torch.lerp(distributions[permutation], distributions, lam)
    return MixedBatch(mixed_x, mixed_y, lam, permutation)


def mixup_detection(
    image_a: torch.Tensor,
    boxes_a: torch.Tensor,
    image_b: torch.Tensor,
    boxes_b: torch.Tensor,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Geometry-preserving detection mixup of two (C, H, W) images with their boxes (N, ≥4 rows
    in pixel coordinates, extra columns such as class ids carried along). Returns ``(canvas of
    shape (C, max H, max W), all boxes (N_a + N_b rows, a's first), per-box loss weights)``."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    for name, image in (("image_a", image_a), ("image_b", image_b)):
        if image.ndim != 3:
            raise ValueError(f"{name} must have shape (C, H, W), got {tuple(image.shape)}")
    if image_a.shape[0] != image_b.shape[0]:
        raise ValueError(f"images differ in channels: {image_a.shape[0]} vs {image_b.shape[0]}")
    for name, boxes in (("boxes_a", boxes_a), ("boxes_b", boxes_b)):
        if boxes.ndim != 2 or boxes.shape[1] < 4:
            raise ValueError(f"{name} must have shape (N, ≥4), got {tuple(boxes.shape)}")
    if boxes_a.shape[1] != boxes_b.shape[1]:
        raise ValueError(f"boxes differ in columns: {boxes_a.shape[1]} vs {boxes_b.shape[1]}")
    (_, height_a, width_a), (_, height_b, width_b) = image_a.shape, image_b.shape
    dtype = torch.promote_types(image_a.dtype, torch.float32)
    canvas = image_a.new_zeros(
        (image_a.shape[0], max(height_a, height_b), max(width_a, width_b)), dtype=dtype
    )
    canvas[:, :height_a, :width_a] += lam * image_a
    canvas[:, :height_b, :width_b] += (1.0 - lam) * image_b
    boxes = torch.cat([boxes_a, boxes_b.to(boxes_a.dtype)])
    weights = torch.cat(
        [
            torch.full((boxes_a.shape[0],), lam, dtype=dtype, device=boxes_a.device),
            torch.full((boxes_b.shape[0],), 1.0 - lam, dtype=dtype, device=boxes_a.device),
        ]
    )
    return canvas, boxes, weights


@register_callback("mixup", catalog_id="1902.04103")
class Mixup(Callback):
    """Mix every training batch in ``on_batch_start``; pass ``mixup.loss_fn`` as the Trainer's
    ``loss_fn`` (see the module docstring for why). ``label_smoothing`` ε smooths the targets of
    both the mixed and the plain loss. The generator's state is checkpointed for exact resume."""

    def __init__(
        self, alpha: float, *, num_classes: int, seed: int = 0, label_smoothing: float = 0.0
    ) -> None:
        self.alpha = _check_alpha(alpha)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int ≥ 2, got {num_classes!r}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.num_classes = num_classes
        self.label_smoothing = float(label_smoothing)
        self.generator = torch.Generator().manual_seed(seed)
        self.last: MixedBatch | None = None
        self._targets_of_last: torch.Tensor | None = None

    def on_batch_start(self, trainer: Any) -> None:
        inputs, targets = trainer.batch
        self.last = mixup_batch(
            inputs, targets, self.alpha, num_classes=self.num_classes, generator=self.generator
        )
        # a new batch, not a write into the loader's tensors (which may be the dataset's own)
        trainer.batch = (self.last.inputs, targets)
        self._targets_of_last = targets

    def loss_fn(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.last is not None and targets is self._targets_of_last:
            soft = smooth_targets(self.last.targets, self.num_classes, self.label_smoothing)
            return soft_cross_entropy(outputs, soft)
        return F.cross_entropy(outputs, targets, label_smoothing=self.label_smoothing)

    def tensor_state(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state()}

    def load_tensor_state(self, tensors: dict[str, torch.Tensor]) -> None:
        if "generator" in tensors:
            self.generator.set_state(tensors["generator"])
