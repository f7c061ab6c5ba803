"""Selective softmax over a dynamically chosen class subset (catalog 1801.01687; Zhang, Yang, Yan &
Lin, "Accelerated Training for Massive Classification via Dynamic Class Selection", AAAI 2018).

With C classes the output layer costs O(B·D·C) per minibatch forward and backward, which
dominates when C is huge. Most classes are irrelevant to a given minibatch: their softmax
probabilities are negligible, and so are their gradients. The paper trains on the softmax over a
small *active set* per minibatch — the true classes plus the classes most likely to be confused
with them, found by a search structure over the classifier's weight vectors that is rebuilt as
the weights move. For a minibatch with features f_i and labels y_i:

    A = {y_i} ∪ {classes retrieved for the f_i},        |A| ≪ C
    loss = −(1/B) Σ_i log( exp(w_{y_i}·f_i + b_{y_i}) / Σ_{c ∈ A} exp(w_c·f_i + b_c) )

which equals the full cross-entropy when A holds every class, and only the rows of A receive
gradients. Evaluation uses the full softmax.

The retrieval structure here: every ``refresh_every`` training steps the normalised weight rows
are clustered by k-means (``clusters`` centroids, a few Lloyd iterations from the previous
centroids); a minibatch's clusters are ranked by their best score max_i ⟨centroid, f_i⟩ and
whole clusters are taken in that order until ``active_classes`` classes are gathered, then the
true classes are added. Deviation: the paper retrieves per sample with a hashing forest (random
projection trees) over the weights; the clustering is a simpler stand-in with the same role —
a class hierarchy of the weights, rebuilt as training moves them — and the same cost profile
(O(B·K·D + B·D·|A|) per step instead of O(B·D·C)).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlskills.nn._registry import register_layer


@register_layer(
    "selective_softmax",
    catalog_id="1801.01687",
    example=(dict(in_features=6, num_classes=40, active_classes=8), (6,)),
)
class SelectiveSoftmax(nn.Module):
    """A linear classifier (``weight`` C×D, ``bias`` C) whose ``loss`` is the softmax
    cross-entropy over an active subset of classes; ``forward`` gives all C logits.

    Args:
        in_features: D.
        num_classes: C.
        active_classes: the class budget per minibatch (the true classes come on top).
        clusters: k-means centroids of the class hierarchy (default ≈ √C).
        refresh_every: training steps between two rebuilds of the hierarchy.
        kmeans_iterations: Lloyd iterations per rebuild.
        seed: the first centroids' draw.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        active_classes: int = 1024,
        clusters: int | None = None,
        refresh_every: int = 50,
        kmeans_iterations: int = 3,
        seed: int = 0,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_features", in_features),
            ("num_classes", num_classes),
            ("active_classes", active_classes),
            ("refresh_every", refresh_every),
            ("kmeans_iterations", kmeans_iterations),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        count = clusters if clusters is not None else max(1, round(math.sqrt(num_classes)))
        if not 1 <= count <= num_classes:
            raise ValueError(f"clusters must be in 1..{num_classes}, got {count}")
        self.in_features, self.num_classes = in_features, num_classes
        self.active_classes, self.refresh_every = active_classes, refresh_every
        self.kmeans_iterations = kmeans_iterations
        self.linear = nn.Linear(in_features, num_classes)
        self.register_buffer("centroids", torch.empty(count, in_features))
        self.register_buffer("assignment", torch.zeros(num_classes, dtype=torch.long))
        self.register_buffer("steps_since_refresh", torch.tensor(-1))  # −1: never built
        self._seed = seed

    def forward(self, features: Tensor) -> Tensor:
        return self.linear(features)

    @torch.no_grad()
    def refresh(self) -> None:
        """Rebuild the class hierarchy: k-means of the normalised weight rows."""
        rows = F.normalize(self.linear.weight.detach(), dim=1)
        if int(self.steps_since_refresh) < 0:  # first build: centroids from random rows
            pick = torch.randperm(
                self.num_classes, generator=torch.Generator().manual_seed(self._seed)
            )
            self.centroids.copy_(rows[pick[: len(self.centroids)]])
        for _ in range(self.kmeans_iterations):
            self.assignment.copy_((rows @ self.centroids.T).argmax(dim=1))
            sums = torch.zeros_like(self.centroids).index_add_(0, self.assignment, rows)
            sizes = torch.bincount(self.assignment, minlength=len(self.centroids))
            filled = sizes > 0  # an empty cluster keeps its centroid
            self.centroids[filled] = F.normalize(sums[filled], dim=1)
        self.assignment.copy_((rows @ self.centroids.T).argmax(dim=1))
        self.steps_since_refresh.fill_(0)

    @torch.no_grad()
    def active_set(self, features: Tensor, targets: Tensor) -> Tensor:
        """The sorted active classes of a minibatch (see the module docstring)."""
        if self.active_classes >= self.num_classes:
            return torch.arange(self.num_classes, device=features.device)
        scores = (features @ self.centroids.T).max(dim=0).values  # best sample per cluster
        sizes = torch.bincount(self.assignment, minlength=len(self.centroids))
        order = scores.argsort(descending=True)
        taken = int((sizes[order].cumsum(0) < self.active_classes).sum()) + 1
        chosen = torch.zeros(len(self.centroids), dtype=torch.bool, device=features.device)
        chosen[order[:taken]] = True
        members = chosen[self.assignment]
        members[targets] = True
        return members.nonzero().squeeze(1)

    def loss(self, features: Tensor, targets: Tensor) -> Tensor:
        """The selective softmax cross-entropy (mean over the minibatch); in training mode it
        counts the step and rebuilds the hierarchy every ``refresh_every`` steps."""
        if self.training:
            if (
                int(self.steps_since_refresh) < 0
                or int(self.steps_since_refresh) >= self.refresh_every
            ):
                self.refresh()
            self.steps_since_refresh += 1
        elif int(self.steps_since_refresh) < 0:
            self.refresh()
        active = self.active_set(features, targets)
        logits = F.linear(features, self.linear.weight[active], self.linear.bias[active])
        position = torch.full((self.num_classes,), -1, dtype=torch.long, device=features.device)
        position[active] = torch.arange(len(active), device=features.device)
        return F.cross_entropy(logits, position[targets])

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, num_classes={self.num_classes}, "
            f"active_classes={self.active_classes}, clusters={len(self.centroids)}, "
            f"refresh_every={self.refresh_every}"
        )


