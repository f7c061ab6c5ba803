"""Distributed training on 2 gloo processes: `dlskills train --nproc 2` against a hand-written
DDP loop and one process, the bytes each strategy communicates, and a fitted cost model.

Every timed epoch trains the default `dlskills train` recipe (the small CNN on digits, AdamW,
cosine schedule, label-smoothed loss, global batch 64, one torch thread per process) without its
weight average (``ema_decay = 0``: (b) would swap weights at validation, (a) not) and does the
same work:
forward, loss, backward, step, schedule step, the epoch's mean training loss and accuracy summed
over the ranks, and a validation pass on rank 0 whose result every rank receives.

    (a) hand-written DDP: DistributedSampler (set_epoch each epoch), DistributedDataParallel,
        batch 32 per rank, plain torch loop
    (b) the Trainer with the ddp strategy and the callbacks `dlskills train` uses (NaN guard, LR
        monitor, CSV logger, best + last checkpoints every epoch; progress bar off)
    (c) one process, the hand-written loop without DDP, batch 64: the same total work

(a), (b) and (c) run interleaved in one spawned 2-rank gloo group on 127.0.0.1: a last
callback of (b) runs one epoch of (a) and one of (c) (rank 0 trains, rank 1 waits) before each
even and after each odd Trainer epoch, so machine-load drift hits all alike; round 1 is a
warm-up. Printed: medians of the per-round ratios (b)/(a) (target ≤ 1.05), (b) less the time
of its checkpoint saves over (a), and (a)/(c). Then `dlskills train --nproc 2 --strategy ddp`
itself, as a user runs it: its per-epoch time from its metrics.csv (after start-up) and its
total wall time including start-up, apart.

Bytes: the strategies ddp, local-sgd (H = 8) and easgd (its default τ) train the recipe in a
2-rank group with every torch.distributed collective counted (the tensor bytes each rank hands
to all_reduce, broadcast, reduce, all_gather, gather and DDP's buffer broadcast; DDP's gradient
buckets through a counting comm hook that then all-reduces as DDP's default does), next to the
analytic count. Cost model: all-reduces of 5 message sizes timed in the interleaved group fit
the ring formula's bandwidth and latency, (c) gives the compute time per example, and the
model's (a) epoch is printed beside the measured one (``dlskills.distributed.cost_model``).

    python benchmarks/distributed.py [--epochs 10] [--repeats 1] [--count-epochs 2]
    python benchmarks/distributed.py --figure OUT.png [--tflops 30] [--latency-us 25]

``--figure`` only draws the cost model's predicted speed-up for N = 1…1,024 workers
(ResNet-18 and a 100 M-parameter model, 10 and 100 Gbit/s) and exits.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from dlskills.distributed._base import release_data_parallel
from dlskills.train.callbacks import Callback

WORLD = 2
#: all-reduce message sizes (float32 elements) timed for the network fit
ALLREDUCE_ELEMENTS = (1, 1024, 16384, 1 << 18, 1 << 20)
ALLREDUCE_REPEATS = 25


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def recipe(epochs: int, **overrides: Any):
    """The default recipe without its weight average: the EMA swaps weights around every
    validation from mid-run on, work the hand-written loop would otherwise not do."""
    from dlskills.train.config import make_config

    settings = {"epochs": epochs, "threads": 1, "progress": False, "ema_decay": 0.0}
    return make_config({**settings, **overrides})


# -- the hand-written loop, (a) and (c) ------------------------------------------------------------
def hand_written_epoch(
    model, loader, loss_fn, optimizer, scheduler, reduce_sum
) -> dict[str, float]:
    """Train one epoch; the summed loss/accuracy over the ranks (``reduce_sum``)."""
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64)
    correct = torch.zeros((), dtype=torch.int64)
    count = 0
    for inputs, targets in loader:
        outputs = model(inputs)
        loss = loss_fn(outputs, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            loss_sum += loss.detach() * targets.shape[0]
            correct += (outputs.argmax(1) == targets).sum()
            count += targets.shape[0]
    sums = reduce_sum(torch.stack([loss_sum, correct.double(), torch.tensor(float(count))]))
    return {"train_loss": float(sums[0] / sums[2]), "train_accuracy": float(sums[1] / sums[2])}


@torch.no_grad()
def validate(model, loader) -> torch.Tensor:
    model.eval()
    loss, correct, count = 0.0, 0, 0
    for inputs, targets in loader:
        outputs = model(inputs)
        loss += float(nn.functional.cross_entropy(outputs, targets)) * targets.shape[0]
        correct += int((outputs.argmax(1) == targets).sum())
        count += targets.shape[0]
    return torch.tensor([loss / count, correct / count], dtype=torch.float64)


class HandWritten:
    """The hand-written run of one rank, its own model, optimizer and loader built from the
    recipe: ``world`` = 2 is (a) (DDP, DistributedSampler, batch 32 per rank), 1 is (c)."""

    def __init__(self, epochs: int, world: int, rank: int) -> None:
        from torch.nn.parallel import DistributedDataParallel
        from torch.utils.data import DataLoader, DistributedSampler

        from dlskills.train.runs import build

        config = recipe(epochs)
        self.parts = build(config)  # seeded: the model, data and optimizer settings of (b)
        self.world, self.rank, self.epoch = world, rank, 0
        self.sampler = None
        self.model, self.loader = self.parts.model, self.parts.train_loader
        if world > 1:
            self.sampler = DistributedSampler(
                self.parts.splits.train, num_replicas=world, rank=rank, seed=config.seed
            )
            self.loader = DataLoader(
                self.parts.splits.train,
                batch_size=config.batch_size // world,
                sampler=self.sampler,
            )
            self.model = DistributedDataParallel(self.parts.model)

    def reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            dist.all_reduce(tensor)
        return tensor

    def run_epoch(self) -> tuple[float, float, float]:
        """One epoch as the Trainer does it: (seconds, of which training before validation,
        this process's CPU seconds)."""
        started, cpu = time.perf_counter(), time.process_time()
        if self.sampler is not None:
            self.sampler.set_epoch(self.epoch)
        parts = self.parts
        hand_written_epoch(
            self.model,
            self.loader,
            parts.loss_fn,
            parts.optimizer,
            parts.scheduler,
            self.reduce_sum,
        )
        trained = time.perf_counter() - started
        measured = torch.zeros(2, dtype=torch.float64)
        if self.rank == 0:
            measured = validate(parts.model, parts.val_loader)
        if self.world > 1:
            dist.broadcast(measured, src=0)
        self.epoch += 1
        return time.perf_counter() - started, trained, time.process_time() - cpu


class Interleave(Callback):
    """The last callback of the Trainer (b) on each rank: around every Trainer epoch, one
    hand-written DDP epoch (a) and one one-process epoch (c; rank 0 trains, rank 1 waits at a
    barrier), before the Trainer epoch on even epochs and after it on odd ones, so that neither
    side always runs second. A Trainer epoch is timed from the end of the other callbacks'
    epoch-start work to the end of their epoch-end work (checkpoint saves and CSV row
    included); the saves are also timed on their own."""

    def __init__(self, hand: HandWritten, single: HandWritten | None) -> None:
        self.hand, self.single = hand, single
        keys = [f"{run}{part}" for run in "abc" for part in ("", "_train", "_cpu")]
        self.times: dict[str, list[float]] = {key: [] for key in [*keys, "saves", "saves_cpu"]}
        self.saving = self.saving_cpu = 0.0

    def on_fit_start(self, trainer) -> None:
        save = trainer.save_checkpoint

        def timed_save(path):
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return save(path)
            finally:
                self.saving += time.perf_counter() - started
                self.saving_cpu += time.process_time() - cpu

        trainer.save_checkpoint = timed_save

    def _others(self) -> None:
        dist.barrier()
        self._record("a", self.hand.run_epoch())
        dist.barrier()
        if self.single is not None:
            self._record("c", self.single.run_epoch())
        dist.barrier()

    def _record(self, key: str, seconds: tuple[float, float, float]) -> None:
        for suffix, value in zip(("", "_train", "_cpu"), seconds):
            self.times[key + suffix].append(value)

    def on_epoch_start(self, trainer) -> None:
        if trainer.epoch % 2 == 0:
            self._others()
        dist.barrier()
        self.saving_before, self.saving_cpu_before = self.saving, self.saving_cpu
        self.started, self.cpu = time.perf_counter(), time.process_time()

    def on_epoch_end(self, trainer) -> None:
        self.times["b"].append(time.perf_counter() - self.started)
        self.times["b_cpu"].append(time.process_time() - self.cpu)
        self.times["saves"].append(self.saving - self.saving_before)
        self.times["saves_cpu"].append(self.saving_cpu - self.saving_cpu_before)
        if trainer.epoch % 2 == 1:
            self._others()


def time_allreduce() -> dict[int, float]:
    """Median seconds of a float32 all-reduce of each size in ALLREDUCE_ELEMENTS."""
    medians = {}
    for elements in ALLREDUCE_ELEMENTS:
        tensor = torch.ones(elements)
        dist.all_reduce(tensor)  # first use of a size sets up buffers: not timed
        times = []
        for _ in range(ALLREDUCE_REPEATS):
            dist.barrier()
            start = time.perf_counter()
            dist.all_reduce(tensor)
            times.append(time.perf_counter() - start)
        medians[4 * elements] = statistics.median(times)
    return medians


def _rank_env(rank: int, port: int) -> None:
    os.environ.update(
        {
            "RANK": str(rank),
            "WORLD_SIZE": str(WORLD),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)


def interleaved_rank(rank: int, port: int, rounds: int, folder: str) -> None:
    """(b) = the Trainer with the ddp strategy and the callbacks `dlskills train` uses (progress
    bar off), rank 0 writing metrics.csv and checkpoints into ``folder``; (a) and (c) between its
    epochs (``Interleave``); then the all-reduce timings."""
    _rank_env(rank, port)
    try:
        interleaved_work(rank, rounds, folder)
    finally:
        gc.collect()  # as in count_rank: no object holding the group is left for exit
        dist.destroy_process_group()


def interleaved_work(rank: int, rounds: int, folder: str) -> None:
    from dlskills.distributed import create
    from dlskills.train.runs import build, default_callbacks
    from dlskills.train.trainer import Trainer

    config = recipe(rounds)
    strategy = create("ddp")
    parts = build(config, strategy)
    hand = HandWritten(rounds, WORLD, rank)
    try:
        single = HandWritten(rounds, 1, 0) if rank == 0 else None
        interleave = Interleave(hand, single)
        trainer = Trainer(
            parts.model,
            parts.optimizer,
            parts.loss_fn,
            parts.train_loader,
            parts.val_loader,
            [*default_callbacks(config, main=rank == 0), interleave],
            max_epochs=rounds,
            scheduler=parts.scheduler,
            seed=config.seed,
            run_dir=folder,
            strategy=strategy,
        )
        trainer.fit()
        allreduce = time_allreduce()
        if rank == 0:
            record = {
                **interleave.times,
                "allreduce": allreduce,
                "steps": len(hand.loader),
                "examples": len(single.loader.dataset),
                "parameter_bytes": sum(4 * p.numel() for p in parts.model.parameters()),
            }
            (Path(folder) / "interleaved.json").write_text(json.dumps(record))
    finally:
        hand.model = release_data_parallel(hand.model)


def spawn(target, *args, record: Path) -> float:
    """Run ``target(rank, *args)`` on WORLD spawned ranks; the wall time. ``record`` is the file
    rank 0 writes when its work is done: a rank killed by a signal after it exists (an abort at
    interpreter exit, "terminate called without an active exception": 5-6 runs in 30 of the
    byte-count ranks before the ranks collected their garbage before destroying the group) is
    reported, not fatal."""
    import torch.multiprocessing as mp

    started = time.perf_counter()
    try:
        mp.start_processes(target, args=args, nprocs=WORLD, join=True, start_method="spawn")
    except mp.ProcessExitedException as exc:
        if not record.exists() or exc.signal_name is None:
            raise
        print(f"note: {exc} after its results were written; the results are kept")
    return time.perf_counter() - started


# -- the runs --------------------------------------------------------------------------------------
def epoch_times(ends: list[float]) -> list[float]:
    """Per-epoch times from cumulative epoch-end times, the first (warm-up) epoch left out."""
    return [later - earlier for earlier, later in itertools.pairwise(ends)]


def run_interleaved(rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        record = Path(folder) / "interleaved.json"
        spawn(interleaved_rank, free_port(), rounds, folder, record=record)
        return json.loads(record.read_text())


def run_dlskills(epochs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        command = [
            sys.executable, "-m", "dlskills", "train", "--nproc", str(WORLD),
            "--strategy", "ddp", "--epochs", str(epochs), "--threads", "1",
            "--no-progress", "--out", str(out),
        ]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
        from dlskills.train.callbacks.csv_logger import read_metrics

        rows = read_metrics(out / "metrics.csv")
        summary = json.loads((out / "summary.json").read_text())
    return {"ends": [float(r["seconds"]) for r in rows], "wall": wall, "summary": summary}


# -- bytes -----------------------------------------------------------------------------------------
DDP_BUCKETS = "all_reduce (DDP gradient bucket)"


class CollectiveCounter:
    """Counts the tensor bytes this rank hands to torch.distributed's collectives while
    ``active`` (the functions are replaced in torch.distributed, so DDP's, the model averager's
    and dlskills' calls all pass through)."""

    WRAPPED = ("all_reduce", "broadcast", "reduce", "all_gather", "gather", "_broadcast_coalesced")

    def __init__(self) -> None:
        self.active = False
        self.calls: list[tuple[str, int]] = []
        self.original = {name: getattr(dist, name) for name in self.WRAPPED}
        for name in self.WRAPPED:
            setattr(dist, name, self._wrap(name))

    def add(self, label: str, tensors: list[torch.Tensor]) -> None:
        if self.active:
            self.calls.append((label, sum(t.numel() * t.element_size() for t in tensors)))

    def _wrap(self, name: str):
        original = self.original[name]

        def counted(*args, **kwargs):
            if name == "all_gather":
                sent = [args[1]]  # (output list, this rank's tensor)
            elif name == "_broadcast_coalesced":
                sent = list(args[1])  # (group, tensors, buffer size, source)
            else:
                sent = [args[0]]
            self.add(name, sent)
            return original(*args, **kwargs)

        return counted

    def restore(self) -> None:
        for name, function in self.original.items():
            setattr(dist, name, function)

    def ddp_hook(self, state, bucket):
        """DDP's default all-reduce of a gradient bucket (mean over ranks), counted."""
        del state
        buffer = bucket.buffer()
        self.add(DDP_BUCKETS, [buffer])
        buffer.div_(dist.get_world_size())
        work = self.original["all_reduce"](buffer, async_op=True)
        return work.get_future().then(lambda future: future.value()[0])


class CountDuringFit(Callback):
    """Counts from the start of the fit (after the strategy's set-up broadcasts) to its end;
    for ddp, through a counting comm hook on the DDP model."""

    def __init__(self, counter: CollectiveCounter, *, hook_ddp: bool) -> None:
        self.counter = counter
        self.hook_ddp = hook_ddp

    def on_fit_start(self, trainer) -> None:
        if self.hook_ddp:
            trainer.model.register_comm_hook(None, self.counter.ddp_hook)
        self.counter.active = True

    def on_fit_end(self, trainer) -> None:
        self.counter.active = False


COUNTED_STRATEGIES = (("ddp", {}), ("local-sgd", {"sync_every": 8}), ("easgd", {}))


def count_one(name: str, options: dict[str, Any], epochs: int) -> dict[str, Any]:
    """Train the recipe under strategy ``name`` with every collective counted; its record."""
    from dlskills.distributed import create
    from dlskills.train.runs import build
    from dlskills.train.trainer import Trainer

    counter = CollectiveCounter()
    strategy = create(name, **options)
    config = recipe(epochs)
    parts = build(config, strategy)
    trainer = Trainer(
        parts.model,
        parts.optimizer,
        parts.loss_fn,
        parts.train_loader,
        None,
        [CountDuringFit(counter, hook_ddp=name == "ddp")],
        max_epochs=epochs,
        scheduler=parts.scheduler,
        seed=config.seed,
        strategy=strategy,
    )
    try:
        trainer.fit()
    finally:
        counter.restore()
    parameters, buffers = list(parts.model.parameters()), list(parts.model.buffers())
    return {
        "calls": counter.calls,
        "steps": trainer.step,
        "options": strategy.options(),
        "parameter_bytes": sum(p.numel() * p.element_size() for p in parameters),
        "buffer_bytes": sum(b.numel() * b.element_size() for b in buffers),
    }


def count_rank(rank: int, port: int, epochs: int, folder: str) -> None:
    import logging

    logging.getLogger("dlskills").setLevel(logging.ERROR)  # easgd's note on AdamW's settings
    _rank_env(rank, port)
    try:
        results = {name: count_one(name, options, epochs) for name, options in COUNTED_STRATEGIES}
        if rank == 0:
            (Path(folder) / "count.json").write_text(json.dumps(results))
    finally:
        # the runs' objects sit in reference cycles that hold the group: left to the
        # interpreter's final collection, a gloo thread freeing a tensor there needs the GIL
        # and is ended mid-destructor (std::terminate: SIGABRT in about 1 run in 6)
        gc.collect()
        dist.destroy_process_group()


def analytic_bytes(name: str, record: dict[str, Any]) -> dict[str, float]:
    """The bytes of model traffic a rank hands to collectives over the counted run, by the
    strategies' rules: DDP all-reduces the gradients every step; local SGD all-reduces the
    parameters after steps H, 2H, …; synchronous EASGD broadcasts x̃ and reduces the elastic
    differences at t = 0, τ, 2τ, …; DDP (ddp, local-sgd) broadcasts rank 0's buffers before
    every forward."""
    steps, params = record["steps"], record["parameter_bytes"]
    if name == "ddp":
        model = steps * params
    elif name == "local-sgd":
        model = steps // record["options"]["sync_every"] * params
    else:
        tau = record["options"]["tau"]
        model = len(range(0, steps, tau)) * 2 * params
    buffers = steps * record["buffer_bytes"] if name in ("ddp", "local-sgd") else 0
    return {"model": model, "buffers": buffers}


def run_count(epochs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        record = Path(folder) / "count.json"
        wall = spawn(count_rank, free_port(), epochs, folder, record=record)
        result = json.loads(record.read_text())
    return {"records": result, "wall": wall}


# -- report ----------------------------------------------------------------------------------------
def ms(seconds: float) -> str:
    return f"{1000 * seconds:.1f} ms"


def spread(ratios: list[float]) -> str:
    low, median, high = statistics.quantiles(ratios, n=4)
    return f"{median:.3f} ({low:.2f}-{high:.2f})"


def report_times(interleaved: dict[str, Any], cli: list[dict[str, Any]]) -> None:
    times = {k: v[1:] for k, v in interleaved.items() if isinstance(v, list)}
    a, b, c, saves = (statistics.median(times[k]) for k in ("a", "b", "c", "saves"))
    without = [t - s for t, s in zip(times["b"], times["saves"])]
    paired = [t / h for t, h in zip(times["b"], times["a"])]
    paired_without = [t / h for t, h in zip(without, times["a"])]
    paired_single = [h / o for h, o in zip(times["a"], times["c"])]
    print(f"interleaved in one 2-rank group, {len(times['a'])} rounds after a warm-up round:")
    print(f"  (a) hand-written DDP, 2 gloo processes        {ms(a)} per epoch (median)")
    print(
        f"  (b) Trainer + ddp + `dlskills train` callbacks {ms(b)}, of which checkpoint saves "
        f"{ms(saves)}"
    )
    print(f"  (c) one process, batch 64                      {ms(c)}")
    print("  medians of the per-round ratios (quartiles):")
    print(f"  (b)/(a) = {spread(paired)}  (target ≤ 1.05)")
    print(f"  (b without its checkpoint saves)/(a) = {spread(paired_without)}")
    print(f"  (a)/(c) = {spread(paired_single)}  (2 processes on 2 cores against one; < 1: faster)")
    # CPU time of rank 0's process counts the work done, not the waits for a core or the peer:
    # a load-robust view of (b)'s overhead when other jobs share the cores
    cpu = {k: statistics.median(times[f"{k}_cpu"]) for k in ("a", "b", "c", "saves")}
    cpu_ratio = [t / h for t, h in zip(times["b_cpu"], times["a_cpu"])]
    cpu_without = [
        (t - s) / h for t, s, h in zip(times["b_cpu"], times["saves_cpu"], times["a_cpu"])
    ]
    print(
        f"  rank 0's CPU time per epoch (load-robust): (a) {ms(cpu['a'])}, (b) {ms(cpu['b'])} "
        f"of which saves {ms(cpu['saves'])}, (c) {ms(cpu['c'])}"
    )
    print(f"  by CPU time: (b)/(a) = {spread(cpu_ratio)}, without saves {spread(cpu_without)}")
    b_cli = statistics.median(t for r in cli for t in epoch_times(r["ends"]))
    wall = statistics.median(r["wall"] for r in cli)
    train = statistics.median(r["summary"]["train_seconds"] for r in cli)
    epochs = len(cli[0]["ends"])
    print(
        f"`dlskills train --nproc 2 --strategy ddp --epochs {epochs}` itself, {len(cli)} run(s), "
        "run apart from the interleaved group:"
    )
    print(
        f"  epoch time from its metrics.csv {ms(b_cli)} (median, first epoch left out; "
        f"÷ interleaved (a): {b_cli / a:.3f}); total wall {wall:.1f} s including start-up, "
        f"rendezvous and the report, of which training {train:.1f} s"
    )


def report_bytes(count: dict[str, Any], epochs: int) -> None:
    records = count["records"]
    print(
        f"\nbytes each rank hands to collectives per epoch (2 ranks, {epochs} epoch(s) counted, "
        f"{records['ddp']['parameter_bytes']:,} parameter bytes, "
        f"{records['ddp']['buffer_bytes']:,} buffer bytes):"
    )
    header = f"  {'strategy':<22} {'model, measured':>16} {'analytic':>12} {'÷ ddp':>7}"
    print(header + f" {'buffers (DDP)':>14} {'other':>7}")
    ddp_model = None
    for name, record in records.items():
        expected = analytic_bytes(name, record)
        model, buffers, other = split_traffic(record)
        ddp_model = model if name == "ddp" else ddp_model
        label = name + (f" H={record['options']['sync_every']}" if name == "local-sgd" else "")
        label += f" tau={record['options']['tau']}" if name == "easgd" else ""
        print(
            f"  {label:<22} {model / epochs:>16,.0f} {expected['model'] / epochs:>12,.0f} "
            f"{model / ddp_model:>7.3f} {buffers / epochs:>14,.0f} {other / epochs:>7,.0f}"
        )
    print(
        "  (model: calls carrying the gradients or parameters (DDP's buckets, the averager's and "
        "EASGD's flat buffers); buffers: BatchNorm statistics DDP broadcasts before every "
        "forward (analytic "
        f"{analytic_bytes('ddp', records['ddp'])['buffers'] / epochs:,.0f}); other: the "
        "epoch's metric sums)"
    )


def split_traffic(record: dict[str, Any]) -> tuple[int, int, int]:
    """(model, buffers, other) bytes of a counted run: calls carrying at least the parameters'
    bytes are model traffic, DDP's coalesced broadcasts are buffers."""
    model = buffers = other = 0
    for label, size in record["calls"]:
        if label == "_broadcast_coalesced":
            buffers += size
        elif label == DDP_BUCKETS or size >= record["parameter_bytes"]:
            model += size
        else:
            other += size
    return model, buffers, other


def report_model(interleaved: dict[str, Any]) -> None:
    from dlskills.distributed.cost_model import CostModel

    sizes = sorted(int(size) for size in interleaved["allreduce"])
    seconds = [interleaved["allreduce"][str(size)] for size in sizes]
    c_train = statistics.median(interleaved["c_train"][1:])
    a_train = statistics.median(interleaved["a_train"][1:])
    model = CostModel.fitted(
        one_process_seconds=c_train,
        examples=interleaved["examples"],
        parameter_bytes=interleaved["parameter_bytes"],
        allreduce_sizes=sizes,
        allreduce_seconds=seconds,
        workers=WORLD,
    )
    print("\ncost model fitted on this run (dlskills.distributed.cost_model):")
    print(
        "  all-reduce on 2 gloo ranks (127.0.0.1), median of 25: "
        + ", ".join(f"{size:,} B {1e6 * t:.0f} us" for size, t in zip(sizes, seconds))
    )
    print(
        f"  fit: bandwidth {model.network.bandwidth / 1e6:.0f} MB/s, latency "
        f"{1e6 * model.network.latency:.0f} us per message; compute "
        f"{1e6 * model.seconds_per_example:.0f} us per example ((c)'s training part)"
    )
    steps, per_rank = interleaved["steps"], 64 // WORLD
    compute = model.compute_seconds(per_rank)
    communication = model.step_seconds("ddp", WORLD, per_rank) - compute
    print(
        f"  (a)'s training part per epoch: predicted {ms(steps * (compute + communication))} "
        f"({steps} steps x (compute {ms(compute)} + all-reduce {ms(communication)})), "
        f"measured {ms(a_train)} ({ms(a_train / steps)} per step)"
    )
    # the other direction: the compute per example that makes the model reproduce (a)
    from_a = (a_train / steps - communication) / per_rank
    print(
        f"  compute per example fitted to (a) instead: {1e6 * from_a:.0f} us, "
        f"{from_a / model.seconds_per_example:.2f}x (c)'s: what two processes on the machine's "
        "shared cores cost each other"
    )


# -- the figure ------------------------------------------------------------------------------------
#: (label, parameters, training FLOPs per example, per-worker batch)
FIGURE_MODELS = (
    # ResNet-18 on 224x224 images: 1.82 G multiply-adds forward (He et al. 2016, Table 1),
    # x 2 FLOPs each, x 3 for forward + backward
    ("ResNet-18 (11.7 M parameters, batch 32 per worker)", 11_689_512, 3 * 2 * 1.82e9, 32),
    # a 100 M-parameter transformer on 512-token sequences: 6 FLOPs per parameter per token
    ("100 M parameters (transformer, 8 x 512 tokens per worker)", 100_000_000, 6e8 * 512, 8),
)
FIGURE_LINKS_GBIT = (10, 100)
FIGURE_STRATEGIES = (
    ("ddp", 1, "tab:blue", "ddp (ring all-reduce)"),
    ("local-sgd", 8, "tab:green", "local-sgd, H = 8"),
    ("parameter-server", 1, "tab:red", "parameter server"),
)


def draw_figure(path: str, tflops: float, latency_us: float) -> None:
    from matplotlib.ticker import FuncFormatter

    from dlskills._plot import new_figure, save_figure
    from dlskills.distributed.cost_model import CostModel, Network

    workers = [2**k for k in range(11)]
    fig, axes = new_figure(1, 2, size=(5.6, 4.4))
    for ax, (title, parameters, flops, batch) in zip(axes[0], FIGURE_MODELS):
        ax.plot(workers, workers, color="0.6", linestyle=":", label="ideal (no communication)")
        for gbit, style in zip(FIGURE_LINKS_GBIT, ("--", "-")):
            network = Network.gbit(gbit, latency=latency_us * 1e-6)
            model = CostModel(flops / (tflops * 1e12), 4 * parameters, network)
            for strategy, period, colour, label in FIGURE_STRATEGIES:
                speedups = [model.speedup(strategy, n, batch, period=period) for n in workers]
                ax.plot(
                    workers,
                    speedups,
                    color=colour,
                    linestyle=style,
                    label=f"{label}, {gbit} Gbit/s",
                )
        compute = model.compute_seconds(batch)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.set_xlabel("workers N")
        ax.set_ylabel("speed-up over one worker (examples/s ratio)")
        ax.set_title(f"{title}\ncompute {1000 * compute:.1f} ms per step", fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=6.5, loc="upper left")
    fig.suptitle(
        f"Predicted data-parallel speed-up (cost model; {tflops:g} TFLOP/s sustained per worker, "
        f"{latency_us:g} us per message, float32 gradients, no overlap)",
        fontsize=9,
    )
    save_figure(fig, path)
    print(f"figure: {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--epochs", type=int, default=10, help="interleaved rounds, and epochs of each CLI run"
    )
    parser.add_argument("--repeats", type=int, default=1, help="`dlskills train` runs")
    parser.add_argument("--count-epochs", type=int, default=2, help="epochs of the bytes runs")
    parser.add_argument("--figure", metavar="PNG", help="only draw the scaling figure there")
    parser.add_argument("--tflops", type=float, default=30.0, help="figure: TFLOP/s per worker")
    parser.add_argument("--latency-us", type=float, default=25.0, help="figure: us per message")
    args = parser.parse_args(argv)
    limits = {"epochs": 2, "repeats": 1, "count_epochs": 1}
    for option, least in limits.items():
        if getattr(args, option) < least:
            parser.error(f"--{option.replace('_', '-')} must be ≥ {least}")
    if not args.tflops > 0 or not args.latency_us >= 0:
        parser.error("--tflops must be > 0 and --latency-us ≥ 0")
    if args.figure:
        draw_figure(args.figure, args.tflops, args.latency_us)
        return 0

    torch.set_num_threads(1)
    interleaved = run_interleaved(args.epochs)
    print("interleaved (a)/(b)/(c) group done", flush=True)
    cli = []
    for repeat in range(args.repeats):
        cli.append(run_dlskills(args.epochs))
        print(f"dlskills train run {repeat + 1}/{args.repeats} done", flush=True)
    count = run_count(args.count_epochs)
    print(
        f"\nmodel cnn on digits, global batch 64 ({64 // WORLD} per rank), "
        f"{interleaved['steps']} steps per epoch, 1 thread per process, {os.cpu_count()} cores, "
        f"torch {torch.__version__}"
    )
    report_times(interleaved, cli)
    report_bytes(count, args.count_epochs)
    report_model(interleaved)
    return 0


if __name__ == "__main__":
    sys.exit(main())
