"""EASGD on torch.distributed (1412.6651): two gloo ranks on 127.0.0.1 against the one-process
simulation ``dlskills.optim.EASGD(workers=2)`` fed the same per-worker batches (rank k's shard of
every global batch), and a one-rank run against ``EASGD(workers=1)``."""

import pytest
import torch
from harness import run_ranks
from strategy_runs import GLOBAL_BATCH, dataset, global_batches, model
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from dlskills.optim import EASGD as SimulatedEASGD

LR, ALPHA = 0.2, 0.3


def simulate(steps, workers, *, synchronous, momentum, tau, weight_decay=0.0):
    """The one-process simulation: worker k's closure call at step t takes rank k's shard of
    global batch t (DistributedSampler: positions k, k + N, … of the batch)."""
    data = dataset()
    net = model()
    optimizer = SimulatedEASGD(
        net.parameters(),
        lr=LR,
        workers=workers,
        alpha=ALPHA,
        tau=tau,
        momentum=momentum,
        weight_decay=weight_decay,
        synchronous=synchronous,
        fused=False,
    )
    for index in global_batches(steps, workers):
        shards = iter(index[k::workers] for k in range(workers))

        def closure(shards=shards):
            shard = next(shards)
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(net(data.tensors[0][shard]), data.tensors[1][shard])
            loss.backward()
            return loss

        optimizer.step(closure)
    params = list(net.parameters())
    centre = [p.detach().clone() for p in params]
    xs = [[optimizer.state[p]["workers"][k].clone() for p in params] for k in range(workers)]
    return centre, xs


def _loader(strategy):
    if strategy.world_size == 1:  # the sampler prepare_loader puts in for several ranks
        data = dataset()
        sampler = DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=0)
        return DataLoader(data, batch_size=GLOBAL_BATCH, sampler=sampler)
    return strategy.prepare_loader(DataLoader(dataset(), batch_size=GLOBAL_BATCH, shuffle=True), 0)


def train(options, steps, momentum, *, weight_decay=0.0, save_every=None, resume_from=None):
    """One rank's run through the Trainer; returns its x, clock and (rank 0) the centre.
    ``save_every``: a directory and a period for ``last`` checkpoints."""
    from dlskills.distributed import create
    from dlskills.train.callbacks.model_checkpoint import ModelCheckpoint
    from dlskills.train.trainer import Trainer

    strategy = create("easgd", alpha=ALPHA, **options)
    net = model()
    optimizer = strategy.configure_optimizer(
        net.parameters(), lr=LR, momentum=momentum, weight_decay=weight_decay
    )
    callbacks = []
    if save_every is not None:
        directory, every = save_every
        callbacks.append(ModelCheckpoint(directory, every_n_steps=every, save_best=False))
    trainer = Trainer(
        net,
        optimizer,
        nn.functional.cross_entropy,
        _loader(strategy),
        callbacks=callbacks,
        max_steps=steps,
        strategy=strategy,
    )
    trainer.fit(resume_from=resume_from)
    rank = strategy.rank
    return {
        "x": [t.detach().clone() for t in optimizer.own()],
        "clock": optimizer.clock(),
        "centre": strategy.centre(),
        "exchanges": strategy.exchanges,
        "described": strategy.describe(),
        # validation and test evaluate the centre on rank 0
        "evaluated": trainer.evaluate(DataLoader(dataset(), batch_size=32)) if not rank else None,
    }


def _rank(rank, world_size, runs):
    return [train(*args, **kwargs) for args, kwargs in runs]


def assert_close(actual, expected, rtol=1e-6):
    """Per tensor: max |a − e| ≤ rtol · max |e|."""
    for a, e in zip(actual, expected, strict=True):
        error = float((a - e).abs().max() / e.abs().max().clamp_min(1e-12))
        assert error < rtol, error


