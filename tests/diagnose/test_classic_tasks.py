"""rumelhart-1985 (XOR, 8-3-8 encoder) and rumelhart-1986 (symmetry detection with 6 inputs and
2 hidden units): the nets learn the tasks with momentum gradient descent on the squared error,
and the symmetry net finds the paper's solution (mirror-opposite weights in ratio ≈ 1:2:4)."""

import pytest
import torch

from dlskills.diagnose.classic_tasks import solve_rate, task_patterns, train_classic


def test_patterns():
    x, t = task_patterns("symmetry")
    assert x.shape == (64, 6) and int(t.sum()) == 8  # 2³ palindromes of length 6
    assert t[x.tolist().index([1, 0, 1, 1, 0, 1])] == 1
    assert t[x.tolist().index([1, 0, 1, 1, 0, 0])] == 0
    x, t = task_patterns("xor")
    assert t.flatten().tolist() == [0, 1, 1, 0]
    with pytest.raises(ValueError, match="task"):
        task_patterns("parity")


def test_xor_is_learned():
    result = train_classic("xor", seed=0)
    assert result.solved and result.sweeps < 1000
    assert (result.outputs.flatten() > 0.5).tolist() == [False, True, True, False]


def test_encoder_8_3_8_learns_a_code_through_3_hidden_units():
    result = train_classic("encoder", seed=0)
    assert result.solved
    assert torch.equal(result.outputs.argmax(1), torch.arange(8))
    # the 8 hidden codes must be distinct to be decoded
    assert torch.pdist(result.hidden).min() > 0.1


def test_symmetry_detection_learns_the_papers_solution():
    result = train_classic("symmetry", seed=1)
    assert result.solved and result.sweeps < 5000
    weights = result.model[0].weight.detach()  # (2 hidden, 6 inputs)
    magnitude = weights.abs().amax(1, keepdim=True)
    # each hidden unit: weights on mirror inputs are equal and opposite ...
    assert ((weights + weights.flip(1)).abs() / magnitude).max() < 0.05
    # ... so symmetric inputs cancel, and their sizes are in ratio ≈ 1:2:4 so no asymmetric input
    # cancels; the two hidden units are opposite in sign
    sizes = weights[:, :3].abs().sort(dim=1).values
    ratios = sizes[:, 1:] / sizes[:, :-1]
    assert ((ratios > 1.5) & (ratios < 2.5)).all()
    assert (torch.sign(weights[0]) == -torch.sign(weights[1])).all()


@pytest.mark.slow
def test_solve_rates_over_seeds():
    assert solve_rate("xor", range(10)) >= 0.8
    assert solve_rate("encoder", range(10)) >= 0.9
    assert solve_rate("symmetry", range(10)) >= 0.6
