import math
import statistics

import pytest

from dlskills.train.techniques.large_batch import large_batch_check

# The claim (catalog 1706.02677) at laptop scale, stated before measuring: averaged over seeds,
# the k-fold batch with linear scaling + gradual warm-up is within WARMUP_TOLERANCE of the
# small-batch test accuracy, while the k-fold batch at the unscaled rate is worse by more
# than NO_SCALING_MARGIN. The paper's other half (no warm-up falls short) is not asserted: at this
# scale the no-warm-up arm matched too (numbers in dlskills.train.techniques.large_batch).
WARMUP_TOLERANCE = 0.03
NO_SCALING_MARGIN = 0.03
SEEDS = (0, 1, 2)


def test_each_arm_uses_the_rule_learning_rates():
    eta, k, epochs = 0.05, 4, 2
    result = large_batch_check(
        (k,), seed=0, base_lr=eta, epochs=epochs, warmup_epochs=1.0, width=8, schedule="cosine"
    )
    small = result.small
    assert small.batch_size == 16 and small.peak_lr == eta and small.warmup_steps == 0
    small_steps = math.ceil(1257 / 16) * epochs
    assert len(small.lrs) == small_steps
    for t, lr in enumerate(small.lrs):
        assert lr == pytest.approx(eta * (1 + math.cos(math.pi * t / small_steps)) / 2)

    arms = result.large[k]
    steps_per_epoch = math.ceil(1257 / 64)
    total = steps_per_epoch * epochs
    assert {name: arm.peak_lr for name, arm in arms.items()} == pytest.approx(
        {"no_scaling": eta, "scaled": k * eta, "warmup": k * eta}
    )
    for name in ("no_scaling", "scaled"):
        peak = arms[name].peak_lr
        expected = [peak * (1 + math.cos(math.pi * t / total)) / 2 for t in range(total)]
        assert arms[name].lrs == pytest.approx(expected)
    warmup = arms["warmup"]
    assert warmup.batch_size == 64 and warmup.warmup_steps == steps_per_epoch
    W, decay = steps_per_epoch, total - steps_per_epoch
    expected = [k * eta * (1 / k + (1 - 1 / k) * t / W) for t in range(W)]
    expected += [k * eta * (1 + math.cos(math.pi * u / decay)) / 2 for u in range(decay)]
    assert warmup.lrs == pytest.approx(expected)
    # the warm-up starts at the small-batch rate η (Goyal et al.'s gradual warm-up)
    assert warmup.lrs[0] == pytest.approx(eta)
    for arm in (small, *arms.values()):
        assert 0.0 <= arm.test_accuracy <= 1.0
    assert set(result.gaps()[k]) == {"no_scaling", "scaled", "warmup"}


def test_arguments_are_validated():
    with pytest.raises(ValueError, match="k_values"):
        large_batch_check((1,))
    with pytest.raises(ValueError, match="warmup_epochs"):
        large_batch_check((2,), epochs=2, warmup_epochs=2.0)
    with pytest.raises(ValueError, match="base_lr"):
        large_batch_check((2,), base_lr=0.0)


@pytest.mark.slow
def test_linear_scaling_with_warmup_matches_small_batch():
    results = [large_batch_check((8, 16), seed=seed) for seed in SEEDS]
    for r in results:
        print(
            f"seed {r.config['seed']}: small {r.small.test_accuracy:.3f}",
            {
                k: {n: round(a.test_accuracy, 3) for n, a in arms.items()}
                for k, arms in r.large.items()
            },
        )
    for k in (8, 16):
        mean_gap = {
            arm: statistics.mean(r.gaps()[k][arm] for r in results)
            for arm in ("no_scaling", "scaled", "warmup")
        }
        print(f"k={k} mean accuracy gap to the small batch: {mean_gap}")
        assert mean_gap["warmup"] <= WARMUP_TOLERANCE
        assert mean_gap["no_scaling"] > NO_SCALING_MARGIN
