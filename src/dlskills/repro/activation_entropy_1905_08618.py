"""Reproduction of catalog 1905.08618: "Neurons Activation Visualization and Information
Theoretic Analysis" (2019).

Claim (Sec. 4): in a trained network, the entropy of the neurons' activations in the fully
connected layers falls with depth: deeper layers carry less information about the input and
become more class-specific.

Measured: ``dlskills.diagnose.activations.activation_stats`` (per unit, 16-bin histogram
entropy in bits, averaged over the layer's units) on held-out digits for a four-hidden-layer
ReLU MLP, at initialisation (the control arm) and after training; per seed the drop of entropy
from the first to the last hidden layer and the least-squares slope over the four layers.

Result: the trained nets' entropy does fall with depth (fast: 0.40 bits from the first to the
last hidden layer, seeds 0–4), but the untrained nets' falls nearly as much (0.31 bits): training
adds 0.09 ± 0.16 bits at fast scale and nothing at full scale (-0.01 ± 0.13, 2,000 steps), so at
this scale depth, not learning, makes most of the drop — partial.

Deviation: an MLP on 8×8 digits instead of the fully connected layers of an ImageNet CNN;
entropy by binning each unit's range (the paper bins activations too).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

from dlskills.diagnose.activations import activation_stats
from dlskills.repro import register
from dlskills.repro._support import fit_line, mlp
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1905.08618"
HIDDEN = [64, 64, 64, 64]

CLAIM = Claim(
    text="The entropy of neuron activations in the fully connected layers of a trained network "
    "decreases with depth.",
    value="entropy falls from the first to the last fully connected layer",
    source="Sec. 4 (entropy per layer)",
)


def _digits(seed: int):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    return x[order[:1200]], y[order[:1200]], x[order[1200:]], y[order[1200:]]


def _entropies(model, x, y) -> list[float]:
    return [layer.entropy_bits for layer in activation_stats(model, [(x, y)], num_batches=1).layers]


def _one_seed(seed: int, steps: int) -> dict[str, list[float] | float]:
    x_train, y_train, x_test, y_test = _digits(seed)
    torch.manual_seed(seed)
    model = mlp(HIDDEN, din=64, dout=10)
    at_init = _entropies(model, x_test, y_test)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        index = torch.randint(0, len(x_train), (64,), generator=batches)
        loss = F.cross_entropy(model(x_train[index]), y_train[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = float((model(x_test).argmax(1) == y_test).float().mean())
    return {"init": at_init, "trained": _entropies(model, x_test, y_test), "accuracy": accuracy}


def _plot(runs, seeds, path) -> None:
    from dlskills._plot import new_figure, save_figure

    fig, ax = new_figure()
    layers = range(1, len(HIDDEN) + 1)
    for seed, measured in zip(seeds, runs):
        ax.plot(layers, measured["trained"], marker="o", label=f"trained, seed {seed}")
        ax.plot(layers, measured["init"], linestyle=":", marker=".", label=f"at init, seed {seed}")
    ax.set(
        xlabel="hidden layer (depth)",
        ylabel="mean unit entropy (bits, 16 bins)",
        title="1905.08618: activation entropy vs depth",
        xticks=list(layers),
    )
    ax.legend(fontsize="small")
    save_figure(fig, path)


@register(CATALOG_ID, fast="partial")
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Entropy per hidden layer of a trained digits MLP, against the untrained net."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": range(5), "full": range(5)})
    steps = run.pick(fast=300, full=2000)
    runs = [_one_seed(seed, steps) for seed in run.seeds]
    run.figure("entropy_vs_depth.png", lambda path: _plot(runs, run.seeds, path))
    layers = list(range(len(HIDDEN)))

    def row(name, unit, value) -> Measured:
        return Measured.over_seeds(name, unit, [value(r) for r in runs], run.seeds)

    def drop(values) -> float:
        return values[0] - values[-1]

    extra = [drop(r["trained"]) - drop(r["init"]) for r in runs]
    note = (
        "The untrained nets' entropy falls with depth nearly as much: at this scale depth, not "
        "training, makes most of the drop"
        if sum(extra) / len(extra) <= 0.1
        else ""
    )
    return run.result(
        claim=CLAIM,
        measured=[
            row("entropy drop first → last layer, trained", "bits", lambda r: drop(r["trained"])),
            row("entropy drop first → last layer, at init", "bits", lambda r: drop(r["init"])),
            row(
                "entropy slope over depth, trained",
                "bits/layer",
                lambda r: fit_line(layers, r["trained"])[0],
            ),
            row(
                "extra drop from training",
                "bits",
                lambda r: drop(r["trained"]) - drop(r["init"]),
            ),
            row("test accuracy", "", lambda r: r["accuracy"]),
        ],
        thresholds=[
            Threshold("entropy drop first → last layer, trained", ">", 0.1, "falls with depth"),
            Threshold("entropy slope over depth, trained", "<", 0.0, "falls with depth"),
            Threshold(
                "extra drop from training", ">", 0.1, "control: the untrained net's drop is less"
            ),
            Threshold("test accuracy", ">", 0.85, "the net is trained"),
        ],
        config={"hidden": HIDDEN, "activation": "relu", "steps": steps, "optimizer": "Adam 1e-3"},
        note=note,
    )
