"""Time to first step (issue 16, item 7): `dlskills train` on digits imports neither scikit-learn
nor matplotlib before its first optimizer step (each costs seconds; the data file is read
directly and plots are drawn after training). The probe is the benchmark's own
(benchmarks/time_to_first_step.py), so the test and the benchmark measure the same thing."""

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
    probe = _benchmark().first_step([])  # exits at the first step
    assert "sklearn" not in probe["loaded"] and "matplotlib" not in probe["loaded"]


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
