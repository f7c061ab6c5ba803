"""Reproduction of catalog 1905.08850: Zhu & Aydore, "Time-Smoothed Gradients for Online
Forecasting" (ICML 2019 Time Series Workshop).

Claim: in online forecasting the learning rate cannot be tuned in advance, so an update rule
that is not sensitive to it is needed; SGD whose step averages the last w stored gradients
(past time-smoothing, PTS-SGD) gives more stable results across learning rates than plain SGD,
at no extra gradient evaluations (abstract, Sec. 4: GEFCom2014 load forecasting).

Measured (``dlskills.optim.PTSSGD``, window w = 10, against ``torch.optim.SGD``), online
forecasting in float64: a linear autoregressive model (24 lags and a bias) predicting the next
value of a synthetic load-like series (daily and weekly cycles plus Gaussian noise, σ = 0.3),
one observation per step, squared error, over a learning-rate grid spaced by √10:
- the average online loss at each learning rate (inf when the run diverges), each method's best;
- sensitivity: the width, in decades, of the grid range whose loss is within 25 % of the
  method's best (wider = less sensitive), and the largest learning rate whose loss stays within
  10× the best (larger ones blow up).
Deviation: a synthetic series and a linear model instead of GEFCom2014 and the paper's networks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from dlskills.optim.pts_sgd import PTSSGD
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1905.08850"
LAGS, WINDOW = 24, 10
CLAIM = Claim(
    text="Past time-smoothed gradients make SGD for online forecasting less sensitive to the "
    "learning rate, giving more stable results than plain SGD at no extra gradient cost.",
    value="more stable across learning rates than SGD",
    source="abstract, Sec. 4",
)


def load_series(seed: int, length: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(length, dtype=torch.float64)
    noise = torch.randn(length, generator=generator, dtype=torch.float64)
    return torch.sin(2 * math.pi * t / 24) + 0.5 * torch.sin(2 * math.pi * t / 168) + 0.3 * noise


def online_loss(make, series: torch.Tensor, steps: int) -> float:
    """Average squared error of the one-step forecasts, each taken before its update."""
    weights = torch.zeros(LAGS, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = make([weights, bias])
    total = 0.0
    for t in range(steps):
        forecast = series[t : t + LAGS] @ weights + bias
        loss = 0.5 * (forecast - series[t + LAGS]).square().sum()
        total += loss.item()
        if not math.isfinite(total):
            return math.inf
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return total / steps


def stable_width(losses: dict[float, float]) -> float:
    """Decades spanned by the learning rates whose loss is within 25 % of the best."""
    best = min(losses.values())
    good = [lr for lr, loss in losses.items() if loss <= 1.25 * best]
    return math.log10(max(good) / min(good))


def _figure(path, runs: dict[str, dict[float, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, losses in runs.items():
        lrs = sorted(losses)
        values = [min(losses[lr], 10.0) for lr in lrs]  # diverged runs drawn at the top
        ax.loglog(lrs, values, "o-", label=name)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("average online loss (½ squared error; 10 = diverged)")
    ax.set_title("Online AR(24) forecasting of a noisy load-like series")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


@register(CATALOG_ID, fast="not reproduced")
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """PTS-SGD against SGD across learning rates in online forecasting."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0,), "full": (0, 1, 2)})
    steps, grid = run.pick(
        fast=(1500, (1e-3, 3e-3, 1e-2, 3e-2)), full=(6000, (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1))
    )
    makers = {
        "SGD": lambda lr: lambda ps: torch.optim.SGD(ps, lr=lr),
        f"PTS-SGD (w = {WINDOW})": lambda lr: lambda ps: PTSSGD(ps, lr=lr, window=WINDOW),
    }
    per_seed = []
    for seed in run.seeds:
        series = load_series(seed, steps + LAGS)
        per_seed.append(
            {
                name: {lr: online_loss(make(lr), series, steps) for lr in grid}
                for name, make in makers.items()
            }
        )
    run.figure("pts_sgd_sensitivity.png", lambda p: _figure(p, per_seed[0]))
    sgd, pts = makers

    def row(name: str, values: list[float], unit: str = "") -> Measured:
        return Measured.over_seeds(name, unit, values, run.seeds)

    def largest_stable(losses: dict[float, float]) -> float:
        """The largest learning rate whose loss stays within 10× the method's best."""
        best = min(losses.values())
        return max(lr for lr, loss in losses.items() if loss <= 10 * best)

    return run.result(
        claim=CLAIM,
        measured=[
            row("best online loss, SGD", [min(r[sgd].values()) for r in per_seed]),
            row("best online loss, PTS-SGD", [min(r[pts].values()) for r in per_seed]),
            row(
                "width within 25 % of best, SGD",
                [stable_width(r[sgd]) for r in per_seed],
                "decades",
            ),
            row(
                "width within 25 % of best, PTS-SGD",
                [stable_width(r[pts]) for r in per_seed],
                "decades",
            ),
            row(
                "width difference PTS-SGD − SGD",
                [stable_width(r[pts]) - stable_width(r[sgd]) for r in per_seed],
                "decades",
            ),
            row("largest stable learning rate, SGD", [largest_stable(r[sgd]) for r in per_seed]),
            row(
                "largest stable learning rate, PTS-SGD", [largest_stable(r[pts]) for r in per_seed]
            ),
            row(
                "best loss ratio PTS-SGD / SGD",
                [min(r[pts].values()) / min(r[sgd].values()) for r in per_seed],
                "×",
            ),
        ],
        thresholds=[
            Threshold(
                "width difference PTS-SGD − SGD",
                ">",
                0.0,
                "less sensitive: good over a wider learning-rate range than SGD",
            ),
            Threshold(
                "best loss ratio PTS-SGD / SGD",
                "<=",
                1.0,
                "more stable results: at least as good as SGD at its best",
            ),
        ],
        config={"lags": LAGS, "window": WINDOW, "steps": steps, "grid": list(grid)},
        note="averaging the last w gradients delays the feedback of a step, so on this "
        "problem PTS-SGD diverges at a smaller learning rate than SGD",
    )
