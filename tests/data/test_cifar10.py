"""CIFAR-10 loader on CIFAR-like batches written here, and its restricted unpickler."""

import os
import pickle

import numpy as np
import pytest
import torch

from dlskills.data import load
from dlskills.data.cifar10 import restricted_loads

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


@pytest.fixture
def cifar_dir(tmp_path):
    rng = np.random.default_rng(0)
    contents = {}
    for index, name in enumerate(BATCHES):
        data = rng.integers(0, 256, (20, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.permutation(np.arange(20) % 10)]
        contents[name] = (data, labels)
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data}
        # protocol 2 (as the original Python 2 files) and 5 (numpy's out-of-band buffers)
        (tmp_path / name).write_bytes(pickle.dumps(batch, protocol=2 if index % 2 else 5))
    return tmp_path, contents


def test_load_cifar10(cifar_dir):
    folder, contents = cifar_dir
    splits = load("cifar10", data_dir=folder, seed=0)
    assert splits.sizes() == (90, 10, 20) and splits.input_shape == (3, 32, 32)
    assert np.bincount(splits.val.tensors[1].numpy()).tolist() == [1] * 10
    mean = torch.tensor(splits.info["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(splits.info["std"]).view(1, 3, 1, 1)
    restored = (splits.test.tensors[0].double() * std + mean) * 255
    data, labels = contents["test_batch"]
    # row layout: 1024 red, then 1024 green, then 1024 blue values, each 32×32 row-major
    np.testing.assert_allclose(restored[:, 1, 2, 3].numpy(), data[:, 1024 + 2 * 32 + 3], atol=1e-3)
    np.testing.assert_allclose(restored.flatten(1).numpy(), data, atol=1e-3)
    assert splits.test.tensors[1].tolist() == labels
    x_train = splits.train.tensors[0].double()
    per_channel_mean = x_train.mean(dim=(0, 2, 3))
    per_channel_std = x_train.std(dim=(0, 2, 3), unbiased=False)
    torch.testing.assert_close(
        per_channel_mean, torch.zeros(3, dtype=torch.float64), atol=1e-6, rtol=0
    )
    torch.testing.assert_close(
        per_channel_std, torch.ones(3, dtype=torch.float64), atol=1e-6, rtol=0
    )


def test_sub_folder_is_found(cifar_dir, tmp_path_factory):
    folder, _ = cifar_dir
    root = tmp_path_factory.mktemp("root")
    folder.rename(root / "cifar-10-batches-py")
    assert load("cifar-10", data_dir=root, val_fraction=0.2).sizes() == (80, 20, 20)


class RunsAShellCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_os_system(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": RunsAShellCommand(marker)})
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load global (os|posix)\.system"):
        restricted_loads(payload)
    handcrafted = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    with pytest.raises(pickle.UnpicklingError, match=r"global os\.system"):
        restricted_loads(handcrafted)
    assert not marker.exists()
    pickle.loads(handcrafted)  # the same bytes through plain pickle do run the command
    assert marker.exists()


def test_restricted_unpickler_builds_arrays_and_plain_values():
    values = {
        b"a": np.arange(6, dtype=np.float32).reshape(2, 3),
        b"b": [1, "x", 2.5],
        b"c": np.int64(7),
    }
    for protocol in (2, 5):
        loaded = restricted_loads(pickle.dumps(values, protocol=protocol))
        np.testing.assert_array_equal(loaded[b"a"], values[b"a"])
        assert loaded[b"b"] == [1, "x", 2.5] and loaded[b"c"] == 7


def test_malicious_batch_fails_cleanly(cifar_dir):
    folder, _ = cifar_dir
    marker = folder / "pwned"
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": RunsAShellCommand(marker)}))
    with pytest.raises(ValueError, match="data_batch_3: not a CIFAR-10 batch: refusing"):
        load("cifar10", data_dir=folder)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ([1, 2], "a dict was expected"),
        ({b"data": np.zeros((2, 3072), np.uint8)}, "needs 'data' and 'labels'"),
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, "N×3072 uint8"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, "2 ints in 0..9"),
    ],
)
def test_malformed_batches(cifar_dir, batch, message):
    folder, _ = cifar_dir
    (folder / "test_batch").write_bytes(pickle.dumps(batch))
    with pytest.raises(ValueError, match=message):
        load("cifar10", data_dir=folder)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data_batch_1.*data_batch_5 and test_batch"):
        load("cifar10", data_dir=tmp_path)
