"""benchmarks/optim_step.py: progress lines per round and a figure with a legend."""

import argparse
import importlib.util
import re
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def optim_step():
    path = Path(__file__).parents[2] / "benchmarks" / "optim_step.py"
    spec = importlib.util.spec_from_file_location("optim_step_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_line_per_round_and_a_legend_that_names_the_colours(
    optim_step, monkeypatch, capsys, tmp_path, saved_figures
):
    monkeypatch.setitem(optim_step.SHAPE_SETS, "tiny", [(16,), (4, 4)])
    args = argparse.Namespace(rounds=3, optimizers=["adabound"], compile=[])
    median = optim_step.bench_shape("tiny", args)
    printed = capsys.readouterr()
    rounds = [line.split(" (")[0] for line in printed.err.splitlines()]
    # the in-place add that measures the bandwidth is timed beside the candidates
    assert rounds == [f"tiny: round {r}/3 {len(median) + 1} candidates" for r in (1, 2, 3)]
    # each zoo row against its memory-traffic bound: adabound's 7 passes
    [row] = [line for line in printed.out.splitlines() if line.startswith("| adabound default")]
    assert re.search(r"\| \d+\.\d\d \(7\) \|$", row), row
    assert "GB/s (an in-place add of the 32 floats" in printed.out

    optim_step.plot({"tiny": median}, str(tmp_path / "steps.png"))
    [fig] = saved_figures
    assert saved_figures.readable(fig)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:3] == [
        "torch.optim.Adam",
        "zoo optimizer, default path",
        "zoo optimizer, for-loop / foreach",
    ]
    assert "= torch Adam(fused)" in legend
    # one bar per candidate, named on the axis
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert sorted(ticks) == sorted(label.strip() for label in median)


def test_saved_medians_redraw_the_figure_without_timing(
    optim_step, monkeypatch, capsys, tmp_path, saved_figures
):
    import json
    import sys

    monkeypatch.setitem(optim_step.SHAPE_SETS, "tiny", [(16,), (4, 4)])
    saved = tmp_path / "medians.json"
    argv = ["optim_step.py", "--rounds", "1", "--shapes", "tiny", "--optimizers", "adabound"]
    monkeypatch.setattr(sys, "argv", [*argv, "--json", str(saved)])
    optim_step.main()
    medians = json.loads(saved.read_text())["medians"]
    assert list(medians) == ["tiny"] and medians["tiny"]["torch Adam(fused)"] > 0

    def no_timing(*args):
        raise AssertionError("--from-json must not time anything")

    monkeypatch.setattr(optim_step, "bench_shape", no_timing)
    png = tmp_path / "redrawn.png"
    monkeypatch.setattr(
        sys, "argv", ["optim_step.py", "--from-json", str(saved), "--png", str(png)]
    )
    optim_step.main()
    [fig] = saved_figures
    assert fig.legends and "= torch Adam(fused)" in [
        t.get_text() for t in fig.legends[0].get_texts()
    ]
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert sorted(ticks) == sorted(label.strip() for label in medians["tiny"])
