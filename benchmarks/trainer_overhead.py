"""Trainer overhead: the Trainer (progress bar drawing + CSV logger on) against a hand-written loop.

Both train the same model (the default `dlskills train` model, on digits) with the same optimizer
and batches, and do the same work per epoch: forward, loss, backward, step, schedule step, the
epoch's mean training loss and accuracy, and a validation pass. Epochs are interleaved in one
process (one Trainer epoch, then one hand-written epoch, ...) so machine-load drift hits both
alike: a last callback ends the timing of each Trainer epoch (after every other callback's
epoch-end work), and runs one hand-written epoch before or after it (alternating). Prints the
per-epoch times and the median of the per-round time ratios (target ≤ 1.05).

    python benchmarks/trainer_overhead.py [--rounds 20] [--model cnn] [--threads 1]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn


def hand_written_epoch(model, optimizer, scheduler, train_loader, val_loader) -> dict[str, float]:
    """The loop a user writes to get the same numbers the Trainer reports."""
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64)
    correct = torch.zeros((), dtype=torch.int64)
    count = 0
    for inputs, targets in train_loader:
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
    model.eval()
    val_loss, val_correct, val_count = 0.0, 0, 0
    with torch.no_grad():
        for inputs, targets in val_loader:
            outputs = model(inputs)
            val_loss += nn.functional.cross_entropy(outputs, targets).item() * targets.shape[0]
            val_correct += int((outputs.argmax(1) == targets).sum())
            val_count += targets.shape[0]
    model.train()
    return {
        "train_loss": float(loss_sum) / count,
        "train_accuracy": int(correct) / count,
        "val_loss": val_loss / val_count,
        "val_accuracy": val_correct / val_count,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="interleaved epochs of each")
    parser.add_argument("--model", default=None, help="model name (default: the train default)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args(argv)

    from rich.console import Console

    from dlskills.train import Trainer
    from dlskills.train.callbacks import Callback, CSVLogger, ProgressBar
    from dlskills.train.config import make_config
    from dlskills.train.runs import build

    overrides = {
        "progress": False,
        "nan_policy": "off",
        "epochs": args.rounds + 1,
        "threads": args.threads,
    }
    if args.model:
        overrides["model"] = args.model
    config = make_config(overrides)
    trainer_parts, hand_parts = build(config), build(config)
    hand_parts.model.load_state_dict(trainer_parts.model.state_dict())

    trainer_times: list[float] = []
    hand_times: list[float] = []

    def timed_hand_epoch() -> None:
        start = time.perf_counter()
        hand_written_epoch(
            hand_parts.model,
            hand_parts.optimizer,
            hand_parts.scheduler,
            hand_parts.train_loader,
            hand_parts.val_loader,
        )
        hand_times.append(time.perf_counter() - start)

    class Interleave(Callback):
        """Last callback: times each Trainer epoch from its start to the end of every other
        callback's epoch-end work, and runs one hand-written epoch just before (even epochs) or
        just after (odd epochs) it, so neither side always runs second."""

        def on_epoch_start(self, trainer: Trainer) -> None:
            if trainer.epoch % 2 == 0:
                timed_hand_epoch()
            self.started = time.perf_counter()

        def on_epoch_end(self, trainer: Trainer) -> None:
            trainer_times.append(time.perf_counter() - self.started)
            if trainer.epoch % 2 == 1:
                timed_hand_epoch()

    with tempfile.TemporaryDirectory() as folder:
        console = Console(file=io.StringIO(), force_terminal=True, width=120)
        callbacks = [
            CSVLogger(Path(folder) / "metrics.csv"),
            ProgressBar(enabled=True, console=console),
            Interleave(),
        ]
        Trainer(
            trainer_parts.model,
            trainer_parts.optimizer,
            trainer_parts.loss_fn,
            trainer_parts.train_loader,
            trainer_parts.val_loader,
            callbacks,
            max_epochs=args.rounds + 1,
            scheduler=trainer_parts.scheduler,
            seed=config.seed,
        ).fit()
    # epoch 1 warms both up and is not counted
    trainer_times, hand_times = trainer_times[1:], hand_times[1:]
    ratios = [t / h for t, h in zip(trainer_times, hand_times)]

    trainer_median, hand_median = statistics.median(trainer_times), statistics.median(hand_times)
    print(
        f"model {config.model} on {config.dataset}, batch {config.batch_size}, "
        f"{len(trainer_parts.train_loader)} steps/epoch, {torch.get_num_threads()} thread(s), "
        f"{args.rounds} interleaved rounds"
    )
    print(
        f"epoch time, median (min): hand-written {1000 * hand_median:.1f} "
        f"({1000 * min(hand_times):.1f}) ms, Trainer + progress + CSV {1000 * trainer_median:.1f} "
        f"({1000 * min(trainer_times):.1f}) ms"
    )
    print(
        f"ratio of medians {trainer_median / hand_median:.3f}, ratio of minima "
        f"{min(trainer_times) / min(hand_times):.3f}"
    )
    # pairing each Trainer epoch with its neighbouring hand-written epoch cancels slow drifts in
    # machine load; the median discards epochs hit by a burst of load
    print(
        f"Trainer / hand-written: {statistics.median(ratios):.3f} (median of per-round ratios; "
        "target ≤ 1.05)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
