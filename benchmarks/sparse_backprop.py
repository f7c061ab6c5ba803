"""Backward wall time of memorized sparse backprop against dense backprop (catalog 1905.10194).

An MLP 784-W-W-10 (the paper's MNIST shape at W = 500) with both hidden layers MSBP (top
``--ratio`` of the units, memory ratio 0.8; the output layer dense), batch B of random inputs.
Per (W, B): the median over rounds of one backward pass (the forward is not timed), dense and
MSBP interleaved within each round so load drift hits both; the ratio dense / MSBP beside the
ratio of backward multiply-adds (the layers' counters). One torch thread unless ``--threads``.

    python benchmarks/sparse_backprop.py [--widths 500 2000] [--batches 32 256] [--rounds 30]
                                         [--ratio 0.04] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from dlskills.nn.sparse_backprop import backprop_memories
from dlskills.repro.msbp_1905_10194 import msbp_mlp


def backward_medians(width: int, batch: int, ratio: float, rounds: int) -> tuple[float, ...]:
    """(dense seconds, MSBP seconds, MAC ratio) of one backward pass, medians over rounds."""
    x, y = torch.randn(batch, 784), torch.randint(0, 10, (batch,))
    models = {
        "dense": msbp_mlp(None, inputs=784, width=width),
        "msbp": msbp_mlp(0.8, inputs=784, width=width, ratio=ratio),
    }
    times: dict[str, list[float]] = {name: [] for name in models}
    for round_ in range(rounds + 2):  # two warm-up rounds
        for name, model in models.items():
            loss = F.cross_entropy(model(x), y)
            model.zero_grad(set_to_none=True)
            start = time.perf_counter()
            loss.backward()
            if round_ >= 2:
                times[name].append(time.perf_counter() - start)
    memories = backprop_memories(models["msbp"])
    macs = sum(m.dense_backward_macs for m in memories) / sum(m.backward_macs for m in memories)
    return statistics.median(times["dense"]), statistics.median(times["msbp"]), macs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--ratio", type=float, default=0.04)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"{'W':>5} {'B':>5} {'dense ms':>9} {'MSBP ms':>8} {'speed-up':>9} {'MACs ratio':>11}")
    for width in args.widths:
        for batch in args.batches:
            dense, msbp, macs = backward_medians(width, batch, args.ratio, args.rounds)
            print(
                f"{width:>5} {batch:>5} {1e3 * dense:>9.3f} {1e3 * msbp:>8.3f} "
                f"{dense / msbp:>8.2f}x {macs:>10.1f}x"
            )


if __name__ == "__main__":
    main()
