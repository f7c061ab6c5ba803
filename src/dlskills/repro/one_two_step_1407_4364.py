"""Reproduction of catalog 1407.4364: Muhammad Fuad, "One-Step or Two-Step Optimization and the
Overfitting Phenomenon: A Case Study on Time Series Classification" (2014).

Claim: optimising the representation of the series and the classifier's parameters together
(one step) fits the training set better than optimising the representation first and the
classifier on top of it (two steps), yet classifies unseen series worse: the one-step optimiser
overfits, and its better training score hides nothing useful. (The paper tunes SAX breakpoints
and segment weights with bio-inspired optimisers on UCR sets.)

Here, on Cylinder–Bell–Funnel series (``dlskills.data.cbf``, length 128), both arms are the same
model, a representation R followed by a linear softmax classifier C:

    z = R x  (R: 16 × 128, initialised as the piecewise aggregate approximation, PAA:
              R_jt = 1/8 for the 8 steps of segment j, the representation SAX quantises)
    p(y | x) = softmax(W z + c)

- one step:  R, W, c trained together (end to end);
- two steps: R fixed at PAA (step 1: the representation), then W, c trained (step 2).

Same loss (cross-entropy), optimiser (full-batch Adam, lr 0.01, 300 steps), initial weights and
no regularisation in both arms; the one-step arm contains the two-step solution, so it reaches a
lower training loss by construction — the question is the test error. Measured over training-set
sizes (series per class) on 600 fresh test series: training loss, training and test error, and
the generalisation gap (test − training error).

Deviations: gradient-trained linear representation and classifier instead of SAX breakpoints and
segment weights tuned by differential evolution; synthetic CBF instead of the UCR sets.
"""

from __future__ import annotations

import operator
import statistics
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from dlskills.data.cbf import cbf_series
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1407.4364"
CLAIM = Claim(
    text="Optimising the representation and the classifier in one step fits the training set "
    "better than the two-step procedure (representation first, then classifier) but overfits: "
    "its test error is higher, so the better optimiser of the training objective looks worse.",
    value="one step: lower training error, higher test error than two steps",
    source="abstract; §4 experiments",
)
LENGTH, SEGMENTS = 128, 16
TRAIN = {"steps": 300, "lr": 0.01}
TEST_PER_CLASS, TEST_SEED = 200, 10_000
ARMS = ("one step", "two steps")


def paa_matrix(length: int, segments: int) -> torch.Tensor:
    """The PAA operator: row j averages the ``length / segments`` steps of segment j."""
    if segments < 1 or length % segments:
        raise ValueError(f"segments must divide length ({length}), got {segments}")
    width = length // segments
    return torch.eye(segments).repeat_interleave(width, dim=1) / width


def two_part_model(joint: bool) -> nn.Sequential:
    """R (PAA at init, trainable when ``joint``) then a linear softmax classifier."""
    representation = nn.Linear(LENGTH, SEGMENTS, bias=False)
    with torch.no_grad():
        representation.weight.copy_(paa_matrix(LENGTH, SEGMENTS))
    representation.requires_grad_(joint)
    return nn.Sequential(representation, nn.Linear(SEGMENTS, 3))


def fit_arm(joint: bool, data: tuple[torch.Tensor, ...], seed: int) -> dict[str, float]:
    """Train one arm from the seed's initial classifier; its training loss and errors."""
    x, y, x_test, y_test = data
    torch.manual_seed(seed)
    model = two_part_model(joint)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], TRAIN["lr"])
    for _ in range(TRAIN["steps"]):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        logits = model(x)
        train_error = (logits.argmax(1) != y).float().mean().item()
        test_error = (model(x_test).argmax(1) != y_test).float().mean().item()
        return {
            "training loss": F.cross_entropy(logits, y).item(),
            "training error": 100 * train_error,
            "test error": 100 * test_error,
            "gap": 100 * (test_error - train_error),
        }


