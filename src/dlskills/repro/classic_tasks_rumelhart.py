"""Reproductions of catalog rumelhart-1985 and rumelhart-1986: Rumelhart, Hinton & Williams,
"Learning internal representations by error propagation" (ICS report 8506, 1985) and "Learning
representations by back-propagating errors" (Nature 323, 1986).

rumelhart-1985 claims (Sec. "Simulation results"): the generalised delta rule (back-propagation:
the exact gradient of the squared error) teaches a net with hidden units XOR and the 8-3-8
encoder, whose three hidden units discover a code; a few runs end in local minima.
Measured: the solve rate of ``dlskills.diagnose.classic_tasks.train_classic`` over seeds for both
tasks, the median sweeps to solve XOR, and — that the rule is the gradient — the largest error
of autograd against central finite differences (``dlskills.diagnose.gradcheck``) on the nets.

rumelhart-1986 claims (Fig. 1): a net with 6 inputs and 2 hidden units learns to detect mirror
symmetry (1,425 sweeps at ε = 0.1, α = 0.9), with a solution in which each hidden unit has equal
and opposite weights on mirror inputs, sizes in ratio 1:2:4, and the two units of opposite sign.
Measured: the solve rate, the median sweeps, and the fraction of solved nets showing exactly
that structure (mirror weights equal and opposite within 5 %, successive size ratios in
1.5–2.5, opposite signs).

Deviation: uniform initial weights in a per-task range (the papers: "small random weights").
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable

import torch

from dlskills.diagnose.classic_tasks import train_classic
from dlskills.diagnose.gradcheck import check_gradients
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CLAIM_1985 = Claim(
    text="Back-propagation (the generalised delta rule) teaches networks with hidden units "
    "XOR and the 8-3-8 encoder problem, the hidden units discovering an internal code; "
    "occasionally a run ends in a local minimum.",
    value="XOR and encoder learned in most runs",
    source="ICS 8506, Sec. 'Simulation results' (XOR, encoder problem)",
)

CLAIM_1986 = Claim(
    text="A network with 6 inputs and 2 hidden units learns to detect mirror symmetry: mirror "
    "weights equal and opposite, sizes in ratio 1:2:4, the two hidden units of opposite sign.",
    value="1,425 sweeps (ε = 0.1, α = 0.9); weights in ratio 1:2:4",
    source="Nature 323, Fig. 1",
)


def _papers_solution(result) -> bool:
    """The 1986 symmetry solution (see module doc) in a trained net."""
    weights = result.model[0].weight.detach()  # (2 hidden, 6 inputs)
    magnitude = weights.abs().amax(1, keepdim=True)
    mirrored = bool(((weights + weights.flip(1)).abs() / magnitude).max() < 0.05)
    sizes = weights[:, :3].abs().sort(dim=1).values
    ratios = sizes[:, 1:] / sizes[:, :-1]
    doubling = bool(((ratios > 1.5) & (ratios < 2.5)).all())
    opposite = bool((torch.sign(weights[0]) == -torch.sign(weights[1])).all())
    return mirrored and doubling and opposite


def _plot_weights(results, seeds, path, title: str) -> None:
    """The input-to-hidden weights of each run, one panel per run (Hinton-diagram style)."""
    from dlskills._plot import new_figure, save_figure

    fig, axes = new_figure(1, len(results), size=(2.6, 2.4))
    panels = axes.flat if len(results) > 1 else [axes]  # one run: new_figure gives one Axes
    for ax, seed, result in zip(panels, seeds, results):
        weights = result.model[0].weight.detach()
        limit = float(weights.abs().max())
        image = ax.imshow(weights.numpy(), cmap="coolwarm", vmin=-limit, vmax=limit)
        state = "solved" if result.solved else "not solved"
        ax.set(title=f"seed {seed}: {state}", xlabel="input", ylabel="hidden unit")
        fig.colorbar(image, ax=ax, shrink=0.7)
    fig.suptitle(title)
    save_figure(fig, path)


def _plot_codes(result, seed, path) -> None:
    """The 8-3-8 encoder's hidden code of each input pattern."""
    from dlskills._plot import new_figure, save_figure

    fig, ax = new_figure(size=(4.0, 4.0))
    image = ax.imshow(result.hidden.numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set(
        xlabel="hidden unit",
        ylabel="input pattern",
        title=f"rumelhart-1985: 8-3-8 codes (seed {seed})",
        xticks=range(3),
        yticks=range(8),
    )
    fig.colorbar(image, ax=ax, label="hidden activation")
    save_figure(fig, path)


def _solved(name: str, results, seeds) -> Measured:
    """The solve rate, with each seed's outcome (1 solved, 0 not) as its values."""
    return Measured.over_seeds(name, "", [float(r.solved) for r in results], seeds)


def _median_sweeps(results) -> float:
    solved = [r.sweeps for r in results if r.solved]
    return float(statistics.median(solved)) if solved else float("inf")


@register("rumelhart-1985")
def repro_1985(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """XOR and 8-3-8 encoder solve rates, and back-propagation = the gradient."""
    run = Run(
        "rumelhart-1985", scale, seeds, out, default_seeds={"fast": range(5), "full": range(20)}
    )
    xor = [train_classic("xor", seed=seed) for seed in run.seeds]
    encoder = [train_classic("encoder", seed=seed) for seed in run.seeds]
    run.figure(
        "encoder_codes.png",
        lambda path: _plot_codes(encoder[0], run.seeds[0], path),
    )
    inputs = torch.eye(8, dtype=torch.float64)
    gradient_error = max(
        check_gradients(result.model, inputs[:, : result.model[0].in_features]).max_abs_error
        for result in (xor[0], encoder[0])
    )
    return run.result(
        claim=CLAIM_1985,
        measured=[
            _solved("XOR solve rate", xor, run.seeds),
            _solved("encoder solve rate", encoder, run.seeds),
            Measured.exact("XOR median sweeps (solved)", "sweeps", _median_sweeps(xor)),
            Measured.exact("back-prop vs finite differences", "max abs", gradient_error),
        ],
        thresholds=[
            Threshold("XOR solve rate", ">=", 0.8, "most runs learn XOR; a few stick"),
            Threshold("encoder solve rate", ">=", 0.9, "the encoder is learned"),
            Threshold(
                "back-prop vs finite differences", "<", 1e-6, "the delta rule is the gradient"
            ),
        ],
        config={"max_sweeps": 5000, "xor": "2-2-1, ε 0.5, α 0.9", "encoder": "8-3-8, ε 0.1, α 0.9"},
    )


@register("rumelhart-1986")
def repro_1986(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """The 6-2-1 symmetry detector: solve rate, sweeps and the paper's weight structure."""
    run = Run(
        "rumelhart-1986", scale, seeds, out, default_seeds={"fast": range(5), "full": range(20)}
    )
    results = [train_classic("symmetry", seed=seed) for seed in run.seeds]
    run.figure(
        "symmetry_weights.png",
        lambda path: _plot_weights(results, run.seeds, path, "rumelhart-1986: 6-2-1 weights"),
    )
    solved = [r for r in results if r.solved]
    structure = sum(map(_papers_solution, solved)) / len(solved) if solved else 0.0
    return run.result(
        claim=CLAIM_1986,
        measured=[
            _solved("solve rate", results, run.seeds),
            Measured.exact("median sweeps (solved)", "sweeps", _median_sweeps(results)),
            Measured.exact("solved nets with the paper's solution", "", structure),
        ],
        thresholds=[
            Threshold("solve rate", ">=", 0.6, "most runs learn symmetry"),
            Threshold("median sweeps (solved)", "<=", 5000, "the paper's order: 1,425 sweeps"),
            Threshold(
                "solved nets with the paper's solution",
                ">",
                0.5,
                "the paper's solution is the one the net typically finds",
            ),
        ],
        config={"net": "6-2-1 logistic", "lr": 0.1, "momentum": 0.9, "max_sweeps": 5000},
    )
