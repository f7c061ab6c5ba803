"""Gradient accumulation and bf16 autocast compose with every strategy on torch.distributed
(ddp's own forms are in test_ddp.py): under local-sgd, easgd and downpour, two accumulated half
batches take the steps of the whole batch (float64, 1e-6 relative), and ``precision="bf16"``
runs the forward in bfloat16 and moves the float32 weights by bf16's rounding only."""

import pytest
import torch
from harness import run_ranks
from strategy_runs import GLOBAL_BATCH, train_with_strategy

STEPS, LR = 12, 0.2
STRATEGIES = {
    "local-sgd": {"sync_every": 2},
    "easgd": {},
    # SGD on the server: Adagrad's first step is lr·sign(g), which bf16 flips where g ≈ 0
    "downpour": {"n_fetch": 2, "n_push": 2, "server_optimizer": "sgd"},
}


def _runs_rank(rank, world_size, name):
    from dlskills.distributed import create
    from dlskills.train.callbacks import Callback

    def run(accumulate=1, precision="64"):
        dtypes = set()

        class OutputDtype(Callback):
            def on_after_backward(self, trainer):
                dtypes.add(str(trainer.outputs.dtype))

        params = train_with_strategy(
            create(name, **STRATEGIES[name]),
            STEPS,
            LR,
            0.0,
            accumulate=accumulate,
            batch=GLOBAL_BATCH // accumulate,
            precision=precision,
            callbacks=[OutputDtype()],
        )
        return params, sorted(dtypes)

    return {
        "whole": run()[0],
        "halves": run(accumulate=2)[0],
        "fp32": run(precision="32")[0],
        "bf16": run(precision="bf16"),
    }


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_accumulation_and_bf16_compose_with_the_strategy(name):
    ranks = run_ranks(_runs_rank, 2, name, timeout=240, init_group=True)
    trained = 0
    for rank in ranks:
        moved = max(float((p - q).abs().max()) for p, q in zip(rank["whole"], rank["halves"]))
        for p, q in zip(rank["halves"], rank["whole"]):
            assert torch.allclose(p, q, rtol=1e-6, atol=1e-12), (name, moved)
        bf16, dtypes = rank["bf16"]
        if dtypes:  # a rank that ran forward passes (downpour's server does not)
            trained += 1
            assert dtypes == ["torch.bfloat16"]
            assert all(p.dtype == torch.float32 for p in bf16)
            gap = max(float((p - q).abs().max()) for p, q in zip(bf16, rank["fp32"]))
            assert 1e-5 < gap < 2e-2, (name, gap)
    assert trained >= 1