def _centre_loss(centre):
    net = model()
    with torch.no_grad():
        for p, c in zip(net.parameters(), centre, strict=True):
            p.copy_(c)
        x, y = dataset().tensors
        outputs = net(x)
        return float(nn.functional.cross_entropy(outputs, y)), float(
            (outputs.argmax(1) == y).double().mean()
        )


def check(results, steps, *, synchronous, momentum, tau, weight_decay=0.0):
    centre, xs = simulate(
        steps, 2, synchronous=synchronous, momentum=momentum, tau=tau, weight_decay=weight_decay
    )
    start = [p.detach() for p in model().parameters()]
    assert max(float((c - s).abs().max()) for c, s in zip(centre, start)) > 1e-2  # it moved
    assert_close(results[0]["centre"], centre)
    loss, accuracy = _centre_loss(centre)
    assert results[0]["evaluated"] == pytest.approx({"loss": loss, "accuracy": accuracy})
    for rank, result in enumerate(results):
        assert result["clock"] == steps
        assert_close(result["x"], xs[rank])


STEPS = 20


def test_synchronous_two_ranks_equal_the_simulation():
    """Eqs. 5–6 on two ranks: EASGD (τ = 1) and EAMSGD (δ = 0.5, τ = 2, weight decay), 20 steps,
    within 1e-6 relative of ``EASGD(synchronous=True, workers=2)``."""
    runs = [
        (({"tau": 1}, STEPS, 0.0), {}),
        (({"tau": 2}, STEPS, 0.5), {"weight_decay": 1e-3}),
    ]
    per_rank = run_ranks(_rank, 2, runs, timeout=120, init_group=True)
    check([r[0] for r in per_rank], STEPS, synchronous=True, momentum=0.0, tau=1)
    check([r[1] for r in per_rank], STEPS, synchronous=True, momentum=0.5, tau=2, weight_decay=1e-3)


