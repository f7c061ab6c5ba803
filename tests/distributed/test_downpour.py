"""Downpour SGD (distbelief-2012) on gloo + TensorPipe RPC, ranks on 127.0.0.1: rank 0 serves,
the others train. One worker with n_fetch = n_push = 1 against torch's Adagrad / SGD run in one
process on the same batches; two workers converge and record staleness; bad options fail by
name; a failing worker brings every rank down promptly with its RPC agent shut down; a
resume from an epoch-end checkpoint equals the straight run."""

import itertools
import time

import pytest
import strategy_runs
import torch
from harness import run_ranks
from strategy_runs import GLOBAL_BATCH, dataset, global_batches, model
from torch import nn
from torch.utils.data import DataLoader

STEPS, LR = 20, 0.2


def reference(optimizer_name, steps, lr):
    """One process: torch's Adagrad or SGD on the mean loss of each global batch, in the order
    one worker's DistributedSampler(num_replicas=1, seed=0) gives them."""
    data = dataset()
    net = model()
    optimizer = {"adagrad": torch.optim.Adagrad, "sgd": torch.optim.SGD}[optimizer_name](
        net.parameters(), lr=lr
    )
    for index in global_batches(steps, 1):
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(data.tensors[0][index]), data.tensors[1][index]).backward()
        optimizer.step()
    return [p.detach().clone() for p in net.parameters()]


def simulate_client_loop(steps, lr, n_fetch, n_push, per_epoch=6):
    """One worker and the server in one process, written out from the paper's client loop:
    fetch when t mod n_fetch = 0, gradient, accrue, local SGD step, push when t mod n_push = 0,
    and the epoch-end flush; the server applies torch's Adagrad. Returns θ and the staleness of
    every push, per epoch."""
    data = dataset()
    server = model()
    server_optimizer = torch.optim.Adagrad(server.parameters(), lr=lr)
    worker = model()
    version, fetched, accrued = 0, 0, None
    staleness: list[list[int]] = []

    def push():
        nonlocal version, accrued
        staleness[-1].append(version - fetched)
        for p, g in zip(server.parameters(), accrued):
            p.grad = g.clone()
        server_optimizer.step()
        version, accrued = version + 1, None

    for t, index in enumerate(global_batches(steps, 1)):
        if t % per_epoch == 0:
            staleness.append([])
        if t % n_fetch == 0:
            with torch.no_grad():
                for w, p in zip(worker.parameters(), server.parameters()):
                    w.copy_(p)
            fetched = version
        worker.zero_grad()
        x, y = data.tensors[0][index], data.tensors[1][index]
        nn.functional.cross_entropy(worker(x), y).backward()
        grads = [w.grad.clone() for w in worker.parameters()]
        accrued = grads if accrued is None else [a + g for a, g in zip(accrued, grads)]
        with torch.no_grad():
            for w, g in zip(worker.parameters(), grads):
                w.sub_(lr * g)
        if t % n_push == 0:
            push()
        if ((t + 1) % per_epoch == 0 or t + 1 == steps) and accrued is not None:
            push()
    return [p.detach().clone() for p in server.parameters()], staleness


def _trainer(strategy, *, steps=None, epochs=None, lr=LR, callbacks=(), run_dir=None, val=False):
    from dlskills.train.trainer import Trainer

    net = model()
    loader = strategy.prepare_loader(
        DataLoader(dataset(), batch_size=GLOBAL_BATCH, shuffle=True), 0
    )
    return Trainer(
        net,
        torch.optim.SGD(net.parameters(), lr=lr),
        nn.functional.cross_entropy,
        loader,
        DataLoader(dataset(), batch_size=len(dataset())) if val else None,
        callbacks=list(callbacks),
        max_steps=steps,
        max_epochs=epochs,
        strategy=strategy,
        run_dir=run_dir,
        log_every=2,  # mid-epoch metric sums among the workers
    )


def _one_worker_rank(rank, world_size, server_optimizer, period=1):
    from dlskills.distributed import create
    from dlskills.train.strategy import unwrap

    strategy = create("downpour", n_fetch=period, n_push=period, server_optimizer=server_optimizer)
    trainer = _trainer(strategy, steps=STEPS).fit()
    params = [p.detach().clone() for p in unwrap(trainer.model).parameters()]
    return {"params": params, "history": trainer.history, "step": trainer.step}


