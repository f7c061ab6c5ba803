"""Cylinder–Bell–Funnel series follow Saito's equations: checked on noise-free reconstructions
of each series from its own onset, end and amplitude."""

import numpy as np
import pytest

from dlskills.data import load
from dlskills.data.cbf import cbf_series


def test_series_follow_the_cylinder_bell_funnel_equations():
    x, y = cbf_series(300, seed=4)
    assert x.shape == (900, 128) and x.dtype == np.float32
    assert np.bincount(y).tolist() == [300, 300, 300]
    t = np.arange(1, 129)
    # the noise is N(0, 1) around each class's template; the event (amplitude 6 + η) stands out
    for label in range(3):
        rows = x[y == label]
        before = rows[:, :15]  # no event starts before t = 16
        assert abs(before.mean()) < 0.05 and before.std() == pytest.approx(1.0, abs=0.05)
    cylinder, bell, funnel = (x[y == k] for k in range(3))
    # steps 33–48 lie inside every event (a ≤ 32, b ≥ a + 32 ≥ 48): cylinder flat at 6,
    # bell rising from ~0, funnel falling from ~6
    inside = slice(32, 48)
    assert cylinder[:, inside].mean() == pytest.approx(6.0, abs=0.2)
    assert bell[:, inside].mean() < 3.0 < funnel[:, inside].mean()
    ramp = np.polyfit(t[inside], bell[:, inside].mean(0), 1)[0]
    assert ramp > 0 and np.polyfit(t[inside], funnel[:, inside].mean(0), 1)[0] < 0
    assert np.abs(cylinder[:, inside].mean(0) - 6.0).max() < 0.5  # flat, not a ramp


def test_hand_built_series_match_the_generator_noise_free():
    # rebuild one draw of each class from the same random stream
    x, y = cbf_series(1, seed=11)
    rng = np.random.default_rng(11)
    onset = rng.integers(16, 33, 3)
    end = onset + rng.integers(32, 97, 3)
    amplitude = 6 + rng.standard_normal(3)
    noise = rng.standard_normal((3, 128))
    t = np.arange(1, 129)
    for k in range(3):
        a, b = onset[k], end[k]
        chi = ((t >= a) & (t <= b)).astype(float)
        shape = [chi, chi * (t - a) / (b - a), chi * (b - t) / (b - a)][k]
        np.testing.assert_allclose(x[k], amplitude[k] * shape + noise[k], rtol=1e-5, atol=1e-5)
    assert y.tolist() == [0, 1, 2]


def test_registered_dataset_and_argument_checks():
    splits = load("cbf", seed=0, n=300)
    assert splits.sizes() == (210, 45, 45)
    assert splits.num_classes == 3 and splits.input_shape == (128,)
    with pytest.raises(ValueError, match="length"):
        cbf_series(5, length=64)
    with pytest.raises(ValueError, match="n_per_class"):
        cbf_series(0)
