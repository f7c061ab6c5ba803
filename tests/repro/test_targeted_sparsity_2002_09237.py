"""2002.09237 at fast scale: targeted sparsity beats dropout on the digits CNN but not batch norm,
is inactive on the MLP, and the plain nets' sparsity does not rise while they overfit (partial)."""

from dlskills import repro


def test_targeted_sparsity_fast_scale_is_partial_with_its_numbers():
    assert repro.fast_verdict("2002.09237") == "partial"
    result = repro.run("2002.09237", scale="fast")
    assert result.verdict == "partial"
    # below its target on the MLP, the regulariser adds nothing: the same run as plain
    assert result["MLP: TSR − plain"] == 0.0
    assert result["CNN: TSR − dropout"] > 0.0
    assert result["CNN: TSR − batch norm"] < 0.0
    assert result["MLP: sparsity rise while the plain net overfits"] < 1.0
    for task in ("MLP", "CNN"):
        assert result[f"{task} test accuracy, plain"] > 85.0
