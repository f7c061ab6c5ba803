"""Teacher–student filter recovery (1905.10157): the two-layer CNN's formula, the claim that a
student's filters recover the teacher's, and a student too small to do so as the control."""

import pytest
import torch
import torch.nn.functional as F

from dlskills import repro
from dlskills.diagnose.filter_recovery import (
    TwoLayerCNN,
    plot_filter_recovery,
    stroke_filters,
    teacher_student,
)


def test_two_layer_cnn_is_the_patch_formula():
    torch.manual_seed(0)
    model = TwoLayerCNN(filters=3, patch=4)
    x = torch.randn(5, 1, 12, 12)
    patches = F.unfold(x, kernel_size=4, stride=4)  # (N, 16, 9 patches)
    filters = model.filters.flatten(1)  # (3, 16)
    expected = torch.relu(filters @ patches).mean(dim=2).sum(dim=1)
    torch.testing.assert_close(model(x), expected)
    with pytest.raises(ValueError, match="≥ 1"):
        TwoLayerCNN(0, 4)


def test_stroke_filters_are_unit_norm_bars_and_diagonal():
    strokes = stroke_filters(4)
    assert strokes.shape == (3, 4, 4)
    torch.testing.assert_close(strokes.flatten(1).norm(dim=1), torch.ones(3))
    assert torch.equal(strokes[0][1], torch.full((4,), 0.5))  # the horizontal bar, row 1
    assert torch.equal(strokes[1][:, 1], torch.full((4,), 0.5))
    assert torch.equal(strokes[2], torch.eye(4) / 2)


def test_fast_repro_student_filters_recover_the_teachers():
    """Seeds 0-2, six students on three stroke teachers, 2,000 SGD steps: every teacher filter
    has a student at cosine ≥ 0.9998, every student points at a teacher (≥ 0.9989), squared
    error ≈ 1e-7, the students sharing a teacher's direction split its norm (within 0.1 %).
    Control: two students for three teachers (1,000 steps) reach at best 0.67."""
    result = repro.get("1905.10157")(scale="fast")
    assert result.verdict == repro.fast_verdict("1905.10157") == "reproduced", result.reason
    assert result["worst teacher cosine"] > 0.999
    assert result["worst student cosine"] > 0.995
    assert result["final loss"] < 1e-5
    assert result["worst teacher norm error"] < 0.01  # students sharing a direction split its norm
    assert result["worst teacher cosine, 2-filter control"] < 0.9


def test_arguments_are_validated_and_the_plot_is_written(tmp_path):
    with pytest.raises(ValueError, match="K, p, p"):
        teacher_student(torch.zeros(3, 4, 5))
    with pytest.raises(ValueError, match="steps"):
        teacher_student(steps=0)
    result = teacher_student(steps=60, snapshot_every=20)
    assert result.steps == [0, 20, 40, 60] and len(result.losses) == 60
    assert result.best_cosine_per_teacher(0).min() < 0.7  # random at the start
    path = plot_filter_recovery(result, tmp_path / "filters.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_is_called_after_every_step():
    calls = []
    teacher_student(
        steps=3, batch_size=4, progress=lambda done, total, what: calls.append((done, total))
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]
