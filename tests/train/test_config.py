"""TrainConfig: defaults, files, overrides, and errors that name the key."""

import pytest

from dlskills.train.config import (
    TrainConfig,
    make_config,
    parse_assignment,
    read_config_file,
)


def test_layers_override_in_order_and_none_means_not_given():
    config = make_config({"lr": 0.1, "epochs": 4}, {"lr": 0.2, "epochs": None})
    assert config.lr == 0.2 and config.epochs == 4 and config.model == "cnn"
    assert isinstance(make_config({"lr": 1}).lr, float)


def test_unknown_key_gets_a_did_you_mean():
    with pytest.raises(ValueError, match=r"unknown config key 'lrr'; did you mean 'lr'\?"):
        make_config({"lrr": 0.1})
    with pytest.raises(ValueError, match=r"unknown config key 'zzz' \(known keys: model"):
        make_config({"zzz": 1})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("lr", -1.0, "must be > 0"),
        ("lr", "fast", "must be a number"),
        ("batch_size", 0, "must be > 0"),
        ("batch_size", 2.5, "must be an integer"),
        ("epochs", True, "must be an integer"),
        ("dropout", 1.0, r"must be in \[0, 1\)"),
        ("nan_policy", "ignore", "must be one of"),
        ("compile", "yes", "must be true/false"),
        ("opt", [1], "must be a table"),
        ("seed", -1, "must be in"),
        ("milestones", [15, 10], "must be increasing positive epochs"),
        ("milestones", [0, 10], "must be increasing positive epochs"),
        ("milestones", 10, "must be a list"),
        ("label_smoothing", 1.0, r"must be in \[0, 1\)"),
        ("ema_decay", -0.5, r"must be in \[0, 1\)"),
    ],
)
def test_bad_values_name_the_key_and_its_option(key, value, message):
    option = {"opt": "--opt"}.get(key, "--" + key.replace("_", "-"))
    with pytest.raises(ValueError, match=rf"^config key '{key}' \({option}\) {message}"):
        make_config({key: value})


def test_epochs_or_max_steps_required():
    with pytest.raises(ValueError, match="'epochs' and 'max_steps'"):
        TrainConfig(epochs=None, max_steps=None)


def test_toml_and_yaml_files(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('model = "mlp"\nbatch-size = 64\n[opt]\nbetas = [0.8, 0.9]\n')
    assert read_config_file(toml) == {
        "model": "mlp",
        "batch_size": 64,
        "opt": {"betas": [0.8, 0.9]},
    }
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("lr: 0.01\nschedule: step\n")
    assert make_config(read_config_file(yaml_file)).schedule == "step"
    bad = tmp_path / "bad.toml"
    bad.write_text("lrr = 1\n")
    with pytest.raises(
        ValueError, match=r"unknown config key 'lrr' in bad.toml; did you mean 'lr'"
    ):
        read_config_file(bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("lr = \n")
    with pytest.raises(ValueError, match="invalid TOML"):
        read_config_file(broken)
    with pytest.raises(FileNotFoundError):
        read_config_file(tmp_path / "absent.toml")
    (tmp_path / "c.json").write_text("{}")
    with pytest.raises(ValueError, match=r"\.toml, \.yaml"):
        read_config_file(tmp_path / "c.json")


def test_yaml_without_pyyaml_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "yaml", None)
    path = tmp_path / "c.yml"
    path.write_text("lr: 0.1\n")
    with pytest.raises(ValueError, match="needs PyYAML"):
        read_config_file(path)


def test_parse_assignment_literals():
    assert parse_assignment("betas=0.9,0.99", "--opt") == ("betas", (0.9, 0.99))
    assert parse_assignment("eps=1e-8", "--opt") == ("eps", 1e-8)
    assert parse_assignment("nesterov=true", "--opt") == ("nesterov", True)
    assert parse_assignment("mode=fan_out", "--opt") == ("mode", "fan_out")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_assignment("oops", "--opt")


def test_resolve_adapts_the_defaults_to_the_run():
    from dlskills.train.config import resolve

    default = make_config({})
    recipe = resolve(default, steps_per_epoch=20, total_steps=400, default_lr=3e-3)
    assert (recipe.lr, recipe.warmup_steps, recipe.milestones) == (3e-3, 20, None)
    short = resolve(default, steps_per_epoch=20, total_steps=10, default_lr=1e-3)
    assert (short.lr, short.warmup_steps) == (1e-3, 1)  # a tenth of 10 steps
    assert resolve(default, steps_per_epoch=1, total_steps=5, default_lr=1).warmup_steps == 0
    step = make_config({"schedule": "step"})
    # half and three quarters of the run, in epochs: 400 steps → steps 200, 300
    assert resolve(step, steps_per_epoch=20, total_steps=400, default_lr=1).milestones == [10, 15]
    # 10 steps of a 20-step epoch → steps 5 and 7 = epochs 0.25 and 0.35
    assert resolve(step, steps_per_epoch=20, total_steps=10, default_lr=1).milestones == [
        0.25,
        0.35,
    ]
    given = make_config({"schedule": "step", "milestones": [1.5]})
    assert resolve(given, steps_per_epoch=20, total_steps=40, default_lr=1).milestones == [1.5]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"warmup_steps": 40}, r"'warmup_steps' \(--warmup-steps\) is 40 but the run has only 40"),
        ({"milestones": [1]}, r"'milestones' \(--milestones\) applies to --schedule step only"),
        (
            {"schedule": "step", "milestones": [1, 2]},
            r"'milestones' \(--milestones\): epoch 2 is not inside the run's 2 epochs",
        ),
        (
            {"schedule": "step", "milestones": [0.01, 0.02]},
            r"'milestones' \(--milestones\): \[0.01, 0.02\] fall on steps \[0, 0\]; give epochs "
            r"that fall on distinct steps ≥ 1 \(a step is 0.05 epochs\)",
        ),
    ],
)
def test_resolve_rejects_explicit_values_the_run_cannot_use(values, message):
    from dlskills.train.config import resolve

    with pytest.raises(ValueError, match=f"^config key {message}"):
        resolve(make_config(values), steps_per_epoch=20, total_steps=40, default_lr=1)