@pytest.mark.parametrize("server_optimizer", ["adagrad", "sgd"])
def test_one_worker_every_step_is_the_server_optimizer_on_the_batches(server_optimizer):
    expected = reference(server_optimizer, STEPS, LR)
    start = [p.detach() for p in model().parameters()]
    assert max(float((p - s).abs().max()) for p, s in zip(expected, start)) > 1e-2  # it moved
    server, worker = run_ranks(_one_worker_rank, 2, server_optimizer, timeout=90)
    for p, q in zip(server["params"], expected, strict=True):
        assert torch.allclose(p, q, rtol=1e-10, atol=0), (p - q).abs().max()
    assert server["step"] == worker["step"] == STEPS
    rows = server["history"]
    assert rows[-1]["server_updates"] == STEPS
    assert all(row["staleness_max"] == 0 and row["staleness_mean"] == 0 for row in rows)
    assert all(row["lr"] == LR for row in rows)  # the server's optimizer on rank 0
    assert worker["history"][-1]["train_loss"] == pytest.approx(rows[-1]["train_loss"])


def test_one_worker_with_periods_of_two_follows_the_client_loop():
    expected, staleness = simulate_client_loop(STEPS, LR, n_fetch=2, n_push=2)
    # its own pushes only: 0 after each fetch, 1 for the epoch-end flush of step 5
    assert staleness[0] == [0, 0, 0, 1]
    plain = reference("adagrad", STEPS, LR)
    assert max(float((p - q).abs().max()) for p, q in zip(expected, plain)) > 1e-3
    server, _worker = run_ranks(_one_worker_rank, 2, "adagrad", 2, timeout=90)
    for p, q in zip(server["params"], expected, strict=True):
        assert torch.allclose(p, q, rtol=1e-10, atol=0), (p - q).abs().max()
    rows = server["history"]
    assert [row["server_updates"] for row in rows] == list(
        itertools.accumulate(len(s) for s in staleness)
    )
    for row, pushed in zip(rows, staleness, strict=True):
        assert row["staleness_mean"] == pytest.approx(sum(pushed) / len(pushed))
        assert row["staleness_max"] == max(pushed)


class _Slow:
    """A worker slower than the other (a callback sleeping before each batch)."""

    def __new__(cls, seconds):
        from dlskills.train.callbacks.base import Callback

        class Slow(Callback):
            def on_batch_start(self, trainer):
                time.sleep(seconds)

        return Slow()


def _two_workers_rank(rank, world_size, run_dir):
    from dlskills.distributed import create
    from dlskills.train.callbacks.csv_logger import CSVLogger
    from dlskills.train.callbacks.model_checkpoint import ModelCheckpoint
    from dlskills.train.strategy import unwrap

    strategy = create("downpour", n_fetch=2, n_push=2, timeout_s=60)
    # every rank checkpoints (the gathers are collectives); rank 0 writes, and logs the CSV
    callbacks = [ModelCheckpoint(), *([CSVLogger()] if rank == 0 else [])]
    if rank == 2:
        callbacks.append(_Slow(0.003))
    trainer = _trainer(
        strategy, epochs=10, lr=0.3, callbacks=callbacks, run_dir=run_dir, val=True
    ).fit()
    params = [p.detach().clone() for p in unwrap(trainer.model).parameters()]
    return {"params": params, "history": trainer.history, "options": strategy.describe()}


def _loss_and_accuracy(params):
    data = dataset()
    net = model()
    with torch.no_grad():
        for p, v in zip(net.parameters(), params, strict=True):
            p.copy_(v)
        out = net(data.tensors[0])
    loss = float(nn.functional.cross_entropy(out, data.tensors[1]))
    return loss, float((out.argmax(1) == data.tensors[1]).double().mean())


