"""Time to first step (issue 16, item 7): `dlskills train` on digits imports neither scikit-learn
nor matplotlib before its first optimizer step (each costs seconds; the data file is read
directly and plots are drawn after training), and no package at all beyond those the smallest
torch program with an optimizer imports (torch._dynamo's closure: the floor of any torch
training script), except dlskills and safetensors (the checkpoint written before the first
step). The probes are the benchmark's own (benchmarks/time_to_first_step.py), so the test and
the benchmark measure the same thing; wall times are the benchmark's (they move with load)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "time_to_first_step.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("time_to_first_step", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_reaches_its_first_step_without_sklearn_or_matplotlib():
    benchmark = _benchmark()
    probe = benchmark.first_step([])  # exits at the first step
    assert "sklearn" not in probe["loaded"] and "matplotlib" not in probe["loaded"]
    floor = benchmark.baseline("torch step")["modules"]
    packages = {name.split(".")[0] for name in probe["modules"]}
    assert packages - {name.split(".")[0] for name in floor} == {"dlskills", "safetensors"}


def test_loading_digits_does_not_import_sklearn():
    code = (
        "import sys\n"
        "from dlskills.data import load\n"
        "splits = load('digits', seed=0)\n"
        "print(splits.sizes(), sorted(m for m in ('sklearn', 'matplotlib') if m in sys.modules))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "(1257, 270, 270) []"
