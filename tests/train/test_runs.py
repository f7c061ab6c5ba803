"""Run folders: naming, resume guards, load_run errors, environment record."""

import json
import random

import numpy as np
import pytest
import torch

from dlskills._seed import capture_rng, restore_rng, seed_everything
from dlskills.train.config import make_config
from dlskills.train.runs import code_hash, load_run, new_run_dir, resume_run


def test_new_run_dir_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert new_run_dir(make_config({"out": "x/y"})).as_posix() == "x/y"
    (tmp_path / "runs" / "exp").mkdir(parents=True)
    assert new_run_dir(make_config({"name": "exp"})).as_posix() == "runs/exp-2"
    stamped = new_run_dir(make_config({}))
    assert stamped.parent.name == "runs" and len(stamped.name) == len("20260101-000000")


def fake_run(tmp_path, **config):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(make_config(config).to_dict()))
    (run / "checkpoints" / "last.json").write_text("{}")
    return run


def test_resume_refuses_to_change_what_is_computed(tmp_path):
    run = fake_run(tmp_path, lr=0.01)
    with pytest.raises(ValueError, match="cannot change 'batch_size', 'epochs', 'lr' when resum"):
        resume_run(run, {"lr": 0.02, "batch_size": 8, "epochs": 40, "progress": False})


def test_resume_and_load_need_a_run_folder(tmp_path):
    for path in (tmp_path, tmp_path / "nonexistent"):
        with pytest.raises(FileNotFoundError, match=rf"^not a run folder: {path} \(no config"):
            resume_run(path)
        with pytest.raises(FileNotFoundError, match=rf"^not a run folder: {path} \(no config"):
            load_run(path)
    run = fake_run(tmp_path)
    (run / "checkpoints" / "last.json").unlink()  # stopped before its first checkpoint
    with pytest.raises(FileNotFoundError, match=r"has no checkpoint .*start it again"):
        resume_run(run)


def test_resume_reports_a_tampered_checkpoint(tmp_path):
    from dlskills.train.checkpoint import CheckpointError

    run = fake_run(tmp_path, model="mlp", epochs=1, warmup_steps=0)
    with pytest.raises(CheckpointError, match="not a dlskills checkpoint"):
        resume_run(run)


def test_code_hash_is_stable_hex():
    first = code_hash()
    assert first == code_hash() and len(first) == 16
    int(first, 16)


def test_rng_capture_restore_round_trip():
    seed_everything(5)
    plain, tensors = capture_rng()
    json.dumps(plain)  # the non-tensor part is JSON data
    first = (random.random(), np.random.rand(), torch.rand(3))
    restore_rng(plain, tensors)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[:2] == second[:2] and torch.equal(first[2], second[2])
    # checkpoints written before the Mersenne-Twister words moved to tensors: JSON lists
    version, internal, gauss_next = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    legacy = {
        "python": [version, list(internal), gauss_next],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }
    third = (random.random(), np.random.rand())
    restore_rng(legacy, {"torch": torch.get_rng_state()})
    assert (random.random(), np.random.rand()) == third
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)


def test_default_lr_is_the_optimizers_own():
    """Documented defaults: torch.optim.Adam 1e-3, Adamax 2e-3, Adagrad 1e-2; AdamW gets the
    measured recipe's 3e-3; plain SGD and ASGD the registry's run_lr 0.1 (torch's 1e-3 left a
    2-epoch digits run at chance); AggMo declares none."""
    from dlskills.train.runs import default_lr

    expected = {
        "sgd": 0.1,
        "asgd": 0.1,
        "adam": 1e-3,
        "adamax": 2e-3,
        "adagrad": 1e-2,
        "adamw": 3e-3,
    }
    assert {name: default_lr(name) for name in expected} == expected
    with pytest.raises(ValueError, match=r"^config key 'lr' \(--lr\): optimizer 'aggmo' has no"):
        default_lr("aggmo")
    with pytest.raises(ValueError, match=r"^config key 'optimizer' \(--optimizer\): unknown"):
        default_lr("adamx")


def test_label_smoothing_and_weight_averaging_come_from_the_config():
    from dlskills.train.callbacks import WeightAveraging
    from dlskills.train.runs import build, default_callbacks

    logits, targets = torch.randn(5, 10), torch.tensor([0, 3, 9, 3, 1])
    smoothed = make_config(
        {"label_smoothing": 0.2, "ema_decay": 0.9, "max_steps": 2, "warmup_steps": 0}
    )
    parts = build(smoothed)
    expected = torch.nn.functional.cross_entropy(logits, targets, label_smoothing=0.2)
    torch.testing.assert_close(parts.loss_fn(logits, targets), expected)
    averaging = [c for c in default_callbacks(smoothed) if isinstance(c, WeightAveraging)]
    assert [(c.mode, c.decay) for c in averaging] == [("ema", 0.9)]

    plain = make_config({"label_smoothing": 0, "ema_decay": 0, "max_steps": 2, "warmup_steps": 0})
    assert build(plain).loss_fn is torch.nn.functional.cross_entropy
    assert not any(isinstance(c, WeightAveraging) for c in default_callbacks(plain))


def test_data_seed_draws_the_split_and_seed_the_rest():
    from dlskills import data
    from dlskills.train.runs import build

    def parts(**keys):
        return build(make_config({"max_steps": 2, "warmup_steps": 0, **keys}))

    split_of_5 = data.load("digits", seed=5).test.tensors[0]
    mixed, seed_5, seed_0 = parts(seed=0, data_seed=5), parts(seed=5), parts(seed=0)
    assert torch.equal(mixed.splits.test.tensors[0], split_of_5)
    assert not torch.equal(seed_0.splits.test.tensors[0], split_of_5)
    first = [next(p.model.parameters()) for p in (mixed, seed_5, seed_0)]
    assert torch.equal(first[0], first[2]) and not torch.equal(first[0], first[1])  # init: seed
    with pytest.raises(ValueError, match=r"data_seed' \(--data-seed\) must be in \[0, 2\*\*32\)"):
        make_config({"data_seed": -1})
