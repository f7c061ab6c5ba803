"""Sequential (layer-wise) training, then fusion (catalog 1905.07490, "Sequential training
algorithm for neural networks", 2019).

Instead of backpropagating through the whole network, the blocks of a feed-forward network are
trained one after another. Block k is trained together with an auxiliary classifier head h_k on
the outputs of the blocks before it, which are frozen and run without building a graph:

    stage k:   min over (θ_k, h_k) of  L( h_k(B_k(z_{k−1})) , y ),     z_{k−1} = B_{k−1}∘…∘B_1(x)

so a step stores the activations of one block and updates one block's parameters. After the
last stage the trained blocks and the last head are fused into one network,
B_1 → … → B_K → h_K (``fused``), optionally followed by ``fusion_epochs`` of end-to-end
training of the fused network. ``layerwise_check`` compares it with end-to-end training of the
same network for the same number of epochs per parameter: the paper reports the sequential
result below end-to-end, for far less memory and compute per step.

Deviation: the paper's blocks and heads are not specified beyond "each layer trained
separately, then combined"; here a block is a (Linear, activation) pair of an MLP and a head is
a linear classifier on its output, the usual greedy layer-wise scheme.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def train_layerwise(
    blocks: Sequence[nn.Module],
    heads: Sequence[nn.Module],
    batches: Callable[[], Iterable[tuple[Tensor, Tensor]]],
    *,
    epochs: int,
    make_optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer],
    loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
    fusion_epochs: int = 0,
) -> nn.Sequential:
    """Train ``blocks[k]`` with ``heads[k]`` stage by stage (``epochs`` passes over
    ``batches()`` each), then return the fused network blocks → heads[-1], trained end to end
    for ``fusion_epochs`` more passes if asked. ``make_optimizer`` builds an optimizer for a
    list of parameters (one per stage, and one for the fusion)."""
    if len(blocks) != len(heads) or not blocks:
        raise ValueError(f"one head per block: got {len(heads)} heads for {len(blocks)} blocks")
    if epochs < 1 or fusion_epochs < 0:
        raise ValueError(f"epochs must be ≥ 1 and fusion_epochs ≥ 0, got {epochs}, {fusion_epochs}")
    for k, (block, head) in enumerate(zip(blocks, heads)):
        frozen = nn.Sequential(*blocks[:k]).eval()
        stage = nn.Sequential(block, head).train()
        optimizer = make_optimizer([*block.parameters(), *head.parameters()])
        for _ in range(epochs):
            for inputs, targets in batches():
                with torch.no_grad():
                    features = frozen(inputs)
                loss = loss_fn(stage(features), targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    fused = nn.Sequential(*blocks, heads[-1])
    if fusion_epochs:
        optimizer = make_optimizer(list(fused.parameters()))
        fused.train()
        for _ in range(fusion_epochs):
            for inputs, targets in batches():
                loss = loss_fn(fused(inputs), targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    return fused


@dataclass
class LayerwiseResult:
    """Test accuracy of each arm (mean over seeds) and the number of parameters one step of
    each arm updates at most (the fusion stage updates all of them)."""

    accuracy: dict[str, float]
    parameters_per_step: dict[str, int]


def digits_blocks(width: int = 128, depth: int = 3) -> tuple[list[nn.Module], list[nn.Module]]:
    """``depth`` (Linear → ReLU) blocks for 8×8 digits (the first flattens) and a linear
    10-class head for each."""
    blocks: list[nn.Module] = []
    fan_in = 64
    for k in range(depth):
        layers: list[nn.Module] = [nn.Flatten()] if k == 0 else []
        blocks.append(nn.Sequential(*layers, nn.Linear(fan_in, width), nn.ReLU()))
        fan_in = width
    return blocks, [nn.Linear(width, 10) for _ in range(depth)]


def layerwise_check(
    *,
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = 10,
    fusion_epochs: int = 2,
    lr: float = 3e-3,
    batch_size: int = 64,
) -> LayerwiseResult:
    """Digits, a 3-block MLP of width 128, Adam: end to end for ``epochs``; layer-wise with
    ``epochs`` per stage; and layer-wise followed by ``fusion_epochs`` end to end."""
    from dlskills.data import load

    splits = load("digits", seed=0)
    arms = ("end_to_end", "layerwise", "layerwise_fused")
    accuracy = dict.fromkeys(arms, 0.0)

    def adam(params: list[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=lr)

    for seed in seeds:
        for arm in arms:
            torch.manual_seed(seed)
            blocks, heads = digits_blocks()
            train, _, test = splits.loaders(batch_size, seed=seed)
            if arm == "end_to_end":
                model = nn.Sequential(*blocks, heads[-1])
                optimizer = adam(list(model.parameters()))
                for _ in range(epochs):
                    for x, y in train:
                        loss = F.cross_entropy(model(x), y)
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        optimizer.step()
            else:
                model = train_layerwise(
                    blocks,
                    heads,
                    lambda train=train: train,
                    epochs=epochs,
                    make_optimizer=adam,
                    fusion_epochs=fusion_epochs if arm == "layerwise_fused" else 0,
                )
            model.eval()
            with torch.no_grad():
                right = sum(int((model(x).argmax(1) == y).sum()) for x, y in test)
            accuracy[arm] += right / len(test.dataset) / len(seeds)
    blocks, heads = digits_blocks()
    everything = sum(p.numel() for p in nn.Sequential(*blocks, heads[-1]).parameters())
    stage = max(
        sum(p.numel() for p in [*b.parameters(), *h.parameters()]) for b, h in zip(blocks, heads)
    )
    per_step = {"end_to_end": everything, "layerwise": stage, "layerwise_fused": everything}
    return LayerwiseResult(accuracy, per_step)


__all__ = ["LayerwiseResult", "digits_blocks", "layerwise_check", "train_layerwise"]
