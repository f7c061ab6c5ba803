"""The strategies' shared base (distributed/_base.py): a process group the caller owns."""

import torch
from harness import run_ranks
from strategy_runs import GLOBAL_BATCH, dataset, model


def _own_group_rank(rank, world_size):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader

    from dlskills.distributed import create, release_data_parallel
    from dlskills.train.trainer import Trainer

    strategy = create("ddp")  # the harness's group exists: the strategy joins none of its own
    net = model()
    loader = strategy.prepare_loader(DataLoader(dataset(), batch_size=GLOBAL_BATCH), seed=0)
    trainer = Trainer(
        net,
        torch.optim.SGD(net.parameters(), lr=0.1),
        torch.nn.functional.cross_entropy,
        loader,
        max_epochs=1,
        strategy=strategy,
    )
    trainer.fit()
    after_fit = (dist.is_initialized(), type(trainer.model).__name__)

    # the caller's own DDP wrapper: a step, then its reducer freed while the group is alive
    wrapped = DistributedDataParallel(model())
    x, y = dataset().tensors
    torch.nn.functional.cross_entropy(wrapped(x[rank::2]), y[rank::2]).backward()
    grads = [p.grad.clone() for p in wrapped.parameters()]
    inner = release_data_parallel(wrapped)
    released = (inner is wrapped.module, hasattr(wrapped, "reducer"), hasattr(wrapped, "logger"))
    return after_fit, released, grads, [p.detach() for p in net.parameters()]


def test_a_group_the_caller_created_outlives_the_fit_and_its_own_ddp_is_released():
    ranks = run_ranks(_own_group_rank, 2, timeout=120, init_group=True)
    for after_fit, released, _, _ in ranks:
        assert after_fit == (True, "Sequential")  # group left alive, the DDP wrapper unwrapped
        assert released == (True, False, False)
    # the caller's DDP averaged the two halves' gradients: the full batch's mean gradient
    net = model()
    x, y = dataset().tensors
    halves = [torch.nn.functional.cross_entropy(net(x[r::2]), y[r::2]) for r in range(2)]
    (sum(halves) / 2).backward()
    for grads in (ranks[0][2], ranks[1][2]):
        for g, p in zip(grads, net.parameters(), strict=True):
            torch.testing.assert_close(g, p.grad, rtol=1e-10, atol=1e-12)
    for p, q in zip(ranks[0][3], ranks[1][3], strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)  # the fit kept the ranks equal
