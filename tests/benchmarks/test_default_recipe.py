"""benchmarks/default_recipe.py: the misclassified test images and their figure."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def default_recipe():
    path = Path(__file__).parents[2] / "benchmarks" / "default_recipe.py"
    spec = importlib.util.spec_from_file_location("default_recipe_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_mistakes_are_the_test_errors_the_run_reports(default_recipe, tmp_path):
    from dlskills.train.config import make_config
    from dlskills.train.runs import train_run

    config = make_config({"epochs": 1}, {"seed": 0, "out": str(tmp_path), "progress": False})
    summary = train_run(config)
    *_, test_size, svc_predictions = default_recipe.svc_baseline(0)
    log_probabilities, labels, images = default_recipe.test_log_probabilities(str(tmp_path))
    found = default_recipe.mistakes(log_probabilities, labels, images, 0, svc_predictions)
    # one epoch leaves errors to find; the run's own test evaluation counted them
    assert len(found) == round((1 - summary["test_accuracy"]) * test_size) > 0
    assert all(m.prediction != m.label and m.probability >= 0.1 for m in found)
    assert all(m.image.shape == (8, 8) and m.seed == 0 for m in found)
    assert [m.svc_prediction for m in found] == [int(svc_predictions[m.index]) for m in found]


def test_one_titled_panel_per_mistake_and_red_frames_where_svc_errs_too(
    default_recipe, tmp_path, saved_figures
):
    image = np.zeros((8, 8), dtype=np.float32)
    found = [
        default_recipe.Mistake(1, 56, 5, 9, 0.42, 9, image),
        default_recipe.Mistake(4, 80, 6, 8, 0.25, 6, image),
    ]
    default_recipe.plot_mistakes(found, str(tmp_path / "errors.png"), "2 errors")
    [fig] = saved_figures
    assert saved_figures.readable(fig)
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in titled] == [
        "seed 1 #56\n5 → 9 (p 0.42)",
        "seed 4 #80\n6 → 8 (p 0.25)",
    ]
    framed = [ax.axison and ax.spines["left"].get_edgecolor()[:3] for ax in titled]
    assert framed[0] == pytest.approx((0.839, 0.153, 0.157), abs=1e-3)  # tab:red
    assert framed[1] is False


def test_an_ensemble_of_runs_on_one_split_scores_their_mean_log_probabilities(
    default_recipe, tmp_path, capsys
):
    from dlskills.train.config import make_config
    from dlskills.train.runs import train_run

    log_probabilities = []
    for seed in (0, 1000):  # the benchmark's members 0 and 1 on the split of seed 0
        out = tmp_path / str(seed)
        train_run(make_config({"epochs": 1, "seed": seed, "data_seed": 0, "out": str(out)}))
        scores, labels, _ = default_recipe.test_log_probabilities(str(out))
        log_probabilities.append(scores)
    mean = torch.stack(log_probabilities).mean(0)
    expected = int((mean.argmax(-1) != labels).sum())
    alone = [int((s.argmax(-1) != labels).sum()) for s in log_probabilities]

    assert default_recipe.main(["--seeds", "0", "--set", "epochs=1", "--members", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"({expected} errors; the 2 runs alone: {alone[0]}, {alone[1]})" in printed
