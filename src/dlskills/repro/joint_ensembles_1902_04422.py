"""Reproduction of catalog 1902.04422: Webb, Reynolds, Iliescu, Reeve, Luján & Brown, "Joint
Training of Neural Network Ensembles" (2019).

Claim: training an ensemble jointly (on the loss of its combined output, λ = 1 of the modular
loss) instead of training the members independently (λ = 0) makes the members co-dependent:
each member on its own becomes much worse, and the ensemble generalises worse than an ensemble
of independently trained members.

Measured (``dlskills.train.techniques.ensemble``): digits, ensembles of four 64-16-10 ReLU MLPs
(small members, as in the paper's many-small-members experiments) trained by the Trainer with
``ModularLoss(λ)``, Adam 3e-3, batch 64, for λ on a grid from 0 to 1; on the test set: the
ensemble's error, the members' mean error, and the ambiguity (members' mean cross-entropy minus
the ensemble's: the diversity the combiner exploits).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1902.04422"
CLAIM = Claim(
    text="Joint training of an ensemble (λ = 1) makes its members co-dependent: individually "
    "they become poor, and the ensemble generalises worse than independently trained members "
    "(λ = 0).",
    value="member error rises sharply as λ -> 1; ensemble test error above independent training",
    source="Abstract and experiments (v3: 'To Ensemble or Not Ensemble: When does End-To-End "
    "Training Fail?', ECML 2020: over-parameterised members cannot be trained jointly)",
)
MEMBERS, WIDTH = 4, 16


def train_ensemble(seed: int, lam: float, epochs: int):
    """The test-set ``EnsembleStatistics`` of one ensemble trained with L_λ."""
    from dlskills.models._quickfit import digits_tensors
    from dlskills.train.techniques.ensemble import Ensemble, ModularLoss, ensemble_statistics
    from dlskills.train.trainer import Trainer

    x, y, x_test, y_test = digits_tensors(seed, image=False)
    torch.manual_seed(seed)
    ensemble = Ensemble(
        nn.Sequential(nn.Linear(64, WIDTH), nn.ReLU(), nn.Linear(WIDTH, 10)) for _ in range(MEMBERS)
    )
    modular = ModularLoss(lam)
    loader = DataLoader(
        TensorDataset(x, y),
        batch_size=64,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    optimizer = torch.optim.Adam(ensemble.parameters(), lr=3e-3)
    Trainer(
        ensemble,
        optimizer,
        modular.loss_fn,
        loader,
        callbacks=[modular],
        max_epochs=epochs,
        seed=seed,
        log_every=10**6,
    ).fit()
    return ensemble_statistics(ensemble, x_test, y_test)


def plot_lambda(lams, stats: dict[float, list], seeds, path) -> None:
    from dlskills._plot import label_axes, legend, new_figure, save_figure

    fig, axes = new_figure(1, 2, title="Modular loss: independent (λ = 0) to joint "
                           f"(λ = 1) training, {MEMBERS} MLPs on digits")  # fmt: skip
    left, right = axes[0]
    for name, key in (("ensemble", "ensemble_error"), ("mean member", "member_error")):
        values = torch.tensor([[100 * getattr(s, key) for s in stats[lam]] for lam in lams])
        left.errorbar(lams, values.mean(1), yerr=values.std(1), marker="o", capsize=3,
                      label=name)  # fmt: skip
    label_axes(left, "λ", "test error (%)", title="error")
    legend(left, title=f"mean ± std, {len(seeds)} seeds")
    values = torch.tensor([[s.ambiguity for s in stats[lam]] for lam in lams])
    right.errorbar(lams, values.mean(1), yerr=values.std(1), marker="o", capsize=3,
                   label="ambiguity")  # fmt: skip
    right.set_yscale("log")
    label_axes(right, "λ", "members' mean CE − ensemble CE (nats)", title="diversity (test)")
    legend(right, title=f"mean ± std, {len(seeds)} seeds")
    save_figure(fig, path)


@register(CATALOG_ID, fast="partial")
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """The λ sweep of the modular loss on digits."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0, 1, 2), "full": range(5)})
    lams, epochs = run.pick(
        fast=((0.0, 0.5, 0.9, 1.0), 15), full=((0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 1.0), 30)
    )
    stats = {lam: [train_ensemble(seed, lam, epochs) for seed in run.seeds] for lam in lams}
    independent, joint = stats[0.0], stats[1.0]
    run.figure("joint_ensembles.png", lambda path: plot_lambda(lams, stats, run.seeds, path))

    def row(name: str, values: list[float], unit: str = "%") -> Measured:
        return Measured.over_seeds(name, unit, values, run.seeds)

    def change(key: str) -> list[float]:
        return [100 * (getattr(j, key) - getattr(i, key)) for i, j in zip(independent, joint)]

    return run.result(
        claim=CLAIM,
        measured=[
            row("ensemble test error, λ = 0", [100 * s.ensemble_error for s in independent]),
            row("ensemble test error, λ = 1", [100 * s.ensemble_error for s in joint]),
            row("member test error, λ = 0", [100 * s.member_error for s in independent]),
            row("member test error, λ = 1", [100 * s.member_error for s in joint]),
            row("ambiguity, λ = 0", [s.ambiguity for s in independent], "nats"),
            row("ambiguity, λ = 1", [s.ambiguity for s in joint], "nats"),
            row("member error, joint minus independent", change("member_error")),
            row("ensemble error, joint minus independent", change("ensemble_error")),
        ],
        thresholds=[
            Threshold(
                "member error, joint minus independent",
                ">=",
                5.0,
                "members of a jointly trained ensemble are individually poor (co-dependence)",
            ),
            Threshold(
                "ensemble error, joint minus independent",
                ">",
                0.0,
                "the jointly trained ensemble generalises worse than the independent one",
            ),
        ],
        config={
            "dataset": "digits",
            "members": MEMBERS,
            "member": f"64-{WIDTH}-10 ReLU MLP",
            "combiner": "normalised geometric mean",
            "optimizer": {"name": "Adam", "lr": 3e-3, "batch_size": 64, "epochs": epochs},
            "lambdas": list(lams),
        },
    )
