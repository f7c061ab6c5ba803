"""Consensus-of-models filter (1901.06566): the vote and abstention by hand, and on digits the
accepted inputs are classified better than the majority vote classifies all of them."""

import pytest
import torch
from torch import nn

from dlskills import data
from dlskills.train.techniques.consensus import ConsensusFilter, consensus_report


class Fixed(nn.Module):
    """A 'model' that predicts the given classes (one-hot logits), whatever the input."""

    def __init__(self, classes, num_classes=3):
        super().__init__()
        self.logits = nn.functional.one_hot(torch.tensor(classes), num_classes).float()

    def forward(self, x):
        return self.logits


def test_vote_and_abstention_by_hand():
    models = [Fixed([0, 1, 2, 1]), Fixed([0, 1, 1, 1]), Fixed([0, 2, 2, 0])]
    x = torch.zeros(4, 1)
    strict = ConsensusFilter(models)(x)
    assert strict.labels.tolist() == [0, 1, 2, 1]
    torch.testing.assert_close(strict.agreement, torch.tensor([1.0, 2 / 3, 2 / 3, 2 / 3]))
    assert strict.accepted.tolist() == [True, False, False, False]
    assert ConsensusFilter(models, min_agreement=2 / 3)(x).accepted.all()
    tie = ConsensusFilter([Fixed([0, 2]), Fixed([1, 2])], min_agreement=0.5)(torch.zeros(2, 1))
    assert tie.labels.tolist() == [0, 2] and tie.accepted.all()  # the lower class wins a tie
    assert ConsensusFilter([Fixed([0]), Fixed([1])])(torch.zeros(1, 1)).accepted.tolist() == [False]


def test_report_counts_by_hand():
    models = [Fixed([0, 1, 2, 1]), Fixed([0, 1, 1, 1]), Fixed([0, 2, 2, 0])]
    report = consensus_report(
        ConsensusFilter(models), [(torch.zeros(4, 1), torch.tensor([0, 1, 1, 2]))]
    )
    assert report.coverage == 0.25 and report.accepted_accuracy == 1.0
    assert report.majority_accuracy == 0.5
    assert report.member_accuracies == [0.5, 0.75, 0.25]


def test_arguments_are_validated():
    with pytest.raises(ValueError, match="at least 2"):
        ConsensusFilter([Fixed([0])])
    with pytest.raises(ValueError, match="min_agreement"):
        ConsensusFilter([Fixed([0]), Fixed([0])], min_agreement=0.0)
    with pytest.raises(ValueError, match="no data"):
        consensus_report(ConsensusFilter([Fixed([0]), Fixed([0])]), [])


def test_accepted_inputs_are_classified_better_on_digits():
    """Five small MLPs from different seeds, trained 8 epochs: unanimous inputs (most of the
    test set) are classified better than the majority vote classifies all inputs, which is at
    least as good as the average member."""
    splits = data.load("digits", seed=0)
    models = []
    for seed in range(5):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        train, _, _ = splits.loaders(64, seed=seed)
        for _ in range(8):
            for x, y in train:
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
        models.append(model)
    _, _, test = splits.loaders(64, seed=0)
    report = consensus_report(ConsensusFilter(models), test)
    assert 0.8 < report.coverage < 1.0
    assert report.accepted_accuracy > report.majority_accuracy
    assert report.accepted_accuracy > 0.975  # measured 0.984 (majority vote 0.956)
    assert report.majority_accuracy >= sum(report.member_accuracies) / 5 - 0.005