@register(CATALOG_ID)
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """One-step vs two-step training over the training-set size."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0, 1, 2), "full": range(5)})
    sizes = run.pick(fast=(10, 40, 160), full=(5, 10, 20, 40, 80, 160, 320))
    x_test, y_test = map(torch.from_numpy, cbf_series(TEST_PER_CLASS, seed=TEST_SEED))
    runs: dict[tuple[str, int], list[dict[str, float]]] = {(a, n): [] for a in ARMS for n in sizes}
    for seed in run.seeds:
        for n in sizes:
            x, y = map(torch.from_numpy, cbf_series(n, seed=seed))
            for arm, joint in zip(ARMS, (True, False)):
                runs[arm, n].append(fit_arm(joint, (x, y, x_test, y_test), seed))

    def row(name: str, values: list[float], unit: str) -> Measured:
        return Measured.over_seeds(name, unit, values, run.seeds)

    def values(arm: str, n: int, key: str) -> list[float]:
        return [r[key] for r in runs[arm, n]]

    measured = []
    for n in sizes:
        measured += [row(f"{arm} {key}, n={n}/class", values(arm, n, key), unit)
                     for arm in ARMS
                     for key, unit in (("training loss", "nats"), ("training error", "%"),
                                       ("test error", "%"), ("gap", "points"))]  # fmt: skip
    small, middle, large = sizes[0], sizes[len(sizes) // 2], sizes[-1]
    one, two = ARMS

    def paired(n: int, key: str, op) -> list[float]:
        return list(map(op, values(one, n, key), values(two, n, key)))

    measured += [
        row(f"test error one step − two steps, n={n}/class", paired(n, "test error", operator.sub),
            "points")
        for n in sizes
    ]  # fmt: skip
    names = {
        "loss": f"training loss one step / two steps, n={middle}/class",
        "excess": f"test error one step − two steps, n={middle}/class",
        "gaps": f"gap one step − two steps, n={middle}/class",
        "shrink": f"one-step gap shrink, n={small} → {large}/class",
    }
    measured += [
        row(names["loss"], paired(middle, "training loss", operator.truediv), ""),
        row(names["gaps"], paired(middle, "gap", operator.sub), "points"),
        row(names["shrink"], list(map(operator.sub, values(one, small, "gap"),
                                      values(one, large, "gap"))), "points"),
    ]  # fmt: skip
    run.figure("one_two_step.png", lambda path: _plot(path, sizes, runs))
    return run.result(
        claim=CLAIM,
        measured=measured,
        thresholds=[
            Threshold(names["loss"], "<=", 0.1,
                      "one step is the better optimiser of the training objective"),
            Threshold(names["excess"], ">=", 3.0,
                      "yet it classifies unseen series worse (overfitting)"),
            Threshold(names["gaps"], ">=", 5.0,
                      "its generalisation gap exceeds the two-step gap (by 5 points or more)"),
            Threshold(names["shrink"], ">=", 5.0,
                      "more training series shrink the one-step gap (by 5 points or more)"),
        ],
        config={"length": LENGTH, "segments": SEGMENTS, "sizes_per_class": list(sizes),
                "training": TRAIN, "test_per_class": TEST_PER_CLASS},
    )  # fmt: skip


def _plot(path, sizes: tuple[int, ...], runs: dict) -> None:
    from dlskills._plot import label_axes, legend, new_figure, save_figure

    fig, axes = new_figure(
        1, 2, size=(5.5, 4.0), title="One step vs two steps on Cylinder–Bell–Funnel"
    )
    left, right = axes[0]
    for arm, color in zip(ARMS, ("tab:red", "tab:blue")):
        for key, style, axis in (("test error", "-", left), ("training error", ":", left),
                                 ("gap", "-", right)):  # fmt: skip
            means = [statistics.fmean(r[key] for r in runs[arm, n]) for n in sizes]
            stds = [statistics.stdev(r[key] for r in runs[arm, n]) if len(runs[arm, n]) > 1
                    else 0.0 for n in sizes]  # fmt: skip
            axis.errorbar(sizes, means, yerr=stds, color=color, linestyle=style, marker="o",
                          capsize=3, label=f"{arm}: {key}")  # fmt: skip
    for axis, ylabel, title in (
        (left, "error (%), mean ± std over seeds", "training (dotted) and test error"),
        (right, "test − training error (points)", "generalisation gap"),
    ):
        axis.set_xscale("log")
        axis.minorticks_off()
        axis.set_xticks(list(sizes), [str(n) for n in sizes])
        label_axes(axis, "training series per class", ylabel, title=title)
        legend(axis)
    save_figure(fig, path)
