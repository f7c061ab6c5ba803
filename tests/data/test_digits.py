"""digits: 70/15/15 stratified split by seed, standardised with training statistics."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from dlskills.data import load


@pytest.fixture(scope="module")
def splits():
    return load("digits", seed=0)


def raw_rows(splits, part):
    """Undo the standardisation: the original 0..16 pixel values of a split."""
    x = part.tensors[0].double().numpy()
    pixels = np.rint((x * splits.info["std"] + splits.info["mean"]) * 16)
    return pixels.astype(np.int64).reshape(len(x), 64)


def test_shapes_types_and_sizes(splits):
    assert splits.sizes() == (1257, 270, 270)
    assert splits.input_shape == (1, 8, 8) and splits.num_classes == 10
    assert splits.task == "classification" and splits.name == "digits"
    x, y = splits.train.tensors
    assert x.shape == (1257, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64


def test_splits_partition_the_dataset_with_their_labels(splits):
    bunch = load_digits()
    index = {row.tobytes(): i for i, row in enumerate(bunch.data.astype(np.int64))}
    seen = []
    for part in (splits.train, splits.val, splits.test):
        rows = [index.get(row.tobytes()) for row in raw_rows(splits, part)]
        # the 1797 images are distinct, so each row maps back to one original sample
        assert np.array_equal(bunch.target[rows], part.tensors[1].numpy())
        seen += [row.tobytes() for row in raw_rows(splits, part)]
    assert sorted(seen) == sorted(row.tobytes() for row in bunch.data.astype(np.int64))


def test_stratified(splits):
    overall = np.bincount(load_digits().target) / 1797
    for part in (splits.val, splits.test):
        counts = np.bincount(part.tensors[1].numpy(), minlength=10)
        assert np.all(np.abs(counts - overall * 270) <= 1)


def test_standardised_with_train_statistics(splits):
    x_train = splits.train.tensors[0].double()
    assert x_train.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert x_train.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-6)
    train_pixels = raw_rows(splits, splits.train) / 16
    assert splits.info["mean"] == pytest.approx(train_pixels.mean())
    assert splits.info["std"] == pytest.approx(train_pixels.std())
    assert abs(splits.test.tensors[0].mean().item()) > 1e-4  # not re-standardised on its own


def test_deterministic_by_seed(splits):
    again = load("digits", seed=0, data_dir="/nonexistent/ignored")
    other = load("digits", seed=1)
    assert torch.equal(again.test.tensors[0], splits.test.tensors[0])
    assert not torch.equal(other.test.tensors[1], splits.test.tensors[1])


def test_custom_fractions():
    assert load("digits", val_fraction=0.1, test_fraction=0.2).sizes() == (1258, 180, 359)
    with pytest.raises(ValueError, match="test_fraction"):
        load("digits", test_fraction=0)
