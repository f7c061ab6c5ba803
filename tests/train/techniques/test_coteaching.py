"""Co-teaching (1905.07202, Han et al.'s Algorithm 1): symmetric label noise, the small-loss
exchange against a literal port of the algorithm, the kept-fraction schedule, and the callback
in the Trainer (τ = 0 is plain training of both networks)."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dlskills.train import Trainer
from dlskills.train.techniques.coteaching import CoTeaching, coteaching_loss, noisy_labels
from dlskills.train.techniques.ensemble import Ensemble


def test_symmetric_noise_flips_the_asked_fraction_to_other_classes_uniformly():
    labels = torch.arange(60000) % 10
    noisy = noisy_labels(labels, 0.4, 10, torch.Generator().manual_seed(0))
    flipped = noisy != labels
    assert flipped.float().mean().item() == pytest.approx(0.4, abs=0.01)
    # a flipped label is any of the 9 other classes with probability 1/9
    offsets = ((noisy - labels) % 10)[flipped]
    counts = torch.bincount(offsets, minlength=10).float() / flipped.sum()
    assert counts[0] == 0
    torch.testing.assert_close(counts[1:], torch.full((9,), 1 / 9), atol=0.01, rtol=0)
    assert torch.equal(noisy_labels(labels, 0.0, 10, torch.Generator()), labels)


def _han_port(logits_1, logits_2, labels, forget_rate):
    """Han et al.'s loss_coteaching, line by line (their public code's order of operations)."""
    loss_1 = F.cross_entropy(logits_1, labels, reduction="none")
    ind_1_sorted = torch.argsort(loss_1.detach())
    loss_2 = F.cross_entropy(logits_2, labels, reduction="none")
    ind_2_sorted = torch.argsort(loss_2.detach())
    num_remember = int((1 - forget_rate) * len(labels))
    ind_1_update, ind_2_update = ind_1_sorted[:num_remember], ind_2_sorted[:num_remember]
    loss_1_update = F.cross_entropy(logits_1[ind_2_update], labels[ind_2_update])
    loss_2_update = F.cross_entropy(logits_2[ind_1_update], labels[ind_1_update])
    return loss_1_update, loss_2_update


def test_each_network_learns_only_from_the_samples_its_peer_finds_easiest():
    g = torch.Generator().manual_seed(0)
    first = torch.randn(10, 4, generator=g, requires_grad=True)
    second = torch.randn(10, 4, generator=g, requires_grad=True)
    labels = torch.randint(0, 4, (10,), generator=g)
    loss = coteaching_loss(first, second, labels, keep=6)
    one, two = _han_port(first, second, labels, 0.4)
    torch.testing.assert_close(loss, one + two)
    grad_first, grad_second = torch.autograd.grad(loss, (first, second))
    easiest_for_second = set(
        torch.argsort(F.cross_entropy(second, labels, reduction="none"))[:6].tolist()
    )
    used_by_first = set(torch.nonzero(grad_first.abs().sum(1)).flatten().tolist())
    assert used_by_first == easiest_for_second
    assert len(torch.nonzero(grad_second.abs().sum(1))) == 6


def test_kept_fraction_ramps_linearly_to_one_minus_tau():
    coteaching = CoTeaching(0.4, ramp_epochs=5)
    kept = [coteaching.kept_fraction(epoch) for epoch in range(8)]
    assert kept == pytest.approx([1.0, 0.92, 0.84, 0.76, 0.68, 0.6, 0.6, 0.6])


def _loader():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 6, generator=g), torch.randint(0, 3, (40,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=10, shuffle=False)


def _pair():
    torch.manual_seed(0)
    return Ensemble([nn.Linear(6, 3), nn.Linear(6, 3)])


def test_tau_zero_trains_both_networks_on_every_label():
    pair = _pair()
    reference = [copy.deepcopy(m) for m in pair.members]
    coteaching = CoTeaching(0.0)
    optimizer = torch.optim.SGD(pair.parameters(), lr=0.1)
    Trainer(
        pair, optimizer, coteaching.loss_fn, _loader(), callbacks=[coteaching], max_epochs=2
    ).fit()
    for net in reference:
        sgd = torch.optim.SGD(net.parameters(), lr=0.1)
        for _ in range(2):
            for x, y in _loader():
                sgd.zero_grad()
                F.cross_entropy(net(x), y).backward()
                sgd.step()
    for trained, expected in zip(pair.members, reference):
        for a, b in zip(trained.parameters(), expected.parameters()):
            torch.testing.assert_close(a, b)


def test_in_the_trainer_the_epoch_sets_how_many_samples_are_exchanged():
    pair = _pair()
    coteaching = CoTeaching(0.5, ramp_epochs=1)
    seen = []

    def loss_fn(outputs, targets):
        loss = coteaching.loss_fn(outputs, targets)
        seen.append((coteaching.epoch, int(coteaching.kept_fraction(coteaching.epoch) * 10)))
        return loss

    trainer = Trainer(
        pair,
        torch.optim.SGD(pair.parameters(), lr=0.1),
        loss_fn,
        _loader(),
        callbacks=[coteaching],
        max_epochs=2,
    )
    trainer.fit()
    assert sorted(set(seen)) == [(0, 10), (1, 5)]
    x, y = next(iter(_loader()))
    with torch.no_grad():
        expected = float(F.nll_loss(pair.eval()(x), y))
    assert trainer.evaluate([(x, y)])["loss"] == pytest.approx(expected)


def test_arguments_are_validated():
    with pytest.raises(ValueError, match="forget_rate"):
        CoTeaching(1.0)
    with pytest.raises(ValueError, match="ramp_epochs"):
        CoTeaching(0.2, ramp_epochs=0)
    with pytest.raises(ValueError, match="rate"):
        noisy_labels(torch.zeros(3).long(), 1.5, 10, torch.Generator())
    with pytest.raises(ValueError, match="num_classes"):
        noisy_labels(torch.zeros(3).long(), 0.1, 1, torch.Generator())
    three = Ensemble([nn.Linear(6, 3) for _ in range(3)])
    coteaching = CoTeaching(0.2)
    trainer = Trainer(
        three,
        torch.optim.SGD(three.parameters(), lr=0.1),
        coteaching.loss_fn,
        _loader(),
        callbacks=[coteaching],
        max_epochs=1,
    )
    with pytest.raises(ValueError, match="2 peers"):
        trainer.fit()
