"""Reproduction of catalog 1901.09321: Zhang, Dauphin & Ma, "Fixup Initialization: Residual
Learning Without Normalization" (ICLR 2019).

Claim (Sec. 3–4, Fig. 1 and Table 1): a deep residual network without normalisation, initialised
by Fixup (branches rescaled by L^(-1/(2m-2)), last layer of each branch and the classifier
zero-initialised, scalar biases and multipliers), trains as fast as with batch normalisation,
while the same network with a standard (He) initialisation and no normalisation does not train:
its output explodes with depth.

Measured: ResNet-32 (15 residual branches, width 4) without any normalisation layer on digits,
SGD (momentum 0.9, batch 64) for a few dozen steps from Fixup (``FixupResNet``, scalars at
lr/10) and, as the control arm, from He init (``ResNet(norm="none")``) at the same learning
rate. Per seed: the loss at init, the training loss after the steps relative to ln 10, and the
test accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F

from dlskills.models._quickfit import digits_tensors
from dlskills.models.fixup_resnet import FixupResNet
from dlskills.models.resnet import ResNet
from dlskills.nn.fixup import fixup_param_groups
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1901.09321"
DEPTH, WIDTH, LR = 32, 4, 0.2

CLAIM = Claim(
    text="With Fixup, a deep residual network without normalisation trains (as fast as with "
    "batch normalisation); with a standard initialisation and no normalisation it does not.",
    value="ResNet without normalisation trains with Fixup, not with standard init",
    source="Sec. 3–4, Fig. 1, Table 1",
)


def _train(arm: str, seed: int, steps: int, data) -> dict[str, float]:
    x_train, y_train, x_test, y_test = data
    torch.manual_seed(seed)
    if arm == "fixup":
        model = FixupResNet(input_shape=(1, 8, 8), num_classes=10, depth=DEPTH, width=WIDTH)
        groups = fixup_param_groups(model, LR)
    else:
        model = ResNet(input_shape=(1, 8, 8), num_classes=10, depth=DEPTH, width=WIDTH, norm="none")
        groups = model.parameters()
    optimizer = torch.optim.SGD(groups, lr=LR, momentum=0.9)
    probe = x_train[:512], y_train[:512]
    with torch.no_grad():
        first = F.cross_entropy(model(probe[0]), probe[1]).item()
    batches = torch.Generator().manual_seed(seed)
    curve = []
    for _ in range(steps):
        index = torch.randint(0, len(x_train), (64,), generator=batches)
        loss = F.cross_entropy(model(x_train[index]), y_train[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        curve.append(loss.item())
    with torch.no_grad():
        last = F.cross_entropy(model(probe[0]), probe[1]).item()
        accuracy = float((model(x_test).argmax(1) == y_test).float().mean())
    # a diverged run (NaN/inf) has learned nothing: count it as the uniform prediction's loss
    last = last if math.isfinite(last) else math.log(10)
    return {
        "initial loss": first,
        "loss ratio": last / math.log(10),
        "accuracy": accuracy,
        "curve": curve,
    }


def _plot(arms, seeds, path) -> None:
    from dlskills._plot import new_figure, save_figure

    fig, ax = new_figure()
    labels = {"fixup": "Fixup", "he": "He init, no norm"}
    for arm, runs in arms.items():
        for seed, run in zip(seeds, runs):
            ax.plot(run["curve"], label=f"{labels[arm]}, seed {seed}")
    ax.axhline(math.log(10), color="k", linestyle=":", label="chance (ln 10)")
    ax.set(
        xlabel="SGD step",
        ylabel="minibatch cross-entropy (nats)",
        yscale="log",
        title=f"1901.09321: ResNet-{DEPTH} without normalisation",
    )
    ax.legend(fontsize="small")
    save_figure(fig, path)


@register(CATALOG_ID)
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """ResNet-32 without normalisation: Fixup vs He init (see module doc)."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0, 1), "full": (0, 1, 2)})
    steps = run.pick(fast=60, full=600)
    data = digits_tensors(seed=0)
    arms = {arm: [_train(arm, seed, steps, data) for seed in run.seeds] for arm in ("fixup", "he")}
    run.figure("training_loss.png", lambda path: _plot(arms, run.seeds, path))

    def row(name, unit, arm, key) -> Measured:
        return Measured.over_seeds(name, unit, [r[key] for r in arms[arm]], run.seeds)

    return run.result(
        claim=CLAIM,
        measured=[
            row("loss at init, Fixup", "nats", "fixup", "initial loss"),
            row("loss at init, He (no norm)", "nats", "he", "initial loss"),
            row("training loss / ln 10, Fixup", "", "fixup", "loss ratio"),
            row("training loss / ln 10, He (no norm)", "", "he", "loss ratio"),
            row("test accuracy, Fixup", "", "fixup", "accuracy"),
            row("test accuracy, He (no norm)", "", "he", "accuracy"),
        ],
        thresholds=[
            Threshold(
                "training loss / ln 10, Fixup", "<", 0.6, "Fixup trains: loss well below chance"
            ),
            Threshold(
                "training loss / ln 10, He (no norm)",
                ">",
                0.9,
                "control: the standard init does not train at the same rate",
            ),
            Threshold(
                "test accuracy, Fixup",
                ">",
                0.4,
                f"learning under way after {steps} steps (chance 0.1)",
            ),
        ],
        config={
            "depth": DEPTH,
            "width": WIDTH,
            "lr": LR,
            "momentum": 0.9,
            "batch": 64,
            "steps": steps,
        },
    )
