"""Reproduction of catalog 1904.06963: Sankararaman, De, Xu, Huang & Goldstein, "The Impact of
Neural Network Overparameterization on Gradient Confusion and Stochastic Gradient Descent"
(ICML 2020).

Claim: at standard (Gaussian) initialisations, wider networks have lower gradient confusion
(per-example gradients less negatively correlated) and deeper networks higher.

Measured (``dlskills.diagnose.confusion.gradient_confusion``): ReLU MLPs at He init
(N(0, 2/fan_in), zero biases), 48 near-orthogonal inputs in 128 dimensions (Gaussian, scaled to
norm √128) with random labels among 10 classes, cross-entropy; the pairwise cosines of the
1,128 pairs of per-example gradients. The statistic is their 5 % quantile q05 (the minimum, the
paper's η direction, is one extreme pair and is drawn too). Width sweep: two hidden layers of
16 … 1024 units; depth sweep: 1 … 16 hidden layers of 64 units. Per seed:

- depth ratio = q05(16 layers) / q05(1 layer)   (> 1: deeper is more confused);
- width change = q05(1024 units) − q05(16 units)   (> 0: wider is less confused).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from dlskills.repro import register
from dlskills.repro._support import HE_GAIN, gaussian_init, mlp
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1904.06963"
CLAIM = Claim(
    text="For popular initialisations, increasing the width of a network lowers gradient "
    "confusion (the negative correlation of per-example gradients); increasing its depth "
    "raises it.",
    value="wider -> less confusion, deeper -> more (MLPs and CNNs on MNIST/CIFAR)",
    source="Abstract; theory at Gaussian initialisations and MLP/CNN experiments",
)
WIDTHS = (16, 64, 256, 1024)
DEPTHS = (1, 2, 4, 8, 16)
EXAMPLES, DIM = 48, 128


def probe_data() -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed inputs (near-orthogonal, norm √DIM) and random labels every net is probed on."""
    inputs = nn.functional.normalize(
        torch.randn(EXAMPLES, DIM, generator=torch.Generator().manual_seed(0))
    )
    labels = torch.randint(0, 10, (EXAMPLES,), generator=torch.Generator().manual_seed(1))
    return inputs * math.sqrt(DIM), labels


def confusion_at_init(depth: int, width: int, seed: int) -> tuple[float, float]:
    """(q05, minimum) of the pairwise gradient cosines of a He-initialised ReLU MLP."""
    from dlskills.diagnose.confusion import gradient_confusion

    torch.manual_seed(seed)
    model = mlp([width] * depth, din=DIM, dout=10)
    gaussian_init(HE_GAIN)(model)
    result = gradient_confusion(model, [probe_data()], nn.CrossEntropyLoss(), num_examples=EXAMPLES)
    return result.quantiles()["q05"], result.min_cosine


def plot_confusion(sweeps: dict[str, dict[int, list[tuple[float, float]]]], path) -> None:
    from dlskills._plot import label_axes, legend, new_figure, save_figure

    fig, axes = new_figure(1, 2, title="Gradient confusion at He init (ReLU MLPs, 48 examples)")
    for ax, (name, sweep) in zip(axes[0], sweeps.items()):
        sizes = list(sweep)
        for column, statistic in ((0, "5 % quantile of cosines"), (1, "minimum cosine")):
            values = torch.tensor([[v[column] for v in sweep[s]] for s in sizes])
            ax.errorbar(sizes, values.mean(1), yerr=values.std(1), marker="o", capsize=3,
                        label=statistic)  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        fixed = "2 hidden layers" if name == "width" else "64 units per layer"
        label = "units per hidden layer" if name == "width" else "hidden layers"
        label_axes(ax, label, "cosine of two examples' gradients",
                   title=f"{name} sweep ({fixed}); lower = more confusion")  # fmt: skip
        legend(ax, title="mean ± std over seeds")
    save_figure(fig, path)


@register(CATALOG_ID, fast="partial")
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Width and depth sweeps of gradient confusion at initialisation."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0, 1, 2), "full": range(10)})
    sweeps = {
        "width": {w: [confusion_at_init(2, w, s) for s in run.seeds] for w in WIDTHS},
        "depth": {d: [confusion_at_init(d, 64, s) for s in run.seeds] for d in DEPTHS},
    }
    width, depth = sweeps["width"], sweeps["depth"]
    ratio = [deep[0] / shallow[0] for deep, shallow in zip(depth[DEPTHS[-1]], depth[DEPTHS[0]])]
    change = [wide[0] - narrow[0] for wide, narrow in zip(width[WIDTHS[-1]], width[WIDTHS[0]])]
    run.figure("gradient_confusion.png", lambda path: plot_confusion(sweeps, path))

    def q05(name: str, values: list[tuple[float, float]]) -> Measured:
        return Measured.over_seeds(name, "", [v[0] for v in values], run.seeds)

    return run.result(
        claim=CLAIM,
        measured=[
            q05(f"q05, {DEPTHS[0]} hidden layer", depth[DEPTHS[0]]),
            q05(f"q05, {DEPTHS[-1]} hidden layers", depth[DEPTHS[-1]]),
            q05(f"q05, width {WIDTHS[0]}", width[WIDTHS[0]]),
            q05(f"q05, width {WIDTHS[-1]}", width[WIDTHS[-1]]),
            Measured.over_seeds("depth ratio of q05", "", ratio, run.seeds),
            Measured.over_seeds("width change of q05", "", change, run.seeds),
        ],
        thresholds=[
            Threshold(
                "depth ratio of q05",
                ">=",
                2.0,
                f"{DEPTHS[-1]} layers at least twice as confused as 1 (the paper's depth effect)",
            ),
            Threshold(
                "width change of q05",
                ">",
                0.0,
                f"width {WIDTHS[-1]} less confused than width {WIDTHS[0]} (the width effect)",
            ),
        ],
        config={
            "inputs": {"examples": EXAMPLES, "dim": DIM, "classes": 10},
            "init": "He normal, zero biases",
            "widths": list(WIDTHS),
            "depths": list(DEPTHS),
            "depth_sweep_width": 64,
            "width_sweep_depth": 2,
        },
        note="the width effect is not seen at initialisation here (wider nets are slightly "
        "more confused); the depth effect is",
    )
