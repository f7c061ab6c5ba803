"""Reproduction of catalog 1902.09843: Luo, Xiong, Liu & Sun, "Adaptive Gradient Methods with
Dynamic Bound of Learning Rate" (ICLR 2019).

Claim: AdaBound clips Adam's per-coordinate step α_t/(√v̂ + ε) into a band
[η*(1 − 1/(γt + 1)), η*(1 + 1/(γt))] that starts as [0, ∞) and shrinks to the SGD rate η*, so it
trains as fast as Adam early and behaves like SGD(M) at the end, keeping SGD's final accuracy
(Sec. 4, Fig. 3–6: "a gradual and smooth transition from adaptive methods to SGD").

Measured (``dlskills.optim.AdaBound`` lr = 1e-3, final_lr = 0.1, γ = 1e-3 — the paper's
settings — against ``torch.optim.Adam`` lr = 1e-3 and AdaBound's SGD limit
``torch.optim.SGD(lr=0.1, momentum=0.9, dampening=0.9)``: θ ← θ − 0.1·m with m the same EMA of
gradients), a 64-32-10 MLP on digits, batches of 32, the same batches for every optimizer:
- speed early: the training loss after 200 steps (γt = 0.2), AdaBound against Adam (and SGD,
  reported: on digits at these rates the SGD limit is faster from the start);
- the effective per-coordinate learning rate η = |Δθ|/|m| (measured from the parameter change
  and the first-moment buffer, coordinates with |m| > 1e-8): its spread, the ratio of its 90th
  to 10th percentile, after 50 steps (Adam-like: as wide as Adam's) and after the last step
  (SGD-like: one rate for every coordinate, within the band, against Adam's, which stays wide);
- the final test accuracy, AdaBound against its SGD limit.
Deviation: 3,000 steps (γT = 3, band [0.075, 0.133] at the end) where the paper trains CIFAR-10
for 200 epochs (γT ≈ 78); the band's shrinking is the same function of γt.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from dlskills.optim.adabound import AdaBound
from dlskills.repro import _digits_training as digits
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1902.09843"
LR, FINAL_LR, GAMMA = 1e-3, 0.1, 1e-3
EARLY_LOSS_STEP, EARLY_RATE_STEP = 200, 50
BATCH = 32
CLAIM = Claim(
    text="AdaBound behaves like Adam at the beginning of training and transforms gradually "
    "and smoothly into SGD(M) as its learning-rate bounds tighten, training fast early and "
    "reaching SGD's final accuracy.",
    value="Adam-fast early; per-coordinate rates converge to final_lr (SGD) at the end",
    source="Sec. 4, Fig. 3–6",
)

OPTIMIZERS = {
    "adabound": lambda params: AdaBound(params, lr=LR, final_lr=FINAL_LR, gamma=GAMMA),
    "adam": lambda params: torch.optim.Adam(params, lr=LR),
    "sgd": lambda params: torch.optim.SGD(params, lr=FINAL_LR, momentum=0.9, dampening=0.9),
}


def rate_spread(rates: torch.Tensor) -> float:
    """90th / 10th percentile of the effective per-coordinate learning rates."""
    return (rates.quantile(0.9) / rates.quantile(0.1)).item()


class RateProbe:
    """Effective per-coordinate learning rates η = |Δθ|/|m| at chosen steps (``after_step``)."""

    def __init__(self, model: torch.nn.Module, optimizer, at: Iterable[int]) -> None:
        self.model, self.optimizer, self.at = model, optimizer, set(at)
        self.before: list[torch.Tensor] | None = None
        self.rates: dict[int, torch.Tensor] = {}

    def snapshot(self) -> list[torch.Tensor]:
        return [p.detach().clone() for p in self.model.parameters()]

    def __call__(self, t: int) -> None:
        if t in self.at and self.before is not None:
            pieces = []
            for before, p in zip(self.before, self.model.parameters()):
                m = self.optimizer.state[p]["exp_avg"]
                keep = m.abs() > 1e-8
                pieces.append(((p.detach() - before).abs() / m.abs())[keep])
            self.rates[t] = torch.cat(pieces)
        self.before = self.snapshot() if t + 1 in self.at else None


def _run(name: str, seed: int, steps: int) -> tuple[digits.Curves, dict[int, torch.Tensor]]:
    model = digits.mlp(seed)
    optimizer = OPTIMIZERS[name](model.parameters())
    # the SGD limit keeps no first-moment buffer named exp_avg (nor needs one: its rate is 0.1)
    probe = RateProbe(model, optimizer, at=() if name == "sgd" else (EARLY_RATE_STEP, steps))
    curves = digits.train(
        model,
        optimizer,
        digits.data(seed),
        steps=steps,
        batch_size=BATCH,
        seed=seed,
        eval_every=EARLY_LOSS_STEP,
        after_step=probe,
    )
    return curves, probe.rates


def _loss_at(curves: digits.Curves, step: int) -> float:
    return curves.train_loss[curves.eval_steps.index(step)]


def _figure(path, runs: dict[str, tuple[digits.Curves, dict]], steps: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {
        "adabound": "AdaBound (lr 1e-3, final_lr 0.1)",
        "adam": "Adam (lr 1e-3)",
        "sgd": "SGD limit (lr 0.1, EMA momentum 0.9)",
    }
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(14, 4.2))
    for name, (curves, rates) in runs.items():
        left.semilogy(curves.eval_steps, curves.train_loss, "o-", ms=3, label=labels[name])
        middle.plot(curves.eval_steps, [100 * a for a in curves.test_accuracy], label=labels[name])
        if name != "sgd":
            for t, style in ((EARLY_RATE_STEP, "--"), (steps, "-")):
                values = rates[t].log10().clamp(-2.5, 0.5)
                right.hist(
                    values.numpy(),
                    bins=60,
                    histtype="step",
                    ls=style,
                    density=True,
                    label=f"{name}, step {t}",
                )
    left.set_xlabel("step")
    left.set_ylabel("training loss (cross-entropy, whole set)")
    left.set_title("training loss")
    left.legend(fontsize=8)
    middle.set_xlabel("step")
    middle.set_ylabel("test accuracy (%)")
    middle.set_ylim(80, 100)
    middle.set_title("test accuracy")
    middle.legend(fontsize=8)
    right.axvline(torch.log10(torch.tensor(FINAL_LR)).item(), color="k", lw=0.8, label="final_lr")
    lo = torch.tensor(FINAL_LR * (1 - 1 / (GAMMA * steps + 1)))
    hi = torch.tensor(FINAL_LR * (1 + 1 / (GAMMA * steps)))
    right.axvspan(torch.log10(lo).item(), torch.log10(hi).item(), color="0.85", label="band at end")
    right.set_xlim(-2.5, 0.5)
    right.set_xlabel("log10 effective learning rate |Δθ|/|m| per coordinate")
    right.set_ylabel("density")
    right.set_title("per-coordinate rates: early vs end")
    right.legend(fontsize=7)
    fig.suptitle("AdaBound: Adam-like early, SGD-like at the end (64-32-10 MLP on digits)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


@register(CATALOG_ID, fast="reproduced")
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """AdaBound against Adam and its SGD limit on digits: early loss, per-coordinate rates,
    final accuracy."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0,), "full": (0, 1, 2, 3, 4)})
    steps = run.pick(fast=3000, full=12000)
    runs = [{name: _run(name, seed, steps) for name in OPTIMIZERS} for seed in run.seeds]
    run.figure("adabound_transition.png", lambda p: _figure(p, runs[0], steps))

    def row(name: str, values: list[float], unit: str = "") -> Measured:
        return Measured.over_seeds(name, unit, values, run.seeds)

    early = {n: [_loss_at(r[n][0], EARLY_LOSS_STEP) for r in runs] for n in OPTIMIZERS}
    spread = {
        (n, t): [rate_spread(r[n][1][t]) for r in runs]
        for n in ("adabound", "adam")
        for t in (EARLY_RATE_STEP, steps)
    }
    median_end = [r["adabound"][1][steps].median().item() / FINAL_LR for r in runs]
    accuracy = {n: [100 * r[n][0].final_accuracy for r in runs] for n in OPTIMIZERS}
    return run.result(
        claim=CLAIM,
        measured=[
            row("training loss at step 200, AdaBound", early["adabound"]),
            row("training loss at step 200, Adam", early["adam"]),
            row("training loss at step 200, SGD limit", early["sgd"]),
            row(
                "early loss ratio AdaBound / Adam",
                [a / b for a, b in zip(early["adabound"], early["adam"])],
            ),
            row("rate spread p90/p10 at step 50, AdaBound", spread[("adabound", EARLY_RATE_STEP)]),
            row("rate spread p90/p10 at step 50, Adam", spread[("adam", EARLY_RATE_STEP)]),
            row(
                "early rate spread ratio AdaBound / Adam",
                [
                    a / b
                    for a, b in zip(
                        spread[("adabound", EARLY_RATE_STEP)], spread[("adam", EARLY_RATE_STEP)]
                    )
                ],
            ),
            row("rate spread p90/p10 at the end, AdaBound", spread[("adabound", steps)]),
            row("rate spread p90/p10 at the end, Adam", spread[("adam", steps)]),
            row("median rate at the end / final_lr, AdaBound", median_end),
            row("test accuracy, AdaBound", accuracy["adabound"], "%"),
            row("test accuracy, Adam", accuracy["adam"], "%"),
            row("test accuracy, SGD limit", accuracy["sgd"], "%"),
            row(
                "test accuracy, AdaBound − SGD limit",
                [a - b for a, b in zip(accuracy["adabound"], accuracy["sgd"])],
                "points",
            ),
        ],
        thresholds=[
            Threshold("early loss ratio AdaBound / Adam", "<=", 1.25, "Adam-fast early"),
            Threshold(
                "early rate spread ratio AdaBound / Adam",
                ">=",
                0.9,
                "Adam-like early: per-coordinate rates as spread as Adam's",
            ),
            Threshold(
                "rate spread p90/p10 at the end, AdaBound",
                "<=",
                1.78,
                "SGD-like at the end: within the band, (1 + 1/γT)/(1 − 1/(γT + 1)) = 1.78",
            ),
            Threshold(
                "rate spread p90/p10 at the end, Adam",
                ">=",
                2.0,
                "control: Adam's rates stay spread beyond the band",
            ),
            Threshold("test accuracy, AdaBound − SGD limit", ">=", -1.0, "SGD's final accuracy"),
        ],
        config={
            "model": "64-32-10 MLP",
            "dataset": "digits",
            "batch_size": BATCH,
            "steps": steps,
            "adabound": {"lr": LR, "final_lr": FINAL_LR, "gamma": GAMMA},
            "adam": {"lr": LR},
            "sgd": {"lr": FINAL_LR, "momentum": 0.9, "dampening": 0.9},
        },
        note="on digits the SGD limit at lr 0.1 trains faster than Adam at lr 1e-3 from the "
        "start, so 'Adam-fast early' holds against Adam, not as a lead over SGD; the final "
        "accuracies are within a point of each other",
    )
