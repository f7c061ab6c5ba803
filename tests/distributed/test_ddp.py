import strategy_runs
import torch
from harness import run_ranks
from strategy_runs import GLOBAL_BATCH, reference_sgd, train_with_strategy

STEPS, LR, MOMENTUM = 20, 0.2, 0.9


def _ddp_rank(rank, world_size, accumulate):
    from dlskills.distributed import create

    return train_with_strategy(
        create("ddp"),
        STEPS,
        LR,
        MOMENTUM,
        accumulate=accumulate,
        batch=GLOBAL_BATCH // accumulate,
    )


def assert_close(params, reference, rtol):
    for p, q in zip(params, reference, strict=True):
        assert torch.allclose(p, q, rtol=rtol, atol=0), (p - q).abs().max()


def test_two_ranks_take_the_steps_of_one_process_on_the_global_batches():
    reference = reference_sgd(STEPS, 2, LR, MOMENTUM)
    start = [p.detach() for p in strategy_runs.model().parameters()]
    assert max(float((p - s).abs().max()) for p, s in zip(reference, start)) > 1e-2  # it moved
    for params in run_ranks(_ddp_rank, 2, 1, timeout=180):
        assert_close(params, reference, rtol=1e-6)


def test_two_ranks_accumulating_two_half_batches_take_the_global_batch_steps():
    reference = reference_sgd(STEPS, 2, LR, MOMENTUM)
    for params in run_ranks(_ddp_rank, 2, 2, timeout=180):
        assert_close(params, reference, rtol=1e-6)