def test_two_workers_converge_and_record_staleness(tmp_path):
    from dlskills.train.callbacks.csv_logger import read_metrics
    from dlskills.train.checkpoint import load_checkpoint

    server, *workers = run_ranks(_two_workers_rank, 3, str(tmp_path), timeout=120)
    start_loss, _ = _loss_and_accuracy([p.detach() for p in model().parameters()])
    loss, accuracy = _loss_and_accuracy(server["params"])  # independent of the Trainer
    assert loss < 0.5 * start_loss and accuracy >= 0.9, (start_loss, loss, accuracy)
    last = server["history"][-1]
    assert last["val_accuracy"] == pytest.approx(accuracy)
    assert last["val_loss"] == pytest.approx(loss)
    # 10 epochs × 6 steps per worker; pushes at t = 0, 2, 4 and an epoch-end flush of t = 5
    assert last["step"] == 60 and last["server_updates"] == 2 * 4 * 10
    assert server["options"] == {
        "strategy": "downpour",
        "world_size": 3,
        "n_fetch": 2,
        "n_push": 2,
        "server_optimizer": "adagrad",
        "server_lr": 0.3,
    }
    rows = read_metrics(tmp_path / "metrics.csv")
    assert len(rows) == 10
    assert {"staleness_mean", "staleness_max", "server_updates", "train_accuracy"} <= set(rows[0])
    # a worker's own pushes add at most 1 between its fetch and its push (the epoch-end flush,
    # see the one-worker test): more means the other worker's updates landed in between
    assert max(row["staleness_max"] for row in rows) >= 2
    assert sum(row["staleness_mean"] for row in rows) / len(rows) > 0.25
    assert all(0 <= row["staleness_mean"] <= row["staleness_max"] for row in rows)
    _, tensors = load_checkpoint(tmp_path / "checkpoints" / "last")
    names = [name for name, _ in model().named_parameters()]
    for name, p in zip(names, server["params"], strict=True):
        assert torch.equal(tensors[f"model.{name}"], p)
    for worker in workers:  # the workers' replicas differ from the server's θ
        assert any(not torch.equal(p, q) for p, q in zip(worker["params"], server["params"]))


class _Explode:
    def __new__(cls, at_step):
        from dlskills.train.callbacks.base import Callback

        class Explode(Callback):
            def on_batch_end(self, trainer):
                if trainer.step == at_step:
                    raise RuntimeError("worker exploded on purpose")

        return Explode()


def _failing_rank(rank, world_size):
    from torch.distributed import rpc

    from dlskills.distributed import create

    strategy = create("downpour", timeout_s=60)
    callbacks = [_Explode(3)] if rank == 1 else []
    started = time.monotonic()
    try:
        _trainer(strategy, epochs=5, callbacks=callbacks).fit()
        message = None
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
    return {
        "message": message,
        "seconds": time.monotonic() - started,
        "rpc_agent_left": bool(rpc._is_current_rpc_agent_set()),
    }


def test_a_failing_worker_stops_the_server_promptly_and_every_agent_shuts_down():
    server, worker = run_ranks(_failing_rank, 2, timeout=90)
    assert "exploded on purpose" in worker["message"]
    assert "worker rank 1" in server["message"] and "exploded on purpose" in server["message"]
    assert server["seconds"] < 30  # told by the worker, not waiting out timeout_s
    assert not server["rpc_agent_left"] and not worker["rpc_agent_left"]


@pytest.fixture
def three_ranks(monkeypatch):
    """A rank-1 environment of a world of 3 (construction only: no group is joined)."""
    for key, value in (("RANK", "1"), ("WORLD_SIZE", "3"), ("LOCAL_RANK", "1")):
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"n_fetch": 0}, "n_fetch"),
        ({"n_fetch": 1.5}, "n_fetch"),
        ({"n_fetch": True}, "n_fetch"),
        ({"n_push": -1}, "n_push"),
        ({"n_push": "2"}, "n_push"),
        ({"server_optimizer": "adagradd"}, "server_optimizer"),
        ({"server_optimizer": 3}, "server_optimizer"),
        ({"server_lr": 0.0}, "server_lr"),
        ({"server_lr": float("nan")}, "server_lr"),
        ({"server_lr": True}, "server_lr"),
    ],
)
def test_bad_options_are_refused_by_name(three_ranks, options, named):
    from dlskills.distributed import create

    with pytest.raises(ValueError, match=named):
        create("downpour", **options)


