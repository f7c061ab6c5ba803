"""Distributed training on 2 gloo processes: `dlskills train --nproc 2` against a hand-written
DDP loop and one process, the bytes each strategy communicates, and a fitted cost model.

All three timed runs train the default `dlskills train` recipe (the small CNN on digits, AdamW,
cosine schedule, global batch 64, one torch thread per process) and do the same work per epoch:
forward, loss, backward, step, schedule step, the epoch's mean training loss and accuracy summed
over the ranks, and a validation pass on rank 0 whose result every rank receives.

    (a) hand-written DDP: torch.multiprocessing (spawn), gloo on 127.0.0.1, DistributedSampler
        (set_epoch each epoch), DistributedDataParallel, batch 32 per rank
    (b) `dlskills train --nproc 2 --strategy ddp` as a user runs it (progress bar off): the epoch
        times come from its metrics.csv (the Trainer's clock, after start-up); the total wall
        time, start-up and the run report included, is printed apart
    (b') the Trainer, ddp strategy and default callbacks of (b) less ModelCheckpoint, in a
        spawned group like (a): (b) − (b') is what the per-epoch checkpoint saves cost
    (c) one process, the hand-written loop without DDP, batch 64: the same total work

The runs alternate (c, a, b', b, then b, b', a, c, …) so machine-load drift hits all alike;
each run's first epoch is a warm-up and is not counted; the figures are medians over the rest.
Printed: (b)/(a) (target ≤ 1.05), (b')/(a) and (a)/(c).

Bytes: the dlskills strategies ddp, local-sgd (H = 8) and easgd (its default τ) train the same
recipe in one 2-process group with every torch.distributed collective counted (tensor bytes
each rank hands to all_reduce, broadcast, reduce, all_gather, gather, and DDP's buffer
broadcast; DDP's gradient buckets through a counting comm hook that then all-reduces as DDP's
default does), next to the analytic count. Cost model: the all-reduce time of 5 message sizes
in the (a) group fits the ring formula's bandwidth and latency, (c) gives the compute time per
example, and the model's (a) epoch is printed beside the measured one
(``dlskills.distributed.cost_model``).

    python benchmarks/distributed.py [--epochs 6] [--repeats 2] [--count-epochs 2]
    python benchmarks/distributed.py --figure OUT.png [--tflops 30] [--latency-us 25]

``--figure`` only draws the cost model's predicted speed-up for N = 1…1,024 workers
(ResNet-18 and a 100 M-parameter model, 10 and 100 Gbit/s) and exits.
"""

from __future__ import annotations

import argparse
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
    from dlskills.train.config import make_config

    return make_config({"epochs": epochs, "threads": 1, "progress": False, **overrides})


# -- the hand-written loop, (a) and (c) ------------------------------------------------------------
def hand_written_epoch(model, loader, optimizer, scheduler, reduce_sum) -> dict[str, float]:
    """Train one epoch; the summed loss/accuracy over the ranks (``reduce_sum``)."""
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64)
    correct = torch.zeros((), dtype=torch.int64)
    count = 0
    for inputs, targets in loader:
        outputs = model(inputs)
        loss = nn.functional.cross_entropy(outputs, targets)
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


