import copy
import statistics
import time

import pytest
import torch
import torch.nn.functional as F

from dlskills.models import create
from dlskills.train.techniques.large_batch import (
    PerWorkerBatchNorm,
    large_batch_check,
    large_batch_study,
    per_worker_batch_norm,
)

# The claim (catalog 1706.02677) at laptop scale, stated before the check runs: k = 32 simulated
# workers of n = 8 digits each (256 images per step), lr kη, averaged over the named seeds,
#   - with the paper's gradual warm-up (η → kη over 5 epochs) the test accuracy is within
#     WARMUP_TOLERANCE of one worker's (n = 8, lr η);
#   - without warm-up (kη from the first step) it is below the warm-up arm by more than
#     NO_WARMUP_MARGIN.
# The paper: 23.74 vs 23.60 % error with warm-up (0.14 points), 24.84 % without (1.1 points
# worse). The digits test set has 270 images (one image = 0.37 points); over seeds 0–4 the
# one-worker accuracy has a std of 1.0 point and the per-seed difference one worker − warm-up
# 0.6, so the warm-up tolerance is 1 point (< 3 images) and the no-warm-up margin 1.5 points
# (4 images), above the paper's 1.1. Measured (docs/training.md): 0.4 ± 0.7 and 3.2 ± 0.9
# points over seeds 0–2, 0.1 ± 0.6 and 2.7 ± 0.9 over seeds 0–4.
K = 32
WARMUP_TOLERANCE = 0.01
NO_WARMUP_MARGIN = 0.015
SEEDS = (0, 1, 2)
FULL_SEEDS = (0, 1, 2, 3, 4)


