"""Reproduction of catalog 1211.5063: Pascanu, Mikolov & Bengio, "On the difficulty of training
Recurrent Neural Networks" (2012).

Claim: on long-term tasks the gradients of a vanilla RNN explode — a step can throw the
parameters off a "wall" of the error surface — and rescaling the gradient to a norm threshold
(Algorithm 1) lets SGD train where it otherwise fails: on the pathological synthetic problems
(adding, temporal order, …, T = 50–200) SGD with clipping succeeds more often than SGD.

Protocol: the adding task at T = 50 (``dlskills.data.long_term.adding``, 2000 sequences split
70/15/15; the trivial predictor's MSE is 1/6), a tanh RNN of 32 units read out
linearly (``dlskills.models`` "rnn"), recurrent matrix orthogonal (spectral radius 1:
the edge between vanishing and exploding), SGD with momentum 0.9, batches of 32. Arms: without
clipping and with ``GradClip(1.0)`` (norm mode), each at learning rates 0.003, 0.01, 0.03 and
0.1, the same initialisation and batches per seed. A run whose training loss turns non-finite
has diverged (test MSE = inf). Per seed and arm, the learning rate with the lowest *validation*
MSE is kept and its test MSE reported — the comparison is against the best unclipped rate, not a
rate chosen to fail.

To fit seconds, every (seed, arm, rate) network trains at once: their weights are stacked and
the tanh recursion h_t = tanh(W x_t + U h_{t−1} + b) runs as one batched matmul per step (the
same function as ``nn.RNN``: the test checks it against each model's own forward); each
network keeps its own parameters, optimizer group and clipping.

Deviation: the paper trains for millions of updates with T up to 200 and reports success rates;
here 2,000 updates at T = 50, judged on test MSE. Scales: full = seeds 0-2 and all four rates
(measured: clipping beats the best unclipped rate on every seed, by 0.11 ± 0.09 of the trivial
MSE; lr 0.1 diverges without clipping on every seed, never with it; but the best clipped run
reaches only 0.87 ± 0.07 of the trivial MSE: partial). Fast = seed 0 and the rates 0.01-0.1, one
population of six networks (about a third of the cost).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from types import SimpleNamespace

import torch
from torch import nn

from dlskills.data import load
from dlskills.data.long_term import ADDING_TRIVIAL_MSE
from dlskills.models import create
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold
from dlskills.train.callbacks import GradClip

CATALOG_ID = "1211.5063"
BATCH, MOMENTUM, MAX_NORM = 32, 0.9, 1.0
FULL_RATES = (0.003, 0.01, 0.03, 0.1)
FAST_RATES = FULL_RATES[1:]  # 0.003 was never the best rate of either arm at full scale
CLAIM = Claim(
    text="On long-term tasks the gradients of a vanilla RNN explode; clipping the gradient norm "
    "(Algorithm 1) makes SGD train where it otherwise fails (SGD-C succeeds on the pathological "
    "tasks where SGD does not).",
    value="SGD-C > SGD on adding/temporal order at T = 50-200",
    source="Sec. 3.2 (Algorithm 1), Sec. 5.1 and Fig. 7",
)


def rnn_model(length: int, hidden: int, seed: int) -> nn.Module:
    """The library's vanilla tanh RNN with an orthogonal recurrent matrix, seeded."""
    torch.manual_seed(seed)
    model = create("rnn", input_shape=(length, 2), num_classes=1, cell="rnn", hidden_size=hidden)
    nn.init.orthogonal_(model.rnn.weight_hh_l0)
    return model