@dataclass
class SelectiveArm:
    """One arm of the check: its class budget (C: the full softmax), the held-out accuracy, the
    median wall time of a training step (loss, backward, SGD step) and the mean size of the
    active set."""

    active_classes: int
    accuracy: float
    step_ms: float
    mean_active: float


def selective_softmax_check(
    *,
    num_classes: int = 10_000,
    active: Sequence[int] = (2048, 512),
    features: int = 64,
    per_class: int = 6,
    noise: float = 1.3,
    steps: int = 1500,
    batch_size: int = 256,
    lr: float = 0.5,
    seed: int = 0,
) -> list[SelectiveArm]:
    """A many-class synthetic task: class c has a prototype μ_c ~ N(0, I_D); training samples
    are μ_c + ``noise``·N(0, I) (``per_class`` each), held-out samples one more per class. A
    linear classifier is trained with the full softmax and with each class budget in
    ``active``, by SGD (momentum 0.9) on the same minibatches, the arms stepping in turn so
    that machine-load drift hits all alike; the full softmax is the first arm."""
    draw = torch.Generator().manual_seed(seed)
    prototypes = torch.randn(num_classes, features, generator=draw)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    inputs = prototypes[labels] + noise * torch.randn(len(labels), features, generator=draw)
    held_out = prototypes + noise * torch.randn(num_classes, features, generator=draw)
    budgets = [num_classes, *active]
    heads, optimizers = [], []
    for budget in budgets:
        torch.manual_seed(seed)
        head = SelectiveSoftmax(features, num_classes, active_classes=budget, seed=seed)
        heads.append(head)
        optimizers.append(torch.optim.SGD(head.parameters(), lr=lr, momentum=0.9))
    times: list[list[float]] = [[] for _ in budgets]
    sizes = [0] * len(budgets)
    batches = torch.Generator().manual_seed(seed + 1)
    for step in range(steps):
        index = torch.randint(0, len(inputs), (batch_size,), generator=batches)
        x, y = inputs[index], labels[index]
        for arm in range(len(budgets)):
            arm = (arm + step) % len(budgets)  # rotate who goes first
            started = time.perf_counter()
            loss = heads[arm].loss(x, y)
            optimizers[arm].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[arm].step()
            times[arm].append(time.perf_counter() - started)
            sizes[arm] += len(heads[arm].active_set(x, y))
    arms = []
    targets = torch.arange(num_classes)
    for budget, head, elapsed, size in zip(budgets, heads, times, sizes):
        head.eval()
        with torch.no_grad():
            accuracy = float((head(held_out).argmax(dim=1) == targets).float().mean())
        step_ms = 1e3 * float(torch.tensor(elapsed).median())
        arms.append(SelectiveArm(budget, accuracy, step_ms, size / steps))
    return arms


__all__ = ["SelectiveArm", "SelectiveSoftmax", "selective_softmax_check"]
