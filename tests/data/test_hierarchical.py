"""The hierarchical concept of 1905.10337: its equations on hand-picked points, and the moments
that make α² the kernels' floor (unit-variance parts, G∘F orthogonal to low-degree polynomials)."""

import math

import pytest
import torch

from dlskills.data import load
from dlskills.data.hierarchical import concept_directions, concept_parts, sample_concept


def test_directions_are_orthonormal_and_fixed_by_the_concept_seed():
    u = concept_directions(16, 4, concept_seed=3)
    assert u.shape == (4, 16)
    torch.testing.assert_close(u @ u.T, torch.eye(4, dtype=torch.float64))
    assert torch.equal(u, concept_directions(16, 4, concept_seed=3))
    assert not torch.allclose(u, concept_directions(16, 4, concept_seed=4))


def test_parts_follow_the_equations_on_a_hand_computed_point():
    # u = e1, e2, e3 and x = (1, 2, 0): f = (0, 3/√2, −1/√2)
    base, composed = concept_parts(torch.tensor([[1.0, 2.0, 0.0]]), torch.eye(3))
    assert base.item() == pytest.approx((3 - 1) / math.sqrt(2) / math.sqrt(3))
    assert composed.item() == pytest.approx((3 / math.sqrt(2)) * (-1 / math.sqrt(2)) / math.sqrt(3))


def test_target_is_base_plus_alpha_composed():
    x, y = sample_concept(50, dim=6, k=3, alpha=0.7, seed=1, concept_seed=2)
    base, composed = concept_parts(x.double(), concept_directions(6, 3, 2))
    torch.testing.assert_close(y.double(), base + 0.7 * composed, atol=1e-5, rtol=1e-5)
    again = sample_concept(50, dim=6, k=3, alpha=0.7, seed=1, concept_seed=2)
    assert torch.equal(x, again[0]) and torch.equal(y, again[1])


def test_unit_variance_uncorrelated_parts_and_no_low_degree_part_in_g():
    x, _ = sample_concept(200_000, dim=8, k=4, seed=0)
    x = x.double()
    base, composed = concept_parts(x, concept_directions(8, 4))
    assert base.var().item() == pytest.approx(1.0, abs=0.03)
    assert composed.var().item() == pytest.approx(1.0, abs=0.05)
    assert abs(torch.corrcoef(torch.stack([base, composed]))[0, 1].item()) < 0.01
    # G∘F has no component of degree ≤ 3: uncorrelated with every x_i and x_i x_j
    rows, cols = torch.triu_indices(8, 8)
    monomials = torch.cat([x, x[:, rows] * x[:, cols]], dim=1)
    centred = monomials - monomials.mean(0)
    correlation = (centred * (composed - composed.mean())[:, None]).mean(0) / (
        centred.std(0) * composed.std()
    )
    assert correlation.abs().max().item() < 0.02
    # while F is a degree-2 polynomial: it correlates with the squares along the directions
    assert base.var().item() > 0.5


def test_registered_dataset_and_argument_checks():
    splits = load("hierarchical", seed=0, n=200, dim=8, k=2)
    assert splits.sizes() == (140, 30, 30) and splits.input_shape == (8,)
    assert splits.task == "regression" and splits.output_dim == 1
    with pytest.raises(ValueError, match="k must be at most dim"):
        concept_directions(3, 4)
    with pytest.raises(ValueError, match="alpha"):
        sample_concept(10, alpha=-1.0)