@pytest.fixture
def one_thread():
    """One intra-op thread: the runs are many small steps, which extra threads slow down on a
    shared machine (and the numbers quoted in the docs were measured with one thread)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _mean_std(values):
    return statistics.mean(values), statistics.stdev(values)


def _paper_lr(t, *, eta, k, steps_per_epoch, epochs, warmup_epochs, warmup):
    """Goyal et al.'s rule written out: kη (η for the baselines), reached from η by a linear
    ramp over the warm-up epochs, ÷ 10 at epochs 30, 60, 80 of 90 (scaled to ``epochs``)."""
    peak = k * eta
    if warmup and t < warmup_epochs * steps_per_epoch:
        return eta + (peak - eta) * t / (warmup_epochs * steps_per_epoch)
    milestones = [round(epochs * e / 90) * steps_per_epoch for e in (30, 60, 80)]
    return peak * 0.1 ** sum(t >= m for m in milestones)


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_one_step_averages_the_workers_gradients(norm):
    # k workers, each with its own copy of the model and BN statistics over its own n samples:
    # the per-worker-BN model's gradient on the k·n batch is the mean of theirs (without BN it
    # is simply the k·n batch's gradient)
    k, n = 4, 6
    torch.manual_seed(0)
    model = create("mlp", input_shape=(1, 8, 8), num_classes=10, depth=2, width=16, norm=norm)
    workers = [copy.deepcopy(model) for _ in range(k)]
    x, y = torch.randn(k * n, 1, 8, 8), torch.randint(0, 10, (k * n,))
    per_worker_batch_norm(model, k).train()
    out = model(x)
    F.cross_entropy(out, y).backward()
    expected_out = []
    for j, worker in enumerate(workers):
        worker.train()
        chunk = worker(x[j * n : (j + 1) * n])
        expected_out.append(chunk)
        F.cross_entropy(chunk, y[j * n : (j + 1) * n]).backward()
    torch.testing.assert_close(out, torch.cat(expected_out))
    for name, param in model.named_parameters():
        worker_params = [dict(w.named_parameters())[name.replace(".bn.", ".")] for w in workers]
        mean_grad = sum(p.grad for p in worker_params) / k
        torch.testing.assert_close(param.grad, mean_grad, msg=name)
    bns = [m for m in model.modules() if isinstance(m, PerWorkerBatchNorm)]
    assert len(bns) == (2 if norm == "batch" else 0)
    for index, bn in enumerate(bns):
        worker_bns = [
            [m for m in w.modules() if isinstance(m, torch.nn.BatchNorm1d)][index] for w in workers
        ]
        torch.testing.assert_close(bn.bn.running_mean, sum(b.running_mean for b in worker_bns) / k)
        torch.testing.assert_close(bn.bn.running_var, sum(b.running_var for b in worker_bns) / k)
    if norm == "batch":  # per-worker statistics differ from one BN over the k·n batch
        whole = copy.deepcopy(workers[0]).train()
        assert not torch.allclose(whole(x), out, atol=1e-3)


def test_per_worker_batch_norm_on_images_matches_each_worker():
    torch.manual_seed(1)
    bn = torch.nn.BatchNorm2d(3)
    torch.nn.init.uniform_(bn.weight)
    torch.nn.init.uniform_(bn.bias)
    reference = copy.deepcopy(bn)
    x = torch.randn(12, 3, 4, 4)
    y = PerWorkerBatchNorm(bn, 3).train()(x)
    expected = [copy.deepcopy(reference).train()(x[4 * j : 4 * j + 4]) for j in range(3)]
    torch.testing.assert_close(y, torch.cat(expected))
    with pytest.raises(ValueError, match="equal workers"):
        PerWorkerBatchNorm(bn, 5).train()(x)


def test_each_arm_uses_the_paper_learning_rates(one_thread):
    eta, k, n, epochs, warmup_epochs = 0.05, 4, 8, 9, 2
    result = large_batch_check(
        (k,),
        seed=0,
        per_worker=n,
        base_lr=eta,
        epochs=epochs,
        warmup_epochs=warmup_epochs,
        model_kwargs={"depth": 1, "width": 8, "norm": "batch"},
    )
    rule = dict(eta=eta, epochs=epochs, warmup_epochs=warmup_epochs)
    small = result.small
    assert (small.k, small.batch_size, small.peak_lr, small.warmup_steps) == (1, n, eta, 0)
    assert small.steps == len(small.lrs) == (1257 // n) * epochs
    expected = [
        _paper_lr(t, k=1, steps_per_epoch=1257 // n, warmup=False, **rule)
        for t in range(small.steps)
    ]
    assert small.lrs == pytest.approx(expected)
    arms = result.large[k]
    spe = 1257 // (k * n)  # 39 steps of 32 images; the last 9 images of a shuffle are dropped
    for name, arm in arms.items():
        assert arm.batch_size == k * n and arm.steps == len(arm.lrs) == spe * epochs
        scaled = name != "no_scaling"
        expected = [
            _paper_lr(t, k=k if scaled else 1, steps_per_epoch=spe, warmup=name == "warmup", **rule)
            for t in range(arm.steps)
        ]
        assert arm.lrs == pytest.approx(expected), name
    assert arms["warmup"].warmup_steps == warmup_epochs * spe
    assert arms["warmup"].lrs[0] == pytest.approx(eta)  # the ramp starts at the one-worker η
    assert arms["scaled"].lrs[0] == pytest.approx(k * eta)
    assert arms["no_scaling"].lrs[0] == pytest.approx(eta)
    # this small MLP learns digits in every arm (no arm is a silent no-op)
    for arm in (small, *arms.values()):
        assert arm.test_accuracy > 0.85 and not arm.diverged


def test_arguments_are_validated():
    with pytest.raises(ValueError, match="k_values"):
        large_batch_check((1,))
    with pytest.raises(ValueError, match="warmup_epochs"):
        large_batch_check((2,), epochs=2, warmup_epochs=2.0)
    with pytest.raises(ValueError, match="base_lr"):
        large_batch_check((2,), base_lr=0.0)
    with pytest.raises(ValueError, match="arms"):
        large_batch_check((2,), arms=("warmup",))
    with pytest.raises(ValueError, match="exceeds"):
        large_batch_check((200,), per_worker=8, epochs=6)
    with pytest.raises(ValueError, match="workers"):
        per_worker_batch_norm(torch.nn.BatchNorm1d(3), 0)


def _check_claim(study, k):
    small = _mean_std(study.accuracies("small"))
    warmup = _mean_std(study.accuracies("warmup", k))
    scaled = _mean_std(study.accuracies("scaled", k))
    warmup_gap = _mean_std(study.gaps("warmup", k))
    no_warmup_loss = _mean_std(
        [w - s for w, s in zip(study.accuracies("warmup", k), study.accuracies("scaled", k))]
    )
    print(
        f"\nk = {k}, seeds {study.seeds}: one worker {small[0]:.4f} ± {small[1]:.4f}, "
        f"warm-up {warmup[0]:.4f} ± {warmup[1]:.4f}, no warm-up {scaled[0]:.4f} ± {scaled[1]:.4f}"
        f"; one worker − warm-up {warmup_gap[0]:.4f} ± {warmup_gap[1]:.4f}, "
        f"warm-up − no warm-up {no_warmup_loss[0]:.4f} ± {no_warmup_loss[1]:.4f}"
    )
    assert warmup_gap[0] <= WARMUP_TOLERANCE
    assert no_warmup_loss[0] > NO_WARMUP_MARGIN


def test_warmup_matches_one_worker_and_no_warmup_falls_short(one_thread):
    start = time.perf_counter()
    study = large_batch_study(SEEDS, k_values=(K,), arms=("small", "scaled", "warmup"))
    print(f"\n{time.perf_counter() - start:.1f} s\n{study.table()}")
    _check_claim(study, K)


@pytest.mark.slow
def test_large_batch_study_all_arms(one_thread):
    study = large_batch_study(FULL_SEEDS)
    print("\n" + study.table())
    _check_claim(study, K)
    for k in (8, 16):  # warm-up matches the one worker at every k up to 32
        assert statistics.mean(study.gaps("warmup", k)) <= WARMUP_TOLERANCE