def timed_loop(epochs: int, world: int, rank: int) -> dict[str, Any]:
    """The hand-written run on this rank: epoch-end times (after validation), training parts."""
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader, DistributedSampler

    from dlskills.train.runs import build

    config = recipe(epochs)
    parts = build(config)  # seeded: the same model, data and optimizer settings as (b)
    if world == 1:
        model, loader, sampler = parts.model, parts.train_loader, None
        reduce_sum = lambda tensor: tensor  # noqa: E731
    else:
        sampler = DistributedSampler(
            parts.splits.train, num_replicas=world, rank=rank, shuffle=True, seed=config.seed
        )
        loader = DataLoader(
            parts.splits.train, batch_size=config.batch_size // world, sampler=sampler
        )
        model = DistributedDataParallel(parts.model)

        def reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
            dist.all_reduce(tensor)
            return tensor

    ends, train_seconds = [], []
    started = time.perf_counter()
    for epoch in range(epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        epoch_start = time.perf_counter()
        hand_written_epoch(model, loader, parts.optimizer, parts.scheduler, reduce_sum)
        train_seconds.append(time.perf_counter() - epoch_start)
        measured = validate(parts.model, parts.val_loader) if rank == 0 else torch.zeros(2)
        if world > 1:
            dist.broadcast(measured.double(), src=0)
        ends.append(time.perf_counter() - started)
    return {
        "ends": ends,
        "train_seconds": train_seconds,
        "examples": len(loader.dataset) if sampler is None else len(sampler),
        "steps": len(loader),
    }


def time_allreduce() -> dict[int, float]:
    """Median seconds of a float32 all-reduce of each size in ALLREDUCE_ELEMENTS."""
    medians = {}
    for elements in ALLREDUCE_ELEMENTS:
        tensor = torch.ones(elements)
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


def hand_ddp_rank(rank: int, port: int, epochs: int, folder: str) -> None:
    _rank_env(rank, port)
    try:
        joined = time.perf_counter()
        result = timed_loop(epochs, WORLD, rank)
        result["allreduce"] = time_allreduce()
        result["setup_seconds"] = joined
        if rank == 0:
            (Path(folder) / "hand.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def trainer_rank(rank: int, port: int, epochs: int, folder: str) -> None:
    """(b) without its checkpoints: the Trainer, the ddp strategy and the default callbacks of
    `dlskills train` less ModelCheckpoint, in this group (isolates what the saves cost)."""
    from dlskills.distributed import create
    from dlskills.train.callbacks import ModelCheckpoint
    from dlskills.train.runs import build, default_callbacks
    from dlskills.train.trainer import Trainer

    _rank_env(rank, port)
    try:
        config = recipe(epochs)
        strategy = create("ddp")
        parts = build(config, strategy)
        callbacks = [
            c
            for c in default_callbacks(config, main=rank == 0)
            if not isinstance(c, ModelCheckpoint)
        ]
        trainer = Trainer(
            parts.model,
            parts.optimizer,
            parts.loss_fn,
            parts.train_loader,
            parts.val_loader,
            callbacks,
            max_epochs=epochs,
            scheduler=parts.scheduler,
            seed=config.seed,
            run_dir=folder,
            strategy=strategy,
        )
        trainer.fit()
        if rank == 0:
            ends = [row["seconds"] for row in trainer.history]
            (Path(folder) / "trainer.json").write_text(json.dumps({"ends": ends}))
    finally:
        dist.destroy_process_group()


def spawn(target, *args) -> float:
    """Run ``target(rank, *args)`` on WORLD spawned ranks; the wall time."""
    import torch.multiprocessing as mp

    started = time.perf_counter()
    mp.start_processes(target, args=args, nprocs=WORLD, join=True, start_method="spawn")
    return time.perf_counter() - started


# -- the runs --------------------------------------------------------------------------------------
def epoch_times(ends: list[float]) -> list[float]:
    """Per-epoch times from cumulative epoch-end times, the first (warm-up) epoch left out."""
    return [later - earlier for earlier, later in itertools.pairwise(ends)]


def run_hand_ddp(epochs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        wall = spawn(hand_ddp_rank, free_port(), epochs, folder)
        result = json.loads((Path(folder) / "hand.json").read_text())
    result["wall"] = wall
    return result


def run_trainer_without_checkpoints(epochs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        spawn(trainer_rank, free_port(), epochs, folder)
        return json.loads((Path(folder) / "trainer.json").read_text())


def run_one_process(epochs: int) -> dict[str, Any]:
    torch.set_num_threads(1)
    return timed_loop(epochs, 1, 0)


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


def count_rank(rank: int, port: int, epochs: int, folder: str) -> None:
    import logging

    from dlskills.distributed import create
    from dlskills.train.runs import build
    from dlskills.train.trainer import Trainer

    logging.getLogger("dlskills").setLevel(logging.ERROR)  # easgd's note on AdamW's settings
    _rank_env(rank, port)
    results = {}
    try:
        for name, options in COUNTED_STRATEGIES:
            counter = CollectiveCounter()

            strategy = create(name, **options)
            # no warm-up: the default one starts at lr 0, which the EASGD worker step rejects
            # (dlskills.optim.easgd.worker_step_ checks lr > 0); the bytes do not depend on it
            config = recipe(epochs, warmup_steps=0)
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
            results[name] = {
                "calls": counter.calls,
                "steps": trainer.step,
                "options": strategy.options(),
                "parameter_bytes": sum(p.numel() * p.element_size() for p in parameters),
                "buffer_bytes": sum(b.numel() * b.element_size() for b in buffers),
            }
        if rank == 0:
            (Path(folder) / "count.json").write_text(json.dumps(results))
    finally:
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
        wall = spawn(count_rank, free_port(), epochs, folder)
        result = json.loads((Path(folder) / "count.json").read_text())
    return {"records": result, "wall": wall}


# -- report ----------------------------------------------------------------------------------------
def ms(seconds: float) -> str:
    return f"{1000 * seconds:.1f} ms"


def median_epoch(runs: list[dict[str, Any]]) -> float:
    return statistics.median(t for r in runs for t in epoch_times(r["ends"]))


def report_times(hand: list, dlskills: list, bare: list, single: list) -> None:
    a, b, b_bare, c = (median_epoch(runs) for runs in (hand, dlskills, bare, single))
    print(f"per-epoch time, median over {len(hand)} run(s) x (epochs - 1):")
    print(f"  (a)  hand-written DDP, 2 gloo processes         {ms(a)}")
    print(f"  (b)  dlskills train --nproc 2 --strategy ddp    {ms(b)}")
    print(f"  (b') the same Trainer without its checkpoints   {ms(b_bare)}")
    print(f"  (c)  one process, batch 64                      {ms(c)}")
    print(f"(b)/(a)  = {b / a:.3f}  (target ≤ 1.05)")
    print(f"(b')/(a) = {b_bare / a:.3f}  (b - b' = {ms(b - b_bare)} per epoch: best + last saves)")
    print(f"(a)/(c)  = {a / c:.3f}  (2 processes on 2 cores against one: < 1 is a speed-up)")
    wall_a = statistics.median(r["wall"] for r in hand)
    wall_b = statistics.median(r["wall"] for r in dlskills)
    print(
        f"total wall incl. start-up: (a) spawn + init + train {wall_a:.1f} s, (b) the command "
        f"{wall_b:.1f} s (train_seconds in its summary "
        f"{statistics.median(r['summary']['train_seconds'] for r in dlskills):.1f} s)"
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


def report_model(hand: list, single: list, parameter_bytes: int) -> None:
    from dlskills.distributed.cost_model import CostModel

    run_c, run_a = single[0], hand[0]
    c_train = statistics.median(t for r in single for t in r["train_seconds"][1:])
    a_train = statistics.median(t for r in hand for t in r["train_seconds"][1:])
    sizes = [int(s) for s in run_a["allreduce"]]
    seconds = [statistics.median(r["allreduce"][str(s)] for r in hand) for s in sizes]
    model = CostModel.fitted(
        one_process_seconds=c_train,
        examples=run_c["examples"],
        parameter_bytes=parameter_bytes,
        allreduce_sizes=sizes,
        allreduce_seconds=seconds,
        workers=WORLD,
    )
    print("\ncost model fitted on this run (dlskills.distributed.cost_model):")
    print(
        "  all-reduce on 2 gloo ranks (127.0.0.1): "
        + ", ".join(f"{s:,} B {1e6 * t:.0f} us" for s, t in zip(sizes, seconds))
    )
    print(
        f"  fit: bandwidth {model.network.bandwidth / 1e6:.0f} MB/s, latency "
        f"{1e6 * model.network.latency:.0f} us per message; compute "
        f"{1e6 * model.seconds_per_example:.0f} us per example (one process)"
    )
    steps = run_a["steps"]
    per_rank = 64 // WORLD
    predicted = steps * model.step_seconds("ddp", WORLD, per_rank)
    print(
        f"  (a)'s training part per epoch: predicted {ms(predicted)} "
        f"({steps} steps x (compute {ms(model.compute_seconds(per_rank))} + all-reduce "
        f"{ms(model.step_seconds('ddp', WORLD, per_rank) - model.compute_seconds(per_rank))})), "
        f"measured {ms(a_train)}"
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
    parser.add_argument("--epochs", type=int, default=6, help="epochs per timed run (≥ 2)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each of (a)-(c)")
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
    hand, dlskills, bare, single = [], [], [], []
    runs = {
        "a": (run_hand_ddp, hand),
        "b": (run_dlskills, dlskills),
        "B": (run_trainer_without_checkpoints, bare),
        "c": (run_one_process, single),
    }
    for repeat in range(args.repeats):
        order = "caBb" if repeat % 2 == 0 else "bBac"
        for key in order:
            run, results = runs[key]
            results.append(run(args.epochs))
            name = "b'" if key == "B" else key
            print(f"repeat {repeat + 1}/{args.repeats}: ({name}) done", flush=True)
    print(
        f"\nmodel cnn on digits, global batch 64 ({64 // WORLD} per rank), "
        f"{hand[0]['steps']} steps per epoch, 1 thread per process, {os.cpu_count()} cores, "
        f"{args.epochs} epochs per run, {args.repeats} run(s) each, torch {torch.__version__}"
    )
    report_times(hand, dlskills, bare, single)
    count = run_count(args.count_epochs)
    report_bytes(count, args.count_epochs)
    report_model(hand, single, count["records"]["ddp"]["parameter_bytes"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
