"""Checkpoint pairs: exact round trip of nested state with tensors, tamper/truncation detection,
no pickle on the load path, and a second name for a pair (best from last) that later saves leave
intact."""

import json
import os
import pickle

import pytest
import torch

from dlskills.train.checkpoint import (
    CheckpointError,
    checkpoint_paths,
    copy_checkpoint,
    load_checkpoint,
    save_checkpoint,
)


def adam_state():
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.randn(4))]
    optimizer = torch.optim.Adam(params, lr=1e-2, betas=(0.8, 0.99))
    for _ in range(3):
        optimizer.zero_grad()
        sum((p**2).sum() for p in params).backward()
        optimizer.step()
    return optimizer.state_dict()


def test_round_trip_keeps_types_and_bits(tmp_path):
    state = {
        "optimizer": adam_state(),
        "shape": (2, 3),
        "nested": [{"a": 1.5, "b": None, "c": "text"}, float("inf")],
    }
    extra = {"model.weight": torch.arange(6, dtype=torch.float64).reshape(2, 3)}
    path = save_checkpoint(tmp_path / "ck", state, extra)
    assert path == tmp_path / "ck.json" and (tmp_path / "ck.safetensors").is_file()
    loaded, tensors = load_checkpoint(tmp_path / "ck.safetensors")  # any of the three spellings
    original = state["optimizer"]
    assert loaded["shape"] == (2, 3) and loaded["nested"] == state["nested"]
    assert loaded["optimizer"]["param_groups"][0]["betas"] == (0.8, 0.99)
    assert set(loaded["optimizer"]["state"]) == {0, 1}  # int keys survive JSON
    for index in (0, 1):
        for key, value in original["state"][index].items():
            got = loaded["optimizer"]["state"][index][key]
            assert got.dtype == value.dtype and torch.equal(got, value)
    assert torch.equal(tensors["model.weight"], extra["model.weight"])


def test_optimizer_resumes_identically_from_loaded_state(tmp_path):
    save_checkpoint(tmp_path / "ck", {"opt": adam_state()})
    state, _ = load_checkpoint(tmp_path / "ck")
    twin = [torch.nn.Parameter(torch.ones(3, 2)), torch.nn.Parameter(torch.ones(4))]
    optimizer = torch.optim.Adam(twin, lr=0.5)
    optimizer.load_state_dict(state["opt"])
    assert optimizer.param_groups[0]["lr"] == 1e-2
    assert float(optimizer.state[twin[0]]["step"]) == 3.0


def test_tampered_tensor_file_is_rejected(tmp_path):
    save_checkpoint(tmp_path / "ck", {"x": torch.ones(4)})
    blob = bytearray((tmp_path / "ck.safetensors").read_bytes())
    blob[-1] ^= 0xFF
    (tmp_path / "ck.safetensors").write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(tmp_path / "ck")


def test_truncated_files_are_rejected(tmp_path):
    save_checkpoint(tmp_path / "ck", {"x": torch.ones(4)})
    tensor_file = tmp_path / "ck.safetensors"
    tensor_file.write_bytes(tensor_file.read_bytes()[:20])
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(tmp_path / "ck")
    json_file = tmp_path / "ck.json"
    json_file.write_text(json_file.read_text()[:30])
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(tmp_path / "ck")


def test_consistent_hash_but_bad_safetensors_and_missing_parts(tmp_path):
    json_path, tensor_path = checkpoint_paths(tmp_path / "ck")
    save_checkpoint(tmp_path / "ck", {"x": torch.ones(2)})
    record = json.loads(json_path.read_text())
    garbage = b"\x00" * 16
    tensor_path.write_bytes(garbage)
    record["sha256"] = __import__("hashlib").sha256(garbage).hexdigest()
    json_path.write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        load_checkpoint(tmp_path / "ck")
    tensor_path.unlink()
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "ck")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent")
    json_path.write_text(json.dumps({"format": "other"}))
    with pytest.raises(CheckpointError, match="not a dlskills checkpoint"):
        load_checkpoint(tmp_path / "ck")
    # a referenced tensor that the (valid, hash-matching) file lacks
    save_checkpoint(tmp_path / "ok", {"x": torch.ones(2)})
    record = json.loads((tmp_path / "ok.json").read_text())
    record["state"]["x"]["__tensor__"] = "state.y"
    (tmp_path / "ok.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(tmp_path / "ok")


def test_loading_never_unpickles(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "ck", {"opt": adam_state()})

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    state, _ = load_checkpoint(tmp_path / "ck")
    assert float(state["opt"]["state"][0]["step"]) == 3.0


def test_unsupported_values_are_named(tmp_path):
    with pytest.raises(TypeError, match=r"state\.f"):
        save_checkpoint(tmp_path / "ck", {"f": object()})


@pytest.mark.parametrize("crash_after", ["set_aside", "new_tensors"])
def test_a_save_interrupted_between_its_renames_loads_the_previous_pair(
    tmp_path, monkeypatch, crash_after
):
    """A crash inside save_checkpoint (SIGKILL between its writes) leaves a loadable pair."""
    import dlskills.train.checkpoint as checkpoint

    save_checkpoint(tmp_path / "ck", {"x": torch.zeros(3)})

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-save")

    # set_aside: killed before the new tensor file landed; new_tensors: before the new JSON did
    writer = "atomic_write_bytes" if crash_after == "set_aside" else "atomic_write_text"
    monkeypatch.setattr(checkpoint, writer, killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "ck", {"x": torch.ones(3)})
    monkeypatch.undo()
    state, _ = load_checkpoint(tmp_path / "ck")
    assert torch.equal(state["x"], torch.zeros(3))
    # a completed save leaves no set-aside file behind
    save_checkpoint(tmp_path / "ck", {"x": torch.ones(3)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.json", "ck.safetensors"]


def test_a_copied_pair_loads_its_own_tensors_and_outlives_later_saves(tmp_path, monkeypatch):
    first = {"w": torch.arange(6.0).reshape(2, 3)}
    save_checkpoint(tmp_path / "last", {"epoch": 1}, first)
    copy_checkpoint(tmp_path / "last", tmp_path / "best")
    record = json.loads((tmp_path / "best.json").read_text())
    assert record["tensor_file"] == "best.safetensors"
    assert os.path.samefile(tmp_path / "best.safetensors", tmp_path / "last.safetensors")
    save_checkpoint(tmp_path / "last", {"epoch": 2}, {"w": torch.zeros(2, 3)})
    state, tensors = load_checkpoint(tmp_path / "best")
    assert state == {"epoch": 1} and torch.equal(tensors["w"], first["w"])
    assert load_checkpoint(tmp_path / "last")[0] == {"epoch": 2}

    def no_hard_links(*args):
        raise OSError("hard links not supported")

    monkeypatch.setattr(os, "link", no_hard_links)  # e.g. FAT or some network file systems
    copy_checkpoint(tmp_path / "last", tmp_path / "best")
    assert not os.path.samefile(tmp_path / "best.safetensors", tmp_path / "last.safetensors")
    assert load_checkpoint(tmp_path / "best")[0] == {"epoch": 2}
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
