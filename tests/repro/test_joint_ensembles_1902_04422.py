"""1902.04422 at fast scale: joint training (λ = 1) leaves the members individually poor; the
ensemble's generalisation does not suffer on digits (declared "partial")."""

from dlskills import repro


def test_fast_repro_members_degrade_under_joint_training():
    result = repro.get("1902.04422")(scale="fast")
    assert result.verdict == repro.fast_verdict("1902.04422") == "partial", result.reason
    assert result["member error, joint minus independent"] >= 5.0
    assert result["ambiguity, λ = 1"] > 10 * result["ambiguity, λ = 0"]
    # measured (seeds 0-2): -0.1 ± 0.4 points, one test digit either way
    assert abs(result["ensemble error, joint minus independent"]) < 1.0
