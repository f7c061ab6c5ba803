import strategy_runs
import torch
from harness import run_ranks
from strategy_runs import GLOBAL_BATCH, reference_sgd, train_with_strategy

STEPS, LR, MOMENTUM = 20, 0.2, 0.9


def _ddp_rank(rank, world_size, accumulate, precision="64"):
    from dlskills.distributed import create

    return train_with_strategy(
        create("ddp"),
        STEPS,
        LR,
        MOMENTUM,
        accumulate=accumulate,
        batch=GLOBAL_BATCH // accumulate,
        precision=precision,
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


def _ddp_bf16_rank(rank, world_size):
    from dlskills.distributed import create
    from dlskills.train.callbacks import Callback

    dtypes = set()

    class OutputDtype(Callback):
        def on_after_backward(self, trainer):
            dtypes.add(str(trainer.outputs.dtype))

    params = train_with_strategy(
        create("ddp"), STEPS, LR, MOMENTUM, precision="bf16", callbacks=[OutputDtype()]
    )
    return params, sorted(dtypes)


def test_bf16_autocast_composes_with_ddp():
    """--precision bf16 under ddp: the forward runs in bfloat16 on every rank, the float32
    weights follow float32 training to within bf16's rounding (a float32 ddp run equals it to
    ~2e-7; bf16 moves it by ~1e-3 after 20 steps) and the ranks stay identical."""
    fp32 = reference_sgd(STEPS, 2, LR, MOMENTUM, precision="32")
    ranks = run_ranks(_ddp_bf16_rank, 2, timeout=180)
    for params, dtypes in ranks:
        assert dtypes == ["torch.bfloat16"]
        assert all(p.dtype == torch.float32 for p in params)
        gap = max(float((p - q).abs().max()) for p, q in zip(params, fp32))
        assert 1e-5 < gap < 2e-2, gap
    for p, q in zip(ranks[0][0], ranks[1][0]):
        assert torch.equal(p, q)
