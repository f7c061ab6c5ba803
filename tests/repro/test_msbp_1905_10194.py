"""1905.10194 at fast scale: MSBP cuts the backward multiply-adds 17× and beats SBP, but stays
1.4 points below dense and one thread turns the saving into ~1.3× of wall time (partial)."""

import pytest

from dlskills import repro


def test_msbp_fast_scale_is_partial_with_its_numbers():
    assert repro.fast_verdict("1905.10194") == "partial"
    result = repro.run("1905.10194", scale="fast")
    assert result.verdict == "partial"
    # two hidden layers at k = 20 of 500, dense 10-way output; input layer: weight product only
    dense = 64 * 500 + 2 * 500 * 500 + 2 * 500 * 10
    sparse = 64 * 20 + 2 * 20 * 500 + 2 * 500 * 10
    assert result["backward multiply-add saving, MSBP"] == pytest.approx(dense / sparse)
    assert result["test accuracy, dense"] >= 95.0
    assert result["MSBP − SBP"] >= 0.0
    assert 0.0 < result["dense − MSBP"] <= 3.0
    assert result["backward wall-time speed-up, MSBP"] < 9.74
