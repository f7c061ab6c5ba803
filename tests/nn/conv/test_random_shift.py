"""Random-shift down-sampling (ijcai17-random-shift)."""

import pytest
import torch
from torch import nn

from dlskills import repro
from dlskills.nn.conv.random_shift import (
    RandomShift2d,
    RandomShiftDownsample,
    shift2d,
    subpixel_shift2d,
)


def test_shift2d_moves_content_and_zero_fills():
    x = torch.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    out = shift2d(x, torch.tensor([1, -1]))
    expected = torch.tensor(
        [[0, 0, 0, 0], [2, 3, 4, 0], [6, 7, 8, 0], [10, 11, 12, 0]], dtype=torch.float32
    )
    torch.testing.assert_close(out[0, 0], expected)


def test_shift2d_per_sample_equals_loop_of_rolls_with_masking():
    x = torch.randn(5, 3, 6, 7)
    shifts = torch.tensor([[0, 0], [1, 2], [-2, 1], [2, -2], [-1, -1]])
    out = shift2d(x, shifts)
    for b, (dy, dx) in enumerate(shifts.tolist()):
        rolled = torch.roll(x[b], (dy, dx), dims=(1, 2))
        mask = torch.zeros(6, 7)
        mask[max(dy, 0) : 6 + min(dy, 0), max(dx, 0) : 7 + min(dx, 0)] = 1
        torch.testing.assert_close(out[b], rolled * mask)


def test_identity_at_eval_and_random_phase_at_train():
    layer = RandomShift2d(max_shift=1)
    x = torch.randn(2, 3, 8, 8)
    assert layer.eval()(x) is x
    layer.train()
    seen = set()
    for _ in range(60):
        out = layer(x)
        candidates = [
            (dy, dx)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if torch.equal(out, shift2d(x, torch.tensor([dy, dx])))
        ]
        assert candidates  # every train output is one of the 9 allowed shifts of the batch
        seen.add(candidates[0])
    assert len(seen) == 9  # P(missing one in 60 draws) < 9·(8/9)^60 ≈ 7e-3


def test_per_sample_shifts_differ_within_a_batch():
    layer = RandomShift2d(max_shift=2, per_sample=True).train()
    x = torch.randn(1, 1, 8, 8).expand(32, 1, 8, 8)
    out = layer(x)
    distinct = {tuple(o.flatten().tolist()) for o in out}
    assert len(distinct) > 5


def test_random_shift_downsample_covers_all_phases_of_a_stride():
    """Stride-2 pooling of a fixed map: with the shift it sees other phases, at eval the same."""
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 1::2, 1::2] = 1.0  # only odd positions: plain stride-2 subsampling sees nothing
    layer = RandomShiftDownsample(nn.MaxPool2d(1, stride=2), max_shift=1)
    assert layer.eval()(x).sum() == 0
    layer.train()
    assert max(layer(x).sum().item() for _ in range(40)) > 0


def test_subpixel_shift_at_integers_and_halves():
    x = torch.randn(3, 2, 5, 6, dtype=torch.float64)
    whole = torch.tensor([1.0, -2.0], dtype=torch.float64)
    torch.testing.assert_close(subpixel_shift2d(x, whole), shift2d(x, torch.tensor([1, -2])))
    half = subpixel_shift2d(x, torch.tensor([0.0, 0.5], dtype=torch.float64))
    torch.testing.assert_close(half, (x + shift2d(x, torch.tensor([0, 1]))) / 2)


def test_subpixel_layer_draws_real_offsets_within_the_bound():
    layer = RandomShift2d(max_shift=1, per_sample=True, subpixel=True).train()
    x = torch.zeros(200, 1, 5, 5)
    x[:, 0, 2, 2] = 1.0
    out = layer(x)
    # the impulse's mass stays 1 inside the map and spreads over ≤ 2×2 pixels
    torch.testing.assert_close(out.sum((1, 2, 3)), torch.ones(200))
    assert bool(((out > 0).sum((1, 2, 3)) <= 4).all())
    assert ((out > 0).sum((1, 2, 3)) > 1).float().mean() > 0.9  # real offsets, not integers
    assert layer.eval()(x) is x


def test_fast_repro_shift_reads_every_position_but_costs_accuracy_on_digits():
    """ijcai17-random-shift at fast scale (seeds 0-1, 8 epochs): a stride-2 layer reads a quarter
    of the positions, with integer or sub-pixel random shifts all of them, and the sub-pixel
    resampling is bilinear (= grid_sample); but on 8×8 digits the shifted CNN is *less* accurate
    (measured -1.5 integer, -0.6 sub-pixel points): the verdict is partial, with the numbers."""
    result = repro.get("ijcai17-random-shift")(scale="fast")
    assert result.verdict == repro.fast_verdict("ijcai17-random-shift") == "partial"
    assert result["positions read by a stride-2 layer, no shift"] == 0.25
    assert result["positions read, integer shifts (64 draws)"] == 1.0
    assert result["positions read, sub-pixel shifts (64 draws)"] == 1.0
    assert result["sub-pixel shift vs grid_sample, max error"] < 1e-12
    assert "accuracy gain" in result.reason


def test_validation():
    with pytest.raises(ValueError, match="max_shift"):
        RandomShift2d(-1)
    with pytest.raises(ValueError, match="shifts"):
        shift2d(torch.zeros(2, 1, 3, 3), torch.zeros(3, 2))
    with pytest.raises(TypeError, match="downsample"):
        RandomShiftDownsample("pool")
