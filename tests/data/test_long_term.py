"""Long-term RNN tasks (catalog 1211.5063): adding and temporal order, targets recomputed
independently from the inputs."""

import pytest
import torch

from dlskills.data import DATASETS, load
from dlskills.data.long_term import ADDING_TRIVIAL_MSE


def _all(splits):
    x = torch.cat([s.tensors[0] for s in (splits.train, splits.val, splits.test)])
    y = torch.cat([s.tensors[1] for s in (splits.train, splits.val, splits.test)])
    return x, y


def test_adding_target_is_the_sum_of_the_two_marked_values():
    splits = load("adding", seed=3, n=200, length=30)
    assert splits.task == "regression" and splits.input_shape == (30, 2)
    assert splits.sizes() == (140, 30, 30) and splits.output_dim == 1
    x, y = _all(splits)
    markers = x[:, :, 1]
    assert torch.equal(markers.sum(1), torch.full((200,), 2.0))
    positions = markers.nonzero()[:, 1].view(200, 2)
    assert (positions[:, 0] < 3).all() and (positions[:, 1] >= 15).all()
    expected = (x[:, :, 0] * markers).sum(1, keepdim=True)
    torch.testing.assert_close(y, expected)
    values = x[:, :, 0]
    assert values.min() >= 0 and values.max() <= 1


def test_adding_trivial_mse_is_the_target_variance():
    _, y = _all(load("adding", seed=0, n=20000, length=10))
    # predicting the constant 1: MSE ≈ Var(U + U') = 1/6 (standard error ≈ 0.0015 at n = 20000)
    assert ((y - 1.0) ** 2).mean().item() == pytest.approx(ADDING_TRIVIAL_MSE, abs=0.006)
    assert pytest.approx(1 / 6) == ADDING_TRIVIAL_MSE


def test_temporal_order_label_is_the_order_of_x_and_y():
    splits = load("temporal_order", seed=1, n=400, length=40)
    assert splits.num_classes == 4 and splits.input_shape == (40, 8)
    x, y = _all(splits)
    assert torch.equal(x.sum(2), torch.ones(400, 40))  # one-hot
    symbols = x.argmax(2)
    assert (symbols[:, 0] == 6).all() and (symbols[:, -1] == 7).all()  # B ... E
    relevant = (symbols == 4) | (symbols == 5)
    assert torch.equal(relevant.sum(1), torch.full((400,), 2))
    positions = relevant.nonzero()[:, 1].view(400, 2)
    assert ((positions[:, 0] >= 4) & (positions[:, 0] < 8)).all()
    assert ((positions[:, 1] >= 20) & (positions[:, 1] < 24)).all()
    first = symbols.gather(1, positions[:, :1]).squeeze(1) == 5
    second = symbols.gather(1, positions[:, 1:]).squeeze(1) == 5
    torch.testing.assert_close(y, 2 * first.long() + second.long())
    assert torch.bincount(y).tolist() == [100] * 4


@pytest.mark.parametrize("name", ["adding", "temporal_order"])
def test_deterministic_by_seed_and_registered_as_synthetic(name):
    a, b, c = (load(name, seed=s, n=100, length=20) for s in (5, 5, 6))
    assert DATASETS.entry(name).meta["source"] == "synthetic"
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert not torch.equal(a.train.tensors[0], c.train.tensors[0])


@pytest.mark.parametrize(
    "name, kwargs",
    [("adding", dict(length=1)), ("adding", dict(n=5)), ("temporal_order", dict(length=9))],
)
def test_bad_arguments_are_rejected(name, kwargs):
    with pytest.raises(ValueError):
        load(name, **kwargs)
