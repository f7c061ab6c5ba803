"""Reproduction of catalog 1905.07202: Chadwick & Newman, "Training Object Detectors With Noisy
Data" (2019): co-teaching (two networks that pass each other their small-loss samples) trained
on noisy labels beats plain training.

Measured (``dlskills.train.techniques.coteaching``): ten Gaussian blobs in 20 dimensions
(``dlskills.data`` "blobs", 1,500 samples, cluster std 4, so the classes overlap a little),
40 % of the training labels replaced by another class (symmetric noise), two 256-256 ReLU MLPs
as a two-member ``Ensemble`` trained by the Trainer with Adam (lr 1e-3, batch 64) for 25 epochs
(60 at full scale; plain training has memorised the noise by epoch 20): co-teaching
with τ = 0.4 (ramped over 5 epochs) against the same pair trained on every label (τ = 0, the
control: same architecture, same two-network prediction, same seeds). Test accuracy is on clean
labels; the validation split (clean) is scored every epoch for the figure. The mechanism is
reported too: the label precision (fraction of correct labels) of the 60 % of the training set
each trained network finds easiest, which is what co-teaching hands to the peer.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1905.07202"
CLAIM = Claim(
    text="Under heavy label noise, co-teaching (two networks selecting likely-clean, small-loss "
    "samples for each other) trains better models than plain training on the noisy labels.",
    value="co-teaching above plain training at 40 % injected noise (the reading list's check; "
    "Han et al. report gains of tens of accuracy points at 45-50 % noise)",
    source="Chadwick & Newman, experiments; Han et al. 2018, experiments",
)
NOISE = 0.4
CLASSES = 10


def _mlp(dim: int, width: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(dim, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, CLASSES),
    )


def run_arm(
    seed: int, forget_rate: float, *, epochs: int, n: int
) -> tuple[float, list[float], float]:
    """(clean test accuracy, clean validation accuracy per epoch, label precision) of one arm:
    the precision is the fraction of correct labels among the 1 − τ = 60 % of the training
    samples each trained network finds easiest (the samples co-teaching passes on), averaged
    over the two networks."""
    import torch.nn.functional as F

    from dlskills.data import load
    from dlskills.train.techniques.coteaching import CoTeaching, noisy_labels, small_loss_selection
    from dlskills.train.techniques.ensemble import Ensemble
    from dlskills.train.trainer import Trainer

    splits = load("blobs", seed=seed, n=n, n_classes=CLASSES, dim=20, cluster_std=4.0)
    inputs, labels = splits.train.tensors
    noisy = noisy_labels(labels, NOISE, CLASSES, torch.Generator().manual_seed(seed))
    train = DataLoader(
        TensorDataset(inputs, noisy),
        batch_size=64,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    val = DataLoader(splits.val, batch_size=512)
    torch.manual_seed(seed)
    pair = Ensemble([_mlp(20, 256), _mlp(20, 256)])
    coteaching = CoTeaching(forget_rate, ramp_epochs=5)
    trainer = Trainer(
        pair,
        torch.optim.Adam(pair.parameters(), lr=1e-3),
        coteaching.loss_fn,
        train,
        val,
        callbacks=[coteaching],
        max_epochs=epochs,
        seed=seed,
        log_every=10**6,
    )
    trainer.fit()
    x_test, y_test = splits.test.tensors
    test = trainer.evaluate([(x_test, y_test)])["accuracy"]
    keep = int((1 - NOISE) * len(noisy))
    with torch.no_grad():
        precision = [
            (noisy == labels)[
                small_loss_selection(F.cross_entropy(net(inputs), noisy, reduction="none"), keep)
            ]
            .float()
            .mean()
            .item()
            for net in pair.members.eval()
        ]
    curve = [100 * row["val_accuracy"] for row in trainer.history]
    return 100 * test, curve, 100 * sum(precision) / len(precision)


def plot_coteaching(curves: dict[str, list[list[float]]], seeds, path) -> None:
    from dlskills._plot import integer_ticks, label_axes, legend, new_figure, save_figure

    fig, ax = new_figure(
        title=f"Co-teaching vs plain training, {NOISE:.0%} label noise (blobs, 10 classes)"
    )
    for name, runs in curves.items():
        values = torch.tensor(runs)
        epochs = range(1, values.shape[1] + 1)
        ax.plot(epochs, values.mean(0), label=f"{name} (mean of {len(seeds)} seeds)")
        ax.fill_between(epochs, values.min(0).values, values.max(0).values, alpha=0.2)
    label_axes(ax, "epoch", "clean validation accuracy (%)")
    integer_ticks(ax)
    legend(ax, title="band: min–max over seeds")
    save_figure(fig, path)


@register(CATALOG_ID)
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Co-teaching (τ = 0.4) against plain training of the same pair at 40 % symmetric noise."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0, 1, 2), "full": range(5)})
    epochs, n = run.pick(fast=(25, 1500), full=(60, 1500))
    arms = {"co-teaching, τ = 0.4": 0.4, "plain training (τ = 0)": 0.0}
    test: dict[str, list[float]] = {name: [] for name in arms}
    curves: dict[str, list[list[float]]] = {name: [] for name in arms}
    precision: dict[str, list[float]] = {name: [] for name in arms}
    for seed in run.seeds:
        for name, rate in arms.items():
            accuracy, curve, clean = run_arm(seed, rate, epochs=epochs, n=n)
            test[name].append(accuracy)
            curves[name].append(curve)
            precision[name].append(clean)
    names = list(arms)
    coteach, plain = test[names[0]], test[names[1]]
    gains = [a - b for a, b in zip(coteach, plain)]
    run.figure("coteaching.png", lambda path: plot_coteaching(curves, run.seeds, path))

    def row(name: str, values: list[float]) -> Measured:
        return Measured.over_seeds(name, "%", values, run.seeds)

    return run.result(
        claim=CLAIM,
        measured=[
            row("test accuracy, co-teaching", coteach),
            row("test accuracy, plain training", plain),
            row("gain of co-teaching", gains),
            Measured.exact("smallest gain over the seeds", "%", min(gains)),
            row("label precision of the small-loss 60 %, co-teaching", precision[names[0]]),
            row("label precision of the small-loss 60 %, plain training", precision[names[1]]),
        ],
        thresholds=[
            Threshold(
                "gain of co-teaching",
                ">=",
                5.0,
                "the paper's 'beats plain training' as a clear margin (Han et al.: tens of points)",
            ),
            Threshold("smallest gain over the seeds", ">", 0.0, "on every seed, not on average"),
        ],
        config={
            "dataset": {"name": "blobs", "n": n, "classes": CLASSES, "dim": 20, "std": 4.0},
            "noise": {"kind": "symmetric", "rate": NOISE},
            "model": "Ensemble of two 20-256-256-10 ReLU MLPs",
            "optimizer": {"name": "Adam", "lr": 1e-3, "batch_size": 64, "epochs": epochs},
            "coteaching": {"forget_rate": 0.4, "ramp_epochs": 5},
        },
    )