def test_ordered_asynchronous_two_ranks_equal_the_round_robin_simulation():
    """Algorithms 1–2 over RPC, the exchanges served in rank order each round: the run equals
    ``EASGD(synchronous=False, workers=2)`` (worker 1 then worker 2 within a step)."""
    options = {"synchronous": False, "ordered": True}
    runs = [
        (({**options, "tau": 1}, STEPS, 0.0), {}),
        (({**options, "tau": 2}, STEPS, 0.5), {"weight_decay": 1e-3}),
    ]
    per_rank = run_ranks(_rank, 2, runs, timeout=120, init_group=True)
    check([r[0] for r in per_rank], STEPS, synchronous=False, momentum=0.0, tau=1)
    check(
        [r[1] for r in per_rank], STEPS, synchronous=False, momentum=0.5, tau=2, weight_decay=1e-3
    )
    assert per_rank[0][0]["exchanges"] == 2 * STEPS
    assert per_rank[0][1]["exchanges"] == 2 * (STEPS // 2)


def test_unordered_asynchronous_two_ranks_converge():
    """Exchanges in arrival order (not deterministic): the centre still learns the problem."""
    steps = 60
    (result, *_), *_ = run_ranks(
        _rank, 2, [(({"synchronous": False}, steps, 0.5), {})], timeout=120
    )
    start_loss, _ = _centre_loss([p.detach() for p in model().parameters()])
    loss, accuracy = _centre_loss(result["centre"])
    print(f"centre loss {start_loss:.3f} -> {loss:.3f}, accuracy {accuracy:.3f}")
    assert loss < 0.5 * start_loss
    assert accuracy > 0.9
    assert result["exchanges"] == 2 * steps


def test_a_resumed_run_continues_exactly(tmp_path):
    """12 steps (two epochs of 6; a run that stops at max_steps closes its epoch, so the
    checkpoint is taken at an epoch end), a checkpoint (every rank's x, v, clock, model; rank
    0's centre), then a fresh Trainer resumes to 20: equal to the simulation's 20 steps
    (synchronous EAMSGD, τ = 2, and ordered asynchronous EAMSGD)."""
    runs = []
    for name, options in (("sync", {"tau": 2}), ("async", {"synchronous": False, "ordered": True})):
        directory = str(tmp_path / name)
        runs.append(((options, 12, 0.5), {"save_every": (directory, 5)}))
        runs.append(((options, STEPS, 0.5), {"resume_from": f"{directory}/last"}))
    per_rank = run_ranks(_rank, 2, runs, timeout=120, init_group=True)
    check([r[1] for r in per_rank], STEPS, synchronous=True, momentum=0.5, tau=2)
    check([r[3] for r in per_rank], STEPS, synchronous=False, momentum=0.5, tau=1)


@pytest.mark.parametrize("synchronous", [True, False])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_one_rank_equals_one_simulated_worker(synchronous, momentum):
    """Without torchrun's environment the strategy runs one worker and its centre in the
    process (no RPC): equal to ``EASGD(workers=1)``."""
    options = {"synchronous": synchronous, "tau": 2}
    result = train(options, 8, momentum)
    centre, xs = simulate(8, 1, synchronous=synchronous, momentum=momentum, tau=2)
    assert_close(result["centre"], centre)
    loss, accuracy = _centre_loss(centre)
    assert result["evaluated"] == pytest.approx({"loss": loss, "accuracy": accuracy})
    assert_close(result["x"], xs[0])
    assert result["described"] == {
        "strategy": "easgd",
        "world_size": 1,
        "tau": 2,
        "alpha": ALPHA,
        "synchronous": synchronous,
        "ordered": False,
    }


@pytest.mark.parametrize("synchronous", [True, False])
def test_one_rank_resumes_exactly(tmp_path, synchronous):
    """One process: a checkpoint after 12 steps (the worker, its x, v, clock, and the centre),
    resumed to 20, equals the simulation's 20 steps."""
    options = {"synchronous": synchronous, "tau": 2}
    train(options, 12, 0.5, save_every=(str(tmp_path), 5))
    result = train(options, 20, 0.5, resume_from=str(tmp_path / "last"))
    centre, xs = simulate(20, 1, synchronous=synchronous, momentum=0.5, tau=2)
    assert_close(result["centre"], centre)
    assert_close(result["x"], xs[0])
    assert result["clock"] == 20


def test_the_config_optimizer_settings_map_to_the_worker(caplog):
    from dlskills.distributed import create
    from dlskills.distributed.easgd import EASGDWorker

    strategy = create("easgd", tau=3)
    params = list(model().parameters())
    worker = strategy.configure_optimizer(
        params, optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4
    )
    assert isinstance(worker, EASGDWorker) and worker.tau == 3
    group = worker.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.1, 0.9, 1e-4)
    assert not caplog.records
    with caplog.at_level("WARNING"):
        strategy.configure_optimizer(params, optimizer="adamw", lr=0.1, betas=(0.9, 0.99))
    assert "adamw" in caplog.text and "betas" in caplog.text


def test_registered_and_validated():
    from dlskills.distributed import STRATEGIES, create
    from dlskills.distributed.easgd import EASGD
    from dlskills.train.trainer import Trainer

    strategy = create("easgd")
    assert isinstance(strategy, EASGD) and STRATEGIES.get("easgd") is EASGD
    assert strategy.alpha == pytest.approx(0.9)  # 0.9/N with N = 1
    for bad, match in (
        ({"tau": 0}, "tau"),
        ({"alpha": 1.5}, "alpha"),
        ({"ordered": True}, "ordered"),
    ):
        with pytest.raises(ValueError, match=match):
            create("easgd", **bad)
    with pytest.raises(ValueError, match="lr"):
        strategy.configure_optimizer(model().parameters())
    net = model()
    sgd = torch.optim.SGD(net.parameters(), lr=0.1)
    loader = _loader(strategy)
    trainer = Trainer(net, sgd, nn.functional.cross_entropy, loader, max_steps=1, strategy=strategy)
    with pytest.raises(TypeError, match="configure_optimizer"):
        trainer.fit()
