"""1905.07202 at fast scale: co-teaching beats plain training of the same pair at 40 % symmetric
label noise, on every seed."""

from dlskills import repro


def test_fast_repro_coteaching_beats_plain_training_at_40_percent_noise():
    result = repro.get("1905.07202")(scale="fast")
    assert result.verdict == repro.fast_verdict("1905.07202") == "reproduced", result.reason
    assert result["gain of co-teaching"] >= 5.0
    assert result["smallest gain over the seeds"] > 0.0
    # the control memorises the noise: well below co-teaching, above chance (10 %)
    assert 30.0 < result["test accuracy, plain training"] < result["test accuracy, co-teaching"]
    # the mechanism: what a co-trained network passes on is mostly clean (measured 90.0 %;
    # 60 % of all labels are correct), what a plainly trained one would pass on much less (73.7 %)
    coteaching = result["label precision of the small-loss 60 %, co-teaching"]
    plain = result["label precision of the small-loss 60 %, plain training"]
    assert coteaching > 85.0 and coteaching > plain + 10.0
