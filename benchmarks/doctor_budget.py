"""Doctor budget: wall time of `doctor(model, loader, loss)` with the default budget on models of
~100 k parameters and 512 examples (target ≤ 10 s on 2 cores), per stage.

Models (all on 512 scikit-learn digits, pixels standardised with the std floored at 0.1, batch
64, a 256-digit validation loader):

    healthy     MLP 64-256-256-10 (ReLU, He init), 85 k parameters
    deep-tanh   MLP 64-[64]x24-10 (tanh, weights N(0, 0.03²/fan_in)), 100 k: the issue's model
                whose signal and gradients go subnormal
    deep-tanh-0.2  the same at 0.2x the unit scale (|g|/|W| ~ 1e-17, no subnormals at init)

Each model runs ``--rounds`` times (median reported, per-stage medians too). Wall times on a
shared machine move with its load: compare numbers taken in one run. ``--unflushed``
also runs the deep-tanh model with ``flush_denormal=False`` and its threads untouched — the
doctor before the fix — for the ratio (slow: tens of seconds).

    python benchmarks/doctor_budget.py [--rounds 3] [--threads N] [--unflushed]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

import torch
from torch import nn


def _mlp(widths: list[int], activation: type[nn.Module], scale: float | None) -> nn.Module:
    layers: list[nn.Module] = []
    fan_in = 64
    for width in widths:
        layers += [nn.Linear(fan_in, width), activation()]
        fan_in = width
    layers.append(nn.Linear(fan_in, 10))
    model = nn.Sequential(*layers)
    if scale is not None:
        for module in model.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=scale / math.sqrt(module.in_features))
                nn.init.zeros_(module.bias)
    return model


MODELS = {
    "healthy": lambda: _mlp([256, 256], nn.ReLU, math.sqrt(2.0)),
    "deep-tanh": lambda: _mlp([64] * 24, nn.Tanh, 0.03),
    "deep-tanh-0.2": lambda: _mlp([64] * 24, nn.Tanh, 0.2),
}


def _loaders(n: int = 512) -> tuple[object, object]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = torch.randperm(len(digits.target), generator=torch.Generator().manual_seed(0))
    x = torch.tensor(digits.data, dtype=torch.float32)[order] / 16.0
    x = (x - x[:n].mean(0)) / x[:n].std(0).clamp_min(0.1)
    y = torch.tensor(digits.target)[order]
    train = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x[:n], y[:n]),
        batch_size=64,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    return train, [(x[n : n + 256], y[n : n + 256])]


def _run(name: str, rounds: int, **kwargs: object) -> tuple[float, dict[str, float], str]:
    from dlskills._progress import Progress
    from dlskills.diagnose import doctor

    train, val = _loaders()
    totals, stages = [], []
    cause = ""
    with Progress(name, rounds, unit="round") as progress:
        for _ in range(rounds):
            torch.manual_seed(0)
            model = MODELS[name]()
            start = time.perf_counter()
            diagnosis = doctor(model, train, nn.CrossEntropyLoss(), val_loader=val, **kwargs)
            totals.append(time.perf_counter() - start)
            stages.append(diagnosis.details["timings"])
            cause = diagnosis.causes[0].text if diagnosis.causes else "none"
            progress.advance(f"doctor {totals[-1]:.1f} s")
    median_stages = {k: statistics.median(s[k] for s in stages) for k in stages[0]}
    return statistics.median(totals), median_stages, cause


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: as is)")
    parser.add_argument("--target", type=float, default=10.0)
    parser.add_argument("--unflushed", action="store_true")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, rounds {args.rounds}")
    worst = 0.0
    results = {}
    for name in MODELS:
        params = sum(p.numel() for p in MODELS[name]().parameters())
        total, stages, cause = _run(name, args.rounds)
        results[name] = total
        worst = max(worst, total)
        parts = ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
        print(f"{name:<14} {params:>7} params  {total:6.2f} s  ({parts})  cause: {cause}")
    if args.unflushed:
        total, stages, _ = _run("deep-tanh", 1, flush_denormal=False)
        parts = ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
        print(f"{'deep-tanh unflushed':<22} {total:6.2f} s  ({parts})")
        print(f"unflushed / flushed: {total / results['deep-tanh']:.1f}x")
    verdict = "OK" if worst <= args.target else "OVER"
    print(f"slowest {worst:.2f} s; target <= {args.target:g} s: {verdict}")
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
