"""A small float64 regression-free classification problem trained under a strategy, and the
plain one-process loop on the same global batches (the reference the strategies must equal)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

N_EXAMPLES = 96
GLOBAL_BATCH = 16


def dataset(dtype: torch.dtype = torch.float64) -> TensorDataset:
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(N_EXAMPLES, 5, generator=generator, dtype=torch.float64).to(dtype)
    y = (x[:, 0] - x[:, 2] + 0.3 * x[:, 4] > 0).long()
    return TensorDataset(x, y)


def model(dtype: torch.dtype = torch.float64) -> nn.Module:
    torch.manual_seed(11)
    return nn.Sequential(nn.Linear(5, 12), nn.Tanh(), nn.Linear(12, 2)).to(dtype)


def global_batches(steps: int, world_size: int, seed: int = 0):
    """The global batches N ranks see through DistributedSampler(seed), in step order:
    permutation of epoch e from a generator seeded seed + e, cut into GLOBAL_BATCH pieces."""
    per_epoch = N_EXAMPLES // GLOBAL_BATCH
    assert N_EXAMPLES % (GLOBAL_BATCH * world_size) == 0  # no padding, equal shards
    batches = []
    for epoch in range(-(-steps // per_epoch)):
        order = torch.randperm(N_EXAMPLES, generator=torch.Generator().manual_seed(seed + epoch))
        batches += [order[j * GLOBAL_BATCH : (j + 1) * GLOBAL_BATCH] for j in range(per_epoch)]
    return batches[:steps]


def reference_sgd(
    steps: int, world_size: int, lr: float, momentum: float, *, precision: str = "64"
) -> list[torch.Tensor]:
    """One process, torch's SGD, the mean loss over each global batch; ``precision`` "32" or
    "bf16" trains in float32, the latter with forward and loss under CPU bf16 autocast."""
    dtype = torch.float64 if precision == "64" else torch.float32
    data = dataset(dtype)
    net = model(dtype)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    for index in global_batches(steps, world_size):
        x, y = data.tensors[0][index], data.tensors[1][index]
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        optimizer.step()
    return [p.detach().clone() for p in net.parameters()]


def train_with_strategy(
    strategy,
    steps: int,
    lr: float,
    momentum: float,
    *,
    run_dir=None,
    callbacks=(),
    resume_from=None,
    accumulate: int = 1,
    batch: int = GLOBAL_BATCH,
    precision: str = "64",
):
    from dlskills.train.strategy import unwrap
    from dlskills.train.trainer import Trainer

    dtype = torch.float64 if precision == "64" else torch.float32
    net = model(dtype)
    loader = DataLoader(dataset(dtype), batch_size=batch, shuffle=True)
    loader = strategy.prepare_loader(loader, seed=0)
    optimizer = strategy.configure_optimizer(
        net.parameters(), optimizer="sgd", lr=lr, momentum=momentum
    ) or torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    trainer = Trainer(
        net,
        optimizer,
        nn.functional.cross_entropy,
        loader,
        callbacks=list(callbacks),
        max_steps=steps,
        strategy=strategy,
        run_dir=run_dir,
        accumulate_grad_batches=accumulate,
        precision="32" if precision == "64" else precision,
    )
    trainer.fit(resume_from=resume_from)
    # the wrapper's reducer goes before the group (freed after it, it can deadlock at exit)
    assert not isinstance(trainer.model, torch.nn.parallel.DistributedDataParallel)
    return [p.detach().clone() for p in unwrap(trainer.model).parameters()]
