import pytest
import strategy_runs
from harness import run_ranks
from strategy_runs import reference_sgd, train_with_strategy

STEPS, LR = 20, 0.2


def _local_sgd_rank(rank, world_size, options, steps):
    from dlskills.distributed import create

    return train_with_strategy(create("local-sgd", **options), steps, LR, 0.0)


def _relative_gap(params, reference):
    return max(float((p - q).norm() / q.norm()) for p, q in zip(params, reference, strict=True))


def test_averaging_every_step_with_plain_sgd_is_ddp():
    reference = reference_sgd(STEPS, 2, LR, 0.0)
    for params in run_ranks(_local_sgd_rank, 2, {"sync_every": 1}, STEPS, timeout=180):
        assert _relative_gap(params, reference) < 1e-6


def test_local_steps_drift_apart_and_meet_at_each_average():
    # H = 4 over 8 steps: the replicas are averaged after steps 4 and 8, so they end equal, and
    # the run is not mini-batch SGD (the local steps used unaveraged gradients)
    ranks = run_ranks(_local_sgd_rank, 2, {"sync_every": 4}, 8, timeout=180)
    assert _relative_gap(ranks[0], ranks[1]) < 1e-12
    assert _relative_gap(ranks[0], reference_sgd(8, 2, LR, 0.0)) > 1e-4
    # after 6 steps (2 local steps since the last average) they differ
    ranks = run_ranks(_local_sgd_rank, 2, {"sync_every": 4}, 6, timeout=180)
    assert _relative_gap(ranks[0], ranks[1]) > 1e-4


def test_post_local_warmup_is_mini_batch_sgd_until_it_ends():
    reference = reference_sgd(6, 2, LR, 0.0)
    options = {"sync_every": 4, "warmup_steps": 6}
    for params in run_ranks(_local_sgd_rank, 2, options, 6, timeout=180):
        assert _relative_gap(params, reference) < 1e-6
    start = [p.detach() for p in strategy_runs.model().parameters()]
    assert _relative_gap(start, reference) > 1e-2


@pytest.mark.parametrize(
    ("options", "match"),
    [({"sync_every": 0}, "sync_every"), ({"warmup_steps": -1}, "warmup_steps")],
)
def test_bad_options_name_themselves(options, match):
    from dlskills.distributed import create

    with pytest.raises(ValueError, match=match):
        create("local-sgd", **options)


def test_unknown_strategy_suggests_names():
    from dlskills.distributed import create

    with pytest.raises(ValueError, match="ddp"):
        create("dpp")
