"""`dlskills train` end to end: the run folder, option/config errors, fast help, `dlskills bench`,
and exact resume after a real SIGKILL of a training process."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from dlskills.cli import main


@pytest.fixture(autouse=True)
def _keep_thread_count():
    """A run sets torch's thread count (config key 'threads'); give other tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# small budget used by these tests: the MLP on digits, 2 epochs of batch 64 (20 steps each)
FAST = ["--model", "mlp", "--batch-size", "64", "--warmup-steps", "5", "--no-progress"]


def test_help_does_not_import_torch():
    """`dlskills --help`/`train --help` stay fast because no verb imports torch at import time."""
    code = "import sys, dlskills.cli as c; c.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0


def test_short_run_writes_the_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    # the default model and recipe on a 3-epoch budget (60 steps)
    assert main(["train", "--epochs", "3", "--out", str(out), "--seed", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    # stated bar for this short budget (measured 95.6 %; the full recipe's ≥ 98 % is the slow
    # test below)
    assert summary["test_accuracy"] >= 0.90
    assert f"{100 * summary['test_accuracy']:.2f} %" in printed
    assert summary["epochs"] == 3 and summary["steps"] == 60 and summary["seed"] == 1
    assert summary["stop_reason"] == "completed" and summary["parameters"] > 0
    assert {"torch", "python", "platform", "code_hash"} <= set(summary["environment"])
    for name in ("config.json", "metrics.csv", "loss.png", "accuracy.png", "report.md"):
        assert (out / name).is_file(), name
    assert (out / "checkpoints" / "best.safetensors").is_file()
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("epoch,step,seconds")
    report = (out / "report.md").read_text()
    assert f"{100 * summary['test_accuracy']:.2f} %" in report and "![loss](loss.png)" in report
    assert json.loads((out / "config.json").read_text())["model"] == "cnn"

    from dlskills.train.runs import load_run

    run = load_run(out)
    assert run.config["seed"] == 1 and len(run.metrics) == 3
    assert run.metrics[-1]["epoch"] == 3.0 and run.summary["steps"] == 60
    x, y = run.splits.test.tensors
    with torch.no_grad():
        accuracy = (run.model(x).argmax(1) == y).float().mean().item()
    assert accuracy == pytest.approx(summary["test_accuracy"])  # best checkpoint's weights

    # a tampered checkpoint: one clear error line, no traceback
    tensor_file = out / "checkpoints" / "last.safetensors"
    blob = bytearray(tensor_file.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    tensor_file.write_bytes(bytes(blob))
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "last.safetensors does not match the sha256" in error and "Traceback" not in error


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr", "-1"], "config key 'lr' (--lr) must be > 0"),
        (
            ["--model", "mlp", "--optimizer", "adamx"],
            "key 'optimizer' (--optimizer): unknown optimizer 'adamx'",
        ),
        (
            ["--model", "mpl"],
            "config key 'model' (--model): unknown model 'mpl'; did you mean 'mlp'",
        ),
        (["--opt", "oops"], "--opt expects KEY=VALUE"),
    ],
)
def test_bad_options_name_the_key(tmp_path, capsys, args, message):
    assert main(["train", *args, "--out", str(tmp_path / "r")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_config_file_and_cli_precedence(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("lrr = 0.1\n")
    assert main(["train", "--config", str(config)]) == 2
    assert "unknown config key 'lrr' in c.toml; did you mean 'lr'?" in capsys.readouterr().err
    config.write_text('model = "mlp"\nepochs = 1\nbatch_size = 512\n[opt]\neps = 1e-6\n')
    out = tmp_path / "r"
    assert (
        main(
            [
                "train",
                "--config",
                str(config),
                "--batch-size",
                "256",
                "--out",
                str(out),
                "--opt",
                "amsgrad=true",
                "--warmup-steps",
                "0",
                "--no-progress",
            ]
        )
        == 0
    )
    saved = json.loads((out / "config.json").read_text())
    assert saved["batch_size"] == 256 and saved["epochs"] == 1
    assert saved["opt"] == {"eps": 1e-6, "amsgrad": True}


def test_bench_lists_and_rejects(capsys, tmp_path, monkeypatch):
    assert main(["bench"]) == 0
    assert "trainer_overhead" in capsys.readouterr().out
    assert main(["bench", "trainer_overhed"]) == 2
    assert "did you mean 'trainer_overhead'" in capsys.readouterr().err
    assert main(["bench", "--dir", str(tmp_path / "nowhere")]) in (0, 2)  # falls back to repo's
    import dlskills

    monkeypatch.setattr(dlskills, "__file__", str(tmp_path / "site" / "dlskills" / "__init__.py"))
    monkeypatch.chdir(tmp_path)
    assert main(["bench"]) == 2
    assert "no benchmarks/ folder found" in capsys.readouterr().err
    empty = tmp_path / "b"
    empty.mkdir()
    assert main(["bench", "--dir", str(empty)]) == 0
    assert "no benchmarks" in capsys.readouterr().out


KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    from dlskills.train.callbacks import Callback
    from dlskills.train.config import make_config
    from dlskills.train.runs import train_run

    class SigKill(Callback):
        def on_batch_end(self, trainer):
            if trainer.step == int(sys.argv[2]):
                os.kill(os.getpid(), signal.SIGKILL)

    config = make_config({
        "model": "mlp", "batch_size": 64, "epochs": 2, "warmup_steps": 5, "progress": False,
        "checkpoint_every": 7, "dropout": 0.2, "out": sys.argv[1],
    })
    train_run(config, callbacks=[SigKill()])
    """
)


def _final_weights(run_dir):
    return load_file(run_dir / "checkpoints" / "last.safetensors")


def _rows_without_time(run_dir):
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, name in enumerate(header) if name != "seconds"]
    return [[line.split(",")[i] for i in keep] for line in lines]


def check_sigkill_resume(tmp_path, kill_step):
    """A subprocess trains and is SIGKILLed at ``kill_step``; `dlskills train --resume` finishes
    it (in this process, with the same thread count); the result must equal an uninterrupted
    run bit for bit."""
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    killed = tmp_path / "killed"
    process = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(killed), str(kill_step)], env=env, timeout=240
    )
    assert process.returncode == -signal.SIGKILL
    assert not (killed / "summary.json").exists()
    assert main(["train", "--resume", str(killed), "--no-progress"]) == 0
    reference = tmp_path / "reference"
    args = ["--epochs", "2", "--dropout", "0.2", "--checkpoint-every", "7", "--out", str(reference)]
    assert main(["train", *FAST, *args]) == 0
    a, b = _final_weights(reference), _final_weights(killed)
    model_keys = [k for k in a if k.startswith("state") or k.startswith("model.")]
    assert model_keys and all(torch.equal(a[k], b[k]) for k in a if k.startswith("model."))
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("state.optimizer"))
    assert _rows_without_time(killed) == _rows_without_time(reference)
    summary_a = json.loads((reference / "summary.json").read_text())
    summary_b = json.loads((killed / "summary.json").read_text())
    assert summary_a["test_accuracy"] == summary_b["test_accuracy"]
    assert summary_a["steps"] == summary_b["steps"] == 40


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path):
    """Killed at step 26 (epoch 2, 5 steps after the step-21 checkpoint)."""
    check_sigkill_resume(tmp_path, kill_step=26)


@pytest.mark.slow
@pytest.mark.parametrize("kill_step", [1, 7, 20, 22, 39])
def test_sigkill_at_other_steps(tmp_path, kill_step):
    check_sigkill_resume(tmp_path, kill_step)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_recipe_reaches_98_percent(tmp_path, seed):
    """The issue's claim: with no options, ≥ 98 % digits test accuracy in < 60 s (2 cores)."""
    assert main(["train", "--seed", str(seed), "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["test_accuracy"] >= 0.98
    assert summary["train_seconds"] < 60


@pytest.mark.slow
def test_compile_trains_and_saves_plain_parameter_names(tmp_path):
    """--compile (catalog 2002.03794) wraps the model with torch.compile; checkpoints keep the
    plain module's names so load_run and the doctor read them."""
    out = tmp_path / "r"
    assert main(["train", "--epochs", "2", "--compile", "--out", str(out), "--no-progress"]) == 0
    names = list(load_file(out / "checkpoints" / "best.safetensors"))
    assert "model.0.weight" in names and not any("_orig_mod" in n for n in names)
    assert json.loads((out / "summary.json").read_text())["test_accuracy"] >= 0.85


def test_regression_run_reports_the_test_loss(tmp_path, capsys):
    out = tmp_path / "r"
    args = ["--dataset", "teacher", "--model", "mlp", "--epochs", "2", "--warmup-steps", "0"]
    assert main(["train", *args, "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_accuracy"] is None and summary["test_loss"] > 0
    assert f"test loss {summary['test_loss']:.4g}" in capsys.readouterr().out
    assert (out / "checkpoints" / "best.json").is_file()  # chosen by validation loss


def test_train_prints_one_plain_line_per_epoch_when_stdout_is_not_a_terminal(tmp_path, capsys):
    progress_on = [option for option in FAST if option != "--no-progress"]
    argv = [*progress_on, "--epochs", "2", "--batch-size", "256", "--out", str(tmp_path / "r")]
    assert main(["train", *argv]) == 0
    lines = capsys.readouterr().out.splitlines()
    epochs = [line for line in lines if line.startswith("train: epoch ")]
    assert [line.split(" step ")[0] for line in epochs] == ["train: epoch 1/2", "train: epoch 2/2"]
    steps = json.loads((tmp_path / "r" / "summary.json").read_text())["steps"]
    assert f" step {steps // 2} " in epochs[0] and f" step {steps} " in epochs[1]
    assert "val_accuracy" in epochs[1]


# -- validation before side effects, adaptive defaults, interrupts (issue 16) ------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--activation", "relux"],
            "config key 'activation' (--activation): unknown activation 'relux'; did you mean "
            "'relu'",
        ),
        (["--opt", "foo=1"], "config key 'opt' (--opt): optimizer 'adamw' takes no argument 'foo'"),
        (
            ["--dataset", "cifar10"],
            "config key 'data_dir' (--data-dir): cifar10: data_dir 'data' is not a folder",
        ),
        (
            ["--batch-size", "5000"],
            "config key 'batch_size' (--batch-size) is 5000 but the digits training set has "
            "1257 examples: use at most 1257",
        ),
        (
            ["--warmup-steps", "10", "--max-steps", "10"],
            "config key 'warmup_steps' (--warmup-steps) is 10 but the run has only 10 optimizer "
            "steps: give fewer",
        ),
        (
            ["--milestones", "1"],
            "config key 'milestones' (--milestones) applies to --schedule step only (this run: "
            "cosine)",
        ),
        (
            ["--schedule", "step", "--epochs", "2", "--milestones", "1,2"],
            "config key 'milestones' (--milestones): epoch 2 is not inside the run's 2 epochs",
        ),
        (
            ["--optimizer", "aggmo"],
            "config key 'lr' (--lr): optimizer 'aggmo' has no default learning rate; give --lr",
        ),
        (["--resume", "runs/nonexistent"], "not a run folder: runs/nonexistent (no config.json)"),
    ],
)
def test_bad_values_stop_before_the_run_folder_exists(tmp_path, monkeypatch, capsys, args, message):
    """One line naming the option and the fix, exit code 2, and no runs/ folder: everything is
    checked before the first write."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DLSKILLS_DATA_DIR", raising=False)
    assert main(["train", "--model", "mlp", "--no-progress", *args]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"dlskills train: error: {message}") and error.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def _checkpoint_state(run_dir):
    return json.loads((run_dir / "checkpoints" / "last.json").read_text())["state"]


@pytest.mark.parametrize(
    ("args", "lr", "warmup_steps"),
    [
        # 1 epoch of 20 steps: warm-up min(20, 20 // 10) = 2 steps; AdamW's recipe lr 3e-3
        (["--epochs", "1"], 3e-3, 2),
        # 10 steps: 1 warm-up step; plain SGD the registry's run_lr 0.1 (torch's 1e-3 stays at
        # chance on a short run)
        (["--max-steps", "10", "--optimizer", "sgd"], 0.1, 1),
        # Adamax's documented default lr is 2e-3; the explicit warm-up is kept
        (["--max-steps", "10", "--optimizer", "adamax", "--warmup-steps", "9"], 2e-3, 9),
    ],
)
def test_defaults_adapt_to_the_run(tmp_path, args, lr, warmup_steps):
    out = tmp_path / "r"
    assert main(["train", "--model", "mlp", "--no-progress", "--out", str(out), *args]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["lr"] == lr and saved["warmup_steps"] == warmup_steps
    group = _checkpoint_state(out)["optimizer"]["param_groups"][0]
    assert group["initial_lr"] == lr


def test_step_schedule_from_the_training_docs_config(tmp_path):
    """docs/training.md's c.toml (SGD + Nesterov, step schedule, no milestones) on 4 epochs:
    milestones at epochs 2 and 3 (half and three quarters), the LR ×0.1 at each."""
    config = tmp_path / "c.toml"
    config.write_text(
        'model = "mlp"\noptimizer = "sgd"\nlr = 0.05\nmomentum = 0.9\nschedule = "step"\n'
        "epochs = 20\nbatch_size = 64\n[opt]\nnesterov = true\n[model_args]\ndepth = 3\n"
    )
    out = tmp_path / "r"
    args = ["--config", str(config), "--epochs", "4", "--out", str(out), "--no-progress"]
    assert main(["train", *args]) == 0
    assert json.loads((out / "config.json").read_text())["milestones"] == [2, 3]
    rows = (out / "metrics.csv").read_text().splitlines()
    lr_column = rows[0].split(",").index("lr")
    rates = [float(row.split(",")[lr_column]) for row in rows[1:]]
    # after steps 20, 40, 60, 80 (20 per epoch; the milestones are steps 40 and 60)
    assert rates == pytest.approx([0.05, 0.005, 0.0005, 0.0005])
    assert json.loads((out / "summary.json").read_text())["test_accuracy"] > 0.8


# long enough that a signal sent once the first checkpoint exists lands well before the end
INTERRUPT_STEPS = 200
INTERRUPT_BUDGET = ["--model", "mlp", "--max-steps", str(INTERRUPT_STEPS), "--no-progress"]


def _interrupted_then_resumed(run_dir, expected_weights, signal_name):
    """summary.json of the interrupted run, then `dlskills train --resume` to the end."""
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted"
    assert summary["steps"] == _checkpoint_state(run_dir)["trainer"]["step"] < INTERRUPT_STEPS
    assert summary["stop_message"].startswith(f"{signal_name} at step {summary['steps']};")
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    finished = json.loads((run_dir / "summary.json").read_text())
    assert finished["stop_reason"] == "completed" and finished["steps"] == INTERRUPT_STEPS
    resumed = _final_weights(run_dir)
    names = [k for k in expected_weights if k.startswith("model.")]
    assert names and all(torch.equal(expected_weights[k], resumed[k]) for k in names)
    return summary


def test_sigint_and_sigterm_stop_cleanly_and_the_printed_command_resumes(tmp_path, capsys):
    """SIGINT to a `dlskills train` process once its first checkpoint exists: it stops after the
    step in progress with a checkpoint there, writes summary.json (stop reason `interrupted`,
    the step), prints the resume command and exits with 130. SIGTERM (sent by the run itself at
    step 7, in this process) does the same. Both resumed runs end with the weights of an
    uninterrupted run."""
    import shlex
    import time

    from dlskills.train.callbacks import Callback
    from dlskills.train.config import make_config
    from dlskills.train.runs import train_run

    reference = tmp_path / "reference"
    assert main(["train", *INTERRUPT_BUDGET, "--out", str(reference)]) == 0
    expected = _final_weights(reference)

    class SigTermAtStep7(Callback):
        def on_batch_end(self, trainer):
            if trainer.step == 7:
                os.kill(os.getpid(), signal.SIGTERM)

    run_dir = tmp_path / "sigterm"
    config = make_config(
        {"model": "mlp", "max_steps": INTERRUPT_STEPS, "progress": False, "out": str(run_dir)}
    )
    assert train_run(config, callbacks=[SigTermAtStep7()])["steps"] == 7
    _interrupted_then_resumed(run_dir, expected, "SIGTERM")

    run_dir = tmp_path / "sigint"
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    process = subprocess.Popen(
        [sys.executable, "-m", "dlskills", "train", *INTERRUPT_BUDGET, "--out", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 240
    while not (run_dir / "checkpoints" / "last.json").is_file():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=240)
    assert process.returncode == 130, stderr
    command = f"dlskills train --resume {shlex.quote(str(run_dir))}"
    assert "stop reason interrupted" in stdout and f"  continue with: {command}\n" in stdout
    assert shlex.split(command)[1:] == ["train", "--resume", str(run_dir)]  # what the next runs
    _interrupted_then_resumed(run_dir, expected, "SIGINT")
