"""Doctor callbacks overhead: training with GradientFlowCallback + ActivationStatsCallback
(both sampling every 50 steps) against the same training with no callbacks.

Both arms train their own copy of the default `dlskills train` model on digits with the same
optimizer and batch size. Epochs are interleaved in one process (one epoch with the callbacks,
one without, alternating which goes first) so machine-load drift hits both alike; each epoch is
one ``Trainer(..., max_epochs=1).fit()`` on the arm's persistent model and optimizer, without a
validation pass (so the ratio is not diluted). The step counter restarts every epoch, so with
~79 steps per epoch the callbacks sample at steps 0 and 50: slightly more often than every 50.
Prints each round's ratio, the median per-epoch times and their ratio (target ≤ 1.10).

    python benchmarks/doctor_overhead.py [--rounds 12] [--model cnn] [--every 50] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import torch
from torch import nn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--target", type=float, default=1.10)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from dlskills import data, models
    from dlskills.diagnose.activations import ActivationStatsCallback
    from dlskills.diagnose.gradient_flow import GradientFlowCallback
    from dlskills.train import Trainer

    splits = data.load("digits", seed=0)
    train_loader, _, _ = splits.loaders(args.batch_size, seed=0)
    torch.manual_seed(0)
    base = models.create(
        args.model, input_shape=tuple(splits.input_shape), num_classes=splits.output_dim
    )
    arms = {}
    for name in ("off", "on"):
        model = copy.deepcopy(base)
        arms[name] = (model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9))
    gradient_flow = GradientFlowCallback(every=args.every, plot=False)
    activations = ActivationStatsCallback(every=args.every, plot=False)

    def epoch(name: str) -> float:
        model, optimizer = arms[name]
        callbacks = [gradient_flow, activations] if name == "on" else []
        trainer = Trainer(
            model,
            optimizer,
            nn.functional.cross_entropy,
            train_loader,
            callbacks=callbacks,
            max_epochs=1,
            seed=0,
        )
        start = time.perf_counter()
        trainer.fit()
        return time.perf_counter() - start

    epoch("off"), epoch("on")  # warm-up: allocator, first hook registration, lazy imports
    times: dict[str, list[float]] = {"off": [], "on": []}
    ratios = []
    for round_index in range(args.rounds):
        order = ("off", "on") if round_index % 2 == 0 else ("on", "off")
        measured = {name: epoch(name) for name in order}
        for name, seconds in measured.items():
            times[name].append(seconds)
        ratios.append(measured["on"] / measured["off"])
        print(
            f"round {round_index + 1:2d}: off {measured['off'] * 1e3:7.1f} ms  "
            f"on {measured['on'] * 1e3:7.1f} ms  ratio {ratios[-1]:.3f}"
        )
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    ratio = statistics.median(ratios)
    steps = len(train_loader)
    print(
        f"model {args.model}, {steps} steps/epoch, sampling every {args.every} steps, "
        f"{len(gradient_flow.history)} gradient-flow and {len(activations.history)} activation "
        "samples"
    )
    print(f"median epoch: off {off * 1e3:.1f} ms, on {on * 1e3:.1f} ms")
    verdict = "PASS" if ratio <= args.target else "FAIL"
    print(f"per-epoch ratio (median of rounds) {ratio:.3f} (target <= {args.target}) {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
