"""The modular loss of 1902.04422: the geometric-mean combiner, the ambiguity decomposition, the
two ends of λ, and ``ModularLoss`` in the Trainer."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dlskills.train import Trainer
from dlskills.train.techniques.ensemble import (
    Ensemble,
    ModularLoss,
    combine,
    ensemble_statistics,
    modular_loss,
)


def _logits(members=3, n=5, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, classes, generator=g, dtype=torch.float64) for _ in range(members)]


def test_combine_is_the_normalised_geometric_mean_of_the_distributions():
    logits = _logits()
    probs = [z.softmax(-1) for z in logits]
    geometric = (probs[0] * probs[1] * probs[2]) ** (1 / 3)
    torch.testing.assert_close(combine(logits).exp(), geometric / geometric.sum(-1, keepdim=True))


def test_cross_entropy_decomposes_into_member_loss_minus_ambiguity():
    logits, y = _logits(), torch.tensor([0, 1, 2, 3, 1])
    probs = torch.stack([z.softmax(-1) for z in logits])  # (M, n, C)
    z_norm = probs.log().mean(0).exp().sum(-1)  # normaliser of the geometric mean, ≤ 1
    mean = combine(logits).exp()
    kl = (mean * (mean.log() - probs.log())).sum(-1).mean(0)
    ambiguity = kl
    torch.testing.assert_close(ambiguity, -z_norm.log())
    members = -probs.log()[:, torch.arange(5), y].mean(0)
    ensemble = -mean.log()[torch.arange(5), y]
    torch.testing.assert_close(ensemble, members - ambiguity)
    assert (ambiguity >= 0).all()
    # L_λ = members' mean CE − λ·A, averaged over the batch
    for lam in (0.0, 0.3, 1.0):
        expected = (members - lam * ambiguity).mean()
        torch.testing.assert_close(modular_loss(logits, y, lam), expected)


def test_independent_training_has_no_cross_talk_and_joint_training_is_the_ensemble_loss():
    logits, y = _logits(), torch.tensor([0, 1, 2, 3, 1])
    first = logits[0].clone().requires_grad_()
    (grad_independent,) = torch.autograd.grad(modular_loss([first, *logits[1:]], y, 0.0), first)
    (alone,) = torch.autograd.grad(F.cross_entropy(first, y) / 3, first)
    torch.testing.assert_close(grad_independent, alone)
    others = [z * 3 for z in logits[1:]]
    (grad_joint,) = torch.autograd.grad(modular_loss([first, *others], y, 1.0), first)
    (changed,) = torch.autograd.grad(modular_loss([first, *logits[1:]], y, 1.0), first)
    assert not torch.allclose(grad_joint, changed)  # at λ = 1 the members are coupled


def _loader():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 5, generator=g), torch.randint(0, 3, (32,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=8, shuffle=False)


def test_lambda_zero_in_the_trainer_trains_each_member_as_if_alone():
    torch.manual_seed(0)
    members = [nn.Linear(5, 3) for _ in range(2)]
    alone = copy.deepcopy(members[0])
    ensemble = Ensemble(members)
    modular = ModularLoss(0.0)
    # the mean over M members scales each member's gradient by 1/M: lr·M gives the same step
    optimizer = torch.optim.SGD(ensemble.parameters(), lr=0.2)
    Trainer(
        ensemble, optimizer, modular.loss_fn, _loader(), callbacks=[modular], max_epochs=2
    ).fit()
    reference = torch.optim.SGD(alone.parameters(), lr=0.1)
    for _ in range(2):
        for x, y in _loader():
            reference.zero_grad()
            F.cross_entropy(alone(x), y).backward()
            reference.step()
    for trained, expected in zip(members[0].parameters(), alone.parameters()):
        torch.testing.assert_close(trained, expected)


def test_statistics_match_a_direct_computation_and_evaluation_uses_the_combined_output():
    torch.manual_seed(1)
    ensemble = Ensemble([nn.Linear(5, 3) for _ in range(3)])
    x, y = next(iter(_loader()))
    stats = ensemble_statistics(ensemble, x, y)
    logits = [m(x).detach() for m in ensemble.members]
    errors = [float((z.argmax(1) != y).float().mean()) for z in logits]
    assert stats.member_error == pytest.approx(sum(errors) / 3)
    combined = combine(logits)
    assert stats.ensemble_error == pytest.approx(float((combined.argmax(1) != y).float().mean()))
    member_loss = sum(float(F.cross_entropy(z, y)) for z in logits) / 3
    assert stats.ambiguity == pytest.approx(member_loss - float(F.nll_loss(combined, y)), rel=1e-5)
    modular = ModularLoss(0.5)
    trainer = Trainer(
        ensemble,
        torch.optim.SGD(ensemble.parameters(), lr=0.0),
        modular.loss_fn,
        _loader(),
        callbacks=[modular],
        max_epochs=1,
    )
    assert trainer.evaluate([(x, y)])["loss"] == pytest.approx(float(F.nll_loss(combined, y)))
    assert math.isclose(stats.ensemble_loss, float(F.nll_loss(combined, y)), rel_tol=1e-5)


def test_arguments_are_validated():
    with pytest.raises(ValueError, match="lam"):
        ModularLoss(1.5)
    with pytest.raises(ValueError, match="members"):
        Ensemble([nn.Linear(2, 2)])
    shared = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="members"):
        Ensemble([shared, shared])
    modular = ModularLoss(0.5)
    model = nn.Linear(5, 3)
    trainer = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        modular.loss_fn,
        _loader(),
        callbacks=[modular],
        max_epochs=1,
    )
    with pytest.raises(ValueError, match="model: needs an Ensemble"):
        trainer.fit()
