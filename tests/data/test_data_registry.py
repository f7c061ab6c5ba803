"""DataSplits, seeded loaders, split helpers and ``dlskills.data.load``."""

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from dlskills.data import DATASETS, DataSplits, load
from dlskills.data._registry import carve, split_counts, standardize, three_way_split


def tiny_splits(n_train=10):
    x = torch.arange(n_train * 2, dtype=torch.float32).reshape(n_train, 2)
    y = torch.arange(n_train) % 2
    return DataSplits(
        name="tiny",
        train=TensorDataset(x, y),
        val=TensorDataset(x[:3], y[:3]),
        test=TensorDataset(x[:5], y[:5]),
        task="classification",
        num_classes=2,
        input_shape=(2,),
    )


def epoch_order(loader):
    return torch.cat([x[:, 0] for x, _ in loader]).tolist()


def test_registered_datasets():
    assert {"digits", "spirals", "blobs", "teacher", "mnist", "cifar10"} <= set(DATASETS.names())
    with pytest.raises(ValueError, match="did you mean 'digits'"):
        load("digit")
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        load("spirals", seed=1.5)


def test_train_loader_shuffles_with_its_own_seeded_generator():
    splits = tiny_splits()
    train, val, test = splits.loaders(4, seed=3, eval_batch_size=2)
    assert isinstance(train.generator, torch.Generator)
    state = train.generator.get_state()
    first = epoch_order(train)
    assert sorted(first) == list(range(0, 20, 2)) and first != sorted(first)
    assert epoch_order(splits.loaders(4, seed=3)[0]) == first
    assert epoch_order(splits.loaders(4, seed=4)[0]) != first
    second = epoch_order(train)
    train.generator.set_state(state)  # what a checkpoint restores
    assert epoch_order(train) == first and epoch_order(train) == second
    assert epoch_order(val) == [0, 2, 4] and [len(x) for x, _ in val] == [2, 1]
    assert epoch_order(test) == [0, 2, 4, 6, 8] and train.num_workers == 0


def test_loader_arguments_are_validated():
    splits = tiny_splits()
    with pytest.raises(ValueError, match="batch_size"):
        splits.loaders(0)
    with pytest.raises(ValueError, match="eval_batch_size"):
        splits.loaders(2, eval_batch_size=-1)
    with pytest.raises(ValueError, match="seed"):
        splits.loaders(2, seed=-1)


def test_datasplits_validation_and_output_dim():
    splits = tiny_splits()
    assert splits.output_dim == 2 and splits.sizes() == (10, 3, 5)
    with pytest.raises(ValueError, match="task"):
        DataSplits("x", splits.train, splits.val, splits.test, "ranking", 2, (2,))
    with pytest.raises(ValueError, match="num_classes"):
        DataSplits("x", splits.train, splits.val, splits.test, "regression", 2, (2,))


def test_split_counts_and_three_way_split():
    assert split_counts(1797, 0.15, 0.15) == (1257, 270, 270)
    assert split_counts(10, 0.2, 0.1) == (7, 2, 1)
    with pytest.raises(ValueError, match="empty split"):
        split_counts(5, 0.05, 0.05)
    labels = np.repeat(np.arange(4), 50)
    train, val, test = three_way_split(
        200, seed=1, val_fraction=0.2, test_fraction=0.1, labels=labels
    )
    assert (len(train), len(val), len(test)) == (140, 40, 20)
    assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(200))
    assert np.bincount(labels[val]).tolist() == [10] * 4
    assert np.bincount(labels[test]).tolist() == [5] * 4
    with pytest.raises(ValueError, match="val_fraction"):
        three_way_split(200, seed=1, val_fraction=1.0, test_fraction=0.1)


@pytest.mark.parametrize(
    "labels",
    [
        None,
        np.repeat(np.arange(4), 50),
        # unequal classes whose shares tie in their remainders: the tie-break draws matter
        np.array([0] * 7 + [1] * 7 + [2] * 5 + [3] * 3 + [4] * 9 + [5] * 2),
        np.random.default_rng(0).integers(0, 10, 600),
    ],
    ids=["unstratified", "balanced", "ties", "random"],
)
def test_carve_draws_what_scikit_learn_draws(labels):
    """carve() reimplements train_test_split's draw so that data loading skips sklearn's import;
    the datasets' splits (and every documented number) depend on it being the same draw."""
    from sklearn.model_selection import train_test_split

    n = 200 if labels is None else len(labels)
    indices = np.arange(n)[::-1].copy()  # positions and sample indices differ
    for seed in range(6):
        for size in (19, n // 3, n - 12):
            stratify = None if labels is None else labels[indices]
            rest, carved = train_test_split(
                indices, test_size=size, random_state=seed, stratify=stratify
            )
            expected = np.sort(rest), np.sort(carved)
            measured = carve(indices, size, seed, labels)
            assert all(np.array_equal(a, b) for a, b in zip(measured, expected, strict=True))


def test_carve_refuses_what_cannot_be_stratified():
    with pytest.raises(ValueError, match="cannot stratify 5 samples of 3 classes"):
        carve(np.arange(5), 2, 0, np.array([0, 0, 1, 1, 2]))


def test_standardize_uses_train_statistics_only():
    train = np.array([[1.0, 3.0], [5.0, 7.0]])
    other = np.array([[4.0, 4.0]])
    (train_std, other_std), mean, std = standardize(train, other)
    assert mean == pytest.approx(4.0) and std == pytest.approx(np.sqrt(5.0))
    np.testing.assert_allclose(other_std, [[0.0, 0.0]])
    assert train_std.dtype == np.float32
    (_, per_column), mean, std = standardize(train, other, axis=(0,))
    np.testing.assert_allclose(mean, [3.0, 5.0])
    np.testing.assert_allclose(per_column, [[0.5, -0.5]])
    with pytest.raises(ValueError, match="constant"):
        standardize(np.ones((3, 2)))