def test_options_world_size_and_batch_split(three_ranks):
    from dlskills.distributed import create
    from dlskills.distributed.downpour import Downpour

    strategy = create("downpour", n_fetch=3, n_push=2, server_optimizer="SGD", server_lr=0.5)
    assert strategy.options() == {
        "n_fetch": 3,
        "n_push": 2,
        "server_optimizer": "sgd",
        "server_lr": 0.5,
    }
    assert Downpour.data_ranks(3) == 2  # the server takes no share of a batch
    for world in (0, 1):
        with pytest.raises(ValueError, match="--nproc ≥ 2"):
            Downpour.check_world_size(world)
    Downpour.check_world_size(2)
    shard = strategy.prepare_loader(DataLoader(dataset(), batch_size=GLOBAL_BATCH), seed=0)
    assert shard.batch_size == GLOBAL_BATCH // 2 and len(shard) == 6
    with pytest.raises(ValueError, match="not divisible by the 2 workers"):
        strategy.prepare_loader(DataLoader(dataset(), batch_size=15), seed=0)


def test_the_server_rank_takes_no_batches(monkeypatch):
    from dlskills.distributed import create

    for key, value in (("RANK", "0"), ("WORLD_SIZE", "3"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(key, value)
    loader = create("downpour").prepare_loader(DataLoader(dataset(), batch_size=GLOBAL_BATCH), 0)
    assert list(loader) == [] and len(loader) == 6  # the workers' steps per epoch


def test_one_process_is_refused_naming_nproc(monkeypatch):
    from dlskills.distributed import create

    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    strategy = create("downpour")  # constructible (the launcher validates options this way)
    with pytest.raises(ValueError, match="--nproc ≥ 2"):
        strategy.prepare_loader(DataLoader(dataset(), batch_size=GLOBAL_BATCH), 0)
    with pytest.raises(ValueError, match="--nproc ≥ 2"):
        strategy.start(torch.device("cpu"))


def test_step_checkpoints_are_refused(three_ranks):
    from types import SimpleNamespace

    from dlskills.distributed import create
    from dlskills.train.callbacks.model_checkpoint import ModelCheckpoint

    trainer = SimpleNamespace(callbacks=[ModelCheckpoint("unused", every_n_steps=5)])
    with pytest.raises(ValueError, match="every_n_steps"):
        create("downpour").setup(trainer)


def test_sync_every_sets_both_periods(three_ranks):
    from dlskills.distributed.launch import strategy_for
    from dlskills.train.config import make_config

    config = make_config({"strategy": "downpour", "sync_every": 4})
    strategy = strategy_for(config)
    assert (strategy.n_fetch, strategy.n_push) == (4, 4)


def test_reference_helpers_match_the_strategy_runs_batches():
    # the one-worker reference walks the same permutations as DistributedSampler(seed=0)
    assert len(global_batches(STEPS, 1)) == STEPS
    assert strategy_runs.N_EXAMPLES % GLOBAL_BATCH == 0


def _resume_rank(rank, world_size, directory, epochs, resume_from):
    from dlskills.distributed import create
    from dlskills.train.callbacks.model_checkpoint import ModelCheckpoint
    from dlskills.train.strategy import unwrap

    strategy = create("downpour", server_optimizer="adagrad")
    callbacks = [ModelCheckpoint(directory, save_best=False)]
    trainer = _trainer(strategy, epochs=epochs, callbacks=callbacks).fit(resume_from=resume_from)
    params = [p.detach().clone() for p in unwrap(trainer.model).parameters()]
    return {"params": params, "history": trainer.history}


def test_resume_from_an_epoch_end_checkpoint_continues_the_run_exactly(tmp_path):
    # one worker with periods of 1 is deterministic, so 2 epochs + a resume for 2 more must
    # equal 4 straight epochs: θ, the server's Adagrad state and version, the worker's replica
    straight_dir, split_dir = tmp_path / "straight", tmp_path / "split"
    straight = run_ranks(_resume_rank, 2, str(straight_dir), 4, None, timeout=90)
    run_ranks(_resume_rank, 2, str(split_dir), 2, None, timeout=90)
    resumed = run_ranks(_resume_rank, 2, str(split_dir), 4, str(split_dir / "last"), timeout=90)
    for rank in (0, 1):
        for p, q in zip(straight[rank]["params"], resumed[rank]["params"], strict=True):
            assert torch.equal(p, q), (rank, (p - q).abs().max())
    updates = [row["server_updates"] for row in resumed[0]["history"]]
    assert updates == [row["server_updates"] for row in straight[0]["history"]] == [6, 12, 18, 24]