def population_forward(models: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Every model's output on its own input, x (G, B, T, 2) -> (G, B, 1), as batched matmuls:
    the single-layer tanh ``nn.RNN`` plus Linear read-out of ``create("rnn", cell="rnn")``."""
    w_ih = torch.stack([m.rnn.weight_ih_l0 for m in models])  # (G, H, D)
    w_hh = torch.stack([m.rnn.weight_hh_l0 for m in models]).transpose(1, 2)
    bias = torch.stack([m.rnn.bias_ih_l0 + m.rnn.bias_hh_l0 for m in models])[:, None]
    inputs = x @ w_ih[:, None].transpose(2, 3)  # (G, B, T, H)
    h = torch.zeros(x.shape[0], x.shape[1], w_hh.shape[-1], dtype=x.dtype)
    for t in range(x.shape[2]):
        h = torch.tanh(torch.baddbmm(inputs[:, :, t] + bias, h, w_hh))
    head_w = torch.stack([m.head.weight for m in models]).transpose(1, 2)  # (G, H, 1)
    head_b = torch.stack([m.head.bias for m in models])[:, None]  # (G, 1, 1)
    return torch.baddbmm(head_b, h, head_w)


def _mse(models, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = population_forward(models, inputs)
    return (out - targets).pow(2).mean(dim=(1, 2))


def train_population(
    seeds: Sequence[int], length: int, hidden: int, steps: int, rates: Sequence[float]
) -> dict[tuple[int, bool, float], dict[str, float]]:
    """Train every (seed, clipped, rate) network; their validation and test MSE (inf when the
    run diverged) and the fraction of steps whose gradient norm exceeded ``MAX_NORM``."""
    arms = [(seed, clip, rate) for seed in seeds for clip in (False, True) for rate in rates]
    data = {seed: load("adding", seed=seed, n=2000, length=length) for seed in seeds}
    models = []
    for seed, _, _ in arms:  # the same initialisation for every arm of a seed
        models.append(rnn_model(length, hidden, seed))
    optimizer = torch.optim.SGD(
        [{"params": m.parameters(), "lr": rate} for m, (_, _, rate) in zip(models, arms)],
        lr=rates[0],
        momentum=MOMENTUM,
    )
    clippers = [GradClip(MAX_NORM) if clip else None for _, clip, _ in arms]
    holders = [SimpleNamespace(model=m) for m in models]  # GradClip reads trainer.model only
    generators = {seed: torch.Generator().manual_seed(seed) for seed in seeds}
    diverged = torch.zeros(len(arms), dtype=torch.bool)
    above = torch.zeros(len(arms))
    x_train = {s: d.train.tensors[0].float() for s, d in data.items()}
    y_train = {s: d.train.tensors[1].float() for s, d in data.items()}
    for _ in range(steps):
        batches = {
            s: torch.randint(0, len(x_train[s]), (BATCH,), generator=generators[s]) for s in seeds
        }
        x = torch.stack([x_train[s][batches[s]] for s, _, _ in arms])
        y = torch.stack([y_train[s][batches[s]] for s, _, _ in arms])
        losses = (population_forward(models, x) - y).pow(2).mean(dim=(1, 2))
        diverged |= ~torch.isfinite(losses.detach())
        optimizer.zero_grad(set_to_none=True)
        losses.nan_to_num(0.0).sum().backward()  # each network's own loss and gradient
        for index, (model, clipper) in enumerate(zip(models, clippers)):
            if clipper is not None:
                clipper.on_after_backward(holders[index])
                above[index] += clipper.last_norm > MAX_NORM
            else:
                norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])
                above[index] += norm > MAX_NORM
        optimizer.step()
    results = {}
    for split in ("val", "test"):
        inputs = torch.stack([getattr(data[s], split).tensors[0].float() for s, _, _ in arms])
        targets = torch.stack([getattr(data[s], split).tensors[1].float() for s, _, _ in arms])
        mse = _mse(models, inputs, targets)
        for index, arm in enumerate(arms):
            value = mse[index].item()
            bad = diverged[index] or not math.isfinite(value)
            results.setdefault(arm, {})[split] = math.inf if bad else value
    for index, arm in enumerate(arms):
        results[arm]["above"] = above[index].item() / steps
    return results


def best_rate(results, seed: int, clip: bool) -> tuple[float, dict[str, float]]:
    """The rate with the lowest validation MSE for (seed, arm), and its numbers."""
    rates = sorted({rate for s, c, rate in results if (s, c) == (seed, clip)})
    rate = min(rates, key=lambda r: results[(seed, clip, r)]["val"])
    return rate, results[(seed, clip, rate)]


@register(CATALOG_ID, fast="partial")
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Clipped vs unclipped SGD, each at its best learning rate, on the T-step adding task."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0,), "full": (0, 1, 2)})
    rates = run.pick(fast=FAST_RATES, full=FULL_RATES)
    length, hidden, steps = 50, 32, 2000
    results = train_population(run.seeds, length, hidden, steps, rates)
    unclipped = [best_rate(results, seed, False) for seed in run.seeds]
    clipped = [best_rate(results, seed, True) for seed in run.seeds]
    relative = {
        "unclipped": [r["test"] / ADDING_TRIVIAL_MSE for _, r in unclipped],
        "clipped": [r["test"] / ADDING_TRIVIAL_MSE for _, r in clipped],
    }
    diverged = {
        clip: [sum(math.isinf(results[(s, clip, r)]["test"]) for r in rates) for s in run.seeds]
        for clip in (False, True)
    }

    def row(name: str, unit: str, values) -> Measured:
        return Measured.over_seeds(name, unit, values, run.seeds)

    # a diverged best rate would make the mean inf: cap the ratio at 10 (far above 1)
    gain = [min(u, 10.0) - c for u, c in zip(relative["unclipped"], relative["clipped"])]
    return run.result(
        claim=CLAIM,
        measured=[
            row("test MSE / trivial, best unclipped rate", "", relative["unclipped"]),
            row("test MSE / trivial, best clipped rate", "", relative["clipped"]),
            row("unclipped minus clipped (MSE / trivial)", "", gain),
            row("best unclipped rate", "", [rate for rate, _ in unclipped]),
            row("best clipped rate", "", [rate for rate, _ in clipped]),
            row("unclipped runs diverged", f"of {len(rates)} rates", diverged[False]),
            row("clipped runs diverged", f"of {len(rates)} rates", diverged[True]),
            row(
                "steps with gradient norm above the threshold, best clipped",
                "fraction",
                [r["above"] for _, r in clipped],
            ),
        ],
        thresholds=[
            Threshold(
                "unclipped minus clipped (MSE / trivial)",
                ">",
                0.0,
                "control arm: clipping beats the best unclipped learning rate",
            ),
            Threshold(
                "test MSE / trivial, best clipped rate",
                "<=",
                0.8,
                "the clipped RNN learns the long-term sum (beats the mean predictor by a fifth)",
            ),
            Threshold(
                "unclipped runs diverged",
                ">=",
                1.0,
                "gradients explode: some rate the clipped arm survives diverges",
            ),
            Threshold("clipped runs diverged", "<=", 0.0, "clipping prevents every divergence"),
        ],
        config={
            "task": "adding",
            "length": length,
            "steps": steps,
            "hidden": hidden,
            "batch": BATCH,
            "momentum": MOMENTUM,
            "max_norm": MAX_NORM,
            "rates": rates,
            "recurrent_init": "orthogonal",
            "selection": "best validation MSE per seed",
        },
    )
