"""The large-minibatch check (catalog 1706.02677, Goyal et al. 2017, "Accurate, Large Minibatch
SGD: Training ImageNet in 1 Hour").

Rules (implemented in ``dlskills.optim.schedules``):
- linear scaling (§2.1): when the minibatch is multiplied by k, multiply the learning rate by k,
  η_k = k·η (``linear_scaling_rule(η, k·n, base_batch_size=n)``);
- gradual warm-up (§2.2): start at η and raise the rate linearly to k·η over the first 5 epochs
  (W steps), lr(t) = η + (k·η − η)·t/W for t < W (``build_schedule(..., warmup_steps=W,
  warmup_start_factor=1/k)``), then the paper's step schedule: ÷ 10 at epochs 30, 60, 80 of 90
  (here scaled to the run's epochs, counted from step 0);
- weight decay is not scaled; momentum 0.9 (torch's SGD form v ← μv + g, w ← w − lr·v, which
  needs no momentum correction when the rate changes).

Simulated workers (§2.3, "the loss is averaged per worker batch of n and BN statistics are
computed per worker"): a step of k workers takes k·n images; worker j owns the j-th block of n.
Every batch-norm layer is replaced by ``PerWorkerBatchNorm``, which normalises each block with
its own mean and variance (a "ghost batch"), so the forward pass over the k·n images is exactly
k separate worker forwards, and the mean of the k·n losses is the mean of the k per-worker mean
losses: its gradient is the average of the k per-worker gradients that an allreduce forms.
(Without batch norm the same average is simply the gradient of one batch of k·n; with it, the
per-worker statistics are what keeps the large batch from becoming an ordinary big-batch BN.)
The test checks both against k deep-copied workers run one by one.

The check (``large_batch_check`` for one seed, ``large_batch_study`` over seeds) trains the same
network from the same initial weights for the same number of EPOCHS (so k workers take k-fold
fewer steps) in four arms:

    small       1 worker,  batch n,    lr η              (the paper's baseline)
    no_scaling  k workers, batch k·n,  lr η
    scaled      k workers, batch k·n,  lr k·η from the first step (no warm-up)
    warmup      k workers, batch k·n,  lr k·η after the gradual warm-up from η over 5 epochs

The paper's claim: ``warmup`` matches ``small`` (23.74 ± 0.09 vs 23.60 ± 0.12 % top-1 error at
k·n = 8k), ``scaled`` does not (24.84 ± 0.37 %).

Defaults (laptop scale): digits (1257 training, 270 test images), a 6 × 128 MLP with batch norm
(``DEFAULT_MODEL``) for ResNet-50, n = 8 images per worker for 32, η = 0.05, 45 epochs for 90,
warm-up 5 epochs, weight decay 1e-4, k ∈ {8, 16, 32, 64} (64 to 512 images per step; the
remainder of each shuffle that does not fill a step is dropped). Measured (one thread, seeds
0–4, test accuracy %, mean ± std; docs/training.md has the command and figure):

    small (k = 1)   97.7 ± 0.4
                    k = 8        k = 16       k = 32       k = 64
    no_scaling      98.2 ± 0.5   98.3 ± 0.4   98.3 ± 0.6   98.1 ± 0.3
    scaled          98.0 ± 0.4   97.9 ± 0.4   95.6 ± 1.8   49.6 ± 8.9
    warmup          98.2 ± 0.3   98.4 ± 0.4   97.7 ± 1.0   66.5 ± 8.6

At k = 32 (kη = 1.6, 4 steps an epoch) both halves of the paper's finding hold on average:
warm-up is 0.0 ± 0.7 points below one worker, no warm-up 2.1 ± 1.8 points below warm-up (0.0 on
seed 4, up to 4.8 on seed 2).
Where it holds and where not: at k ≤ 16 no warm-up is needed (as in the paper's Table 1, where
the loss without warm-up is small below 8k); at k = 64 (2 steps an epoch, 10 warm-up steps to
kη = 3.2) warm-up no longer rescues the run either, the analogue of the paper's breakdown
beyond 8k; the failure without warm-up needs a large kη: at η = 0.02 (kη = 0.64 at k = 32) the
no-warm-up arm was 0.9 points below warm-up (97.6 vs 98.5 %; 30 epochs, seeds 0–4). ``no_scaling``
matches the baseline too: 45 epochs of digits are enough even at the unscaled rate, so this
budget does not show the paper's need for scaling.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dlskills.data import load
from dlskills.models import create
from dlskills.optim.schedules import build_schedule, linear_scaling_rule

ARMS = ("small", "no_scaling", "scaled", "warmup")
PAPER_MILESTONES = (30 / 90, 60 / 90, 80 / 90)  # lr ÷ 10 at epochs 30, 60, 80 of 90
DEFAULT_MODEL = {"depth": 6, "width": 128, "norm": "batch"}  # for model="mlp"


class PerWorkerBatchNorm(nn.Module):
    """Batch norm whose training-mode statistics are computed separately over each of
    ``workers`` equal consecutive chunks of the batch (Goyal et al. §2.3: "BN statistics are
    computed per worker"; a "ghost batch"). Wraps a ``nn.BatchNorm1d/2d`` and shares its γ, β
    and running buffers; the running averages move by the mean of the workers' statistics
    (the EMA is linear, so this equals averaging the k workers' running buffers). At
    ``workers = 1``, and in eval mode, it is the wrapped layer."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, workers: int = 1) -> None:
        super().__init__()
        if not isinstance(bn, nn.modules.batchnorm._BatchNorm):
            raise TypeError(f"bn must be a torch batch-norm layer, got {type(bn).__name__}")
        self.bn = bn
        self.workers = _check_positive_int("workers", workers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn, k = self.bn, self.workers
        if not self.training or k == 1:
            return bn(x)
        if x.shape[0] % k:
            raise ValueError(f"batch of {x.shape[0]} does not split into {k} equal workers")
        n = x.shape[0] // k
        chunks = x.reshape(k, n, *x.shape[1:])
        dims = (1, *range(3, chunks.dim()))  # per worker, over its samples (and H, W)
        mean = chunks.mean(dims, keepdim=True)
        var = chunks.var(dims, unbiased=False, keepdim=True)
        shape = (1, 1, -1) + (1,) * (chunks.dim() - 3)
        y = (chunks - mean) * torch.rsqrt(var + bn.eps)
        if bn.affine:
            y = y * bn.weight.reshape(shape) + bn.bias.reshape(shape)
        if bn.track_running_stats:
            with torch.no_grad():
                count = chunks[0].numel() // chunks.shape[2]  # values per channel per worker
                unbiased = var * count / max(count - 1, 1)
                m = bn.momentum if bn.momentum is not None else 0.1
                bn.running_mean.mul_(1 - m).add_(m * mean.reshape(k, -1).mean(0))
                bn.running_var.mul_(1 - m).add_(m * unbiased.reshape(k, -1).mean(0))
                bn.num_batches_tracked.add_(1)
        return y.reshape(x.shape)


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def per_worker_batch_norm(model: nn.Module, workers: int) -> nn.Module:
    """Replace every batch-norm layer of ``model`` (in place) by a ``PerWorkerBatchNorm`` over
    ``workers`` workers, or set ``workers`` on the ones already replaced; returns ``model``."""
    _check_positive_int("workers", workers)
    for module in model.modules():
        if isinstance(module, PerWorkerBatchNorm):
            module.workers = workers
            continue
        for name, child in module.named_children():
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(module, name, PerWorkerBatchNorm(child, workers))
    return model


@dataclass
class ArmResult:
    """One training run: k workers of ``per_worker`` samples each, its peak learning rate,
    warm-up length and step count, the learning rate of every optimizer step, the mean training
    loss of the first ``probe`` steps and the final test accuracy."""

    name: str
    k: int
    per_worker: int
    peak_lr: float
    warmup_steps: int
    steps: int
    lrs: list[float] = field(repr=False)
    losses: list[float] = field(repr=False)
    test_accuracy: float
    diverged: bool

    @property
    def batch_size(self) -> int:
        return self.k * self.per_worker


@dataclass
class LargeBatchResult:
    """``small`` (one worker, the baseline) and ``large[k][arm]`` for arm ∈ no_scaling, scaled,
    warmup, all from one seed."""

    small: ArmResult
    large: dict[int, dict[str, ArmResult]]
    config: dict[str, Any]

    def gaps(self) -> dict[int, dict[str, float]]:
        """Small-batch accuracy minus each large-batch arm's accuracy (positive = worse)."""
        base = self.small.test_accuracy
        return {
            k: {name: base - arm.test_accuracy for name, arm in arms.items()}
            for k, arms in self.large.items()
        }


def _schedule_kwargs(schedule: str, total_steps: int, steps_per_epoch: int, epochs: int) -> dict:
    if schedule != "step":
        return {}
    milestones = sorted({max(1, round(f * epochs) * steps_per_epoch) for f in PAPER_MILESTONES})
    return {"milestones": [m for m in milestones if m < total_steps] or [total_steps], "gamma": 0.1}


def train_arm(
    name: str,
    k: int,
    *,
    splits: Any,
    per_worker: int,
    base_lr: float,
    epochs: int,
    warmup_epochs: float,
    schedule: str,
    momentum: float,
    weight_decay: float,
    model: str,
    model_kwargs: dict[str, Any],
    seed: int,
) -> ArmResult:
    """Train one arm: k simulated workers, each a batch of ``per_worker`` images with its own BN
    statistics; the step uses the mean of the k per-worker mean losses (so the mean of their
    gradients, as an allreduce would), lr by the arm's rule."""
    if name not in ARMS:
        raise ValueError(f"arm must be one of {ARMS}, got {name!r}")
    batch = k * per_worker
    x_train, y_train = splits.train.tensors
    steps_per_epoch = len(x_train) // batch
    if steps_per_epoch < 1:
        raise ValueError(f"k·n = {batch} exceeds the {len(x_train)} training samples")
    total = steps_per_epoch * epochs
    peak_lr = (
        base_lr
        if name in ("small", "no_scaling")
        else linear_scaling_rule(base_lr, batch, per_worker)
    )
    warmup_steps = max(1, round(warmup_epochs * steps_per_epoch)) if name == "warmup" else 0
    torch.manual_seed(seed)  # the same initial weights in every arm of a seed
    net = create(
        model, input_shape=splits.input_shape, num_classes=splits.num_classes, **model_kwargs
    )
    per_worker_batch_norm(net, k)
    optimizer = torch.optim.SGD(
        net.parameters(), lr=peak_lr, momentum=momentum, weight_decay=weight_decay
    )
    scheduler = build_schedule(
        schedule,
        optimizer,
        total,
        warmup_steps,
        warmup_start_factor=1.0 / k,
        **_schedule_kwargs(schedule, total, steps_per_epoch, epochs),
    )
    generator = torch.Generator().manual_seed(seed)
    lrs: list[float] = []
    losses: list[float] = []
    diverged = False
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x_train), generator=generator)
        for step in range(steps_per_epoch):
            index = order[step * batch : (step + 1) * batch]
            loss = F.cross_entropy(net(x_train[index]), y_train[index])
            if not torch.isfinite(loss):
                diverged = True
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            lrs.append(optimizer.param_groups[0]["lr"])
            losses.append(loss.item())
            optimizer.step()
            scheduler.step()
        if diverged:
            break
    accuracy = 1.0 / splits.num_classes
    if not diverged:
        net.eval()
        x_test, y_test = splits.test.tensors
        with torch.no_grad():
            logits = net(x_test)
        if torch.isfinite(logits).all():
            accuracy = (logits.argmax(1) == y_test).float().mean().item()
        else:
            diverged = True
    return ArmResult(
        name, k, per_worker, peak_lr, warmup_steps, total, lrs, losses, accuracy, diverged
    )


def large_batch_check(
    k_values: Sequence[int] = (8, 16, 32, 64),
    *,
    seed: int = 0,
    arms: Sequence[str] = ARMS,
    per_worker: int = 8,
    base_lr: float = 0.05,
    epochs: int = 45,
    warmup_epochs: float = 5.0,
    schedule: str = "step",
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    model: str = "mlp",
    model_kwargs: dict[str, Any] | None = None,
    dataset: str = "digits",
) -> LargeBatchResult:
    """Train ``arms`` for every k in ``k_values`` (the one-worker arm once) from one seed; the
    arms and defaults are those of the module docstring."""
    ks = [int(k) for k in k_values]
    if not ks or any(k < 2 or k != kv for k, kv in zip(ks, k_values, strict=True)):
        raise ValueError(f"k_values must be integers ≥ 2, got {k_values!r}")
    _check_positive_int("per_worker", per_worker)
    if not base_lr > 0:
        raise ValueError(f"base_lr must be > 0, got {base_lr}")
    _check_positive_int("epochs", epochs)
    if not 0 < warmup_epochs < epochs:
        raise ValueError(f"warmup_epochs must be in (0, epochs), got {warmup_epochs}")
    unknown = set(arms) - set(ARMS)
    if unknown or "small" not in arms:
        raise ValueError(f"arms must include 'small' and come from {ARMS}, got {arms!r}")
    splits = load(dataset, seed=seed)
    if max(ks) * per_worker > len(splits.train):
        raise ValueError(
            f"k·n = {max(ks) * per_worker} exceeds the {len(splits.train)} training samples"
        )
    common = dict(
        splits=splits,
        per_worker=per_worker,
        base_lr=base_lr,
        epochs=epochs,
        warmup_epochs=warmup_epochs,
        schedule=schedule,
        momentum=momentum,
        weight_decay=weight_decay,
        model=model,
        model_kwargs=dict(DEFAULT_MODEL if model_kwargs is None else model_kwargs),
        seed=seed,
    )
    small = train_arm("small", 1, **common)
    large = {k: {a: train_arm(a, k, **common) for a in ARMS[1:] if a in arms} for k in ks}
    config = {key: value for key, value in common.items() if key != "splits"}
    config.update(k_values=ks, dataset=dataset)
    return LargeBatchResult(small, large, config)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


@dataclass
class LargeBatchStudy:
    """``large_batch_check`` over several seeds: ``runs[i]`` is seed ``seeds[i]``."""

    seeds: tuple[int, ...]
    runs: list[LargeBatchResult]

    @property
    def k_values(self) -> list[int]:
        return list(self.runs[0].large)

    def accuracies(self, arm: str, k: int = 1) -> list[float]:
        """Test accuracy of ``arm`` at ``k`` for every seed (``small`` is k = 1)."""
        if arm == "small":
            return [run.small.test_accuracy for run in self.runs]
        return [run.large[k][arm].test_accuracy for run in self.runs]

    def gaps(self, arm: str, k: int) -> list[float]:
        """Per seed: small-batch accuracy minus ``arm``'s at ``k`` (positive = worse)."""
        return [run.gaps()[k][arm] for run in self.runs]

    def table(self) -> str:
        """Accuracy (%) mean ± std over the seeds, one row per arm, one column per k."""
        ks = self.k_values
        arms = [a for a in ARMS[1:] if a in self.runs[0].large[ks[0]]]
        m, s = mean_std(self.accuracies("small"))
        head = f"{'arm':<11}" + "".join(f"{f'k = {k}':>15}" for k in ks)
        lines = [f"seeds {list(self.seeds)}; small (k = 1): {100 * m:.1f} ± {100 * s:.1f}", head]
        for arm in arms:
            cells = [mean_std(self.accuracies(arm, k)) for k in ks]
            lines.append(
                f"{arm:<11}" + "".join(f"{100 * m:>9.1f} ± {100 * s:3.1f}" for m, s in cells)
            )
        return "\n".join(lines)


def large_batch_study(
    seeds: Sequence[int] = (0, 1, 2),
    *,
    progress: Callable[[int, int, str], Any] | None = None,
    **kwargs: Any,
) -> LargeBatchStudy:
    """``large_batch_check(seed=s, **kwargs)`` for every seed; ``progress(done, total, what)``
    after each seed."""
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("seeds must not be empty")
    runs = []
    for seed in seeds:
        runs.append(large_batch_check(seed=seed, **kwargs))
        if progress is not None:
            progress(len(runs), len(seeds), f"seed {seed}")
    return LargeBatchStudy(seeds, runs)


def plot_large_batch(study: LargeBatchStudy, path: str) -> Any:
    """Left: test accuracy vs k (mean ± std over the seeds) for the four arms, the one-worker
    baseline as a band. Right: each arm's learning rate per epoch at the largest k (seed 0)."""
    from dlskills._plot import new_figure, save_figure

    fig, axes = new_figure(1, 2, size=(5.2, 3.8))
    acc_ax, lr_ax = axes[0]
    ks = study.k_values
    m, s = mean_std(study.accuracies("small"))
    acc_ax.axhspan(100 * (m - s), 100 * (m + s), color="0.85", label="1 worker (k = 1) ± std")
    acc_ax.axhline(100 * m, color="0.4", lw=1)
    styles = {
        "no_scaling": ("tab:green", "s"),
        "scaled": ("tab:red", "v"),
        "warmup": ("tab:blue", "o"),
    }
    labels = {
        "no_scaling": "k workers, lr η (no scaling)",
        "scaled": "k workers, lr kη, no warm-up",
        "warmup": "k workers, lr kη, gradual warm-up",
    }
    for arm, (color, marker) in styles.items():
        if arm not in study.runs[0].large[ks[0]]:
            continue
        stats = [mean_std(study.accuracies(arm, k)) for k in ks]
        acc_ax.errorbar(
            ks,
            [100 * a for a, _ in stats],
            yerr=[100 * b for _, b in stats],
            color=color,
            marker=marker,
            capsize=3,
            label=labels[arm],
        )
    acc_ax.set_xscale("log", base=2)
    acc_ax.set_xticks(ks, [f"{k}\n({k * study.runs[0].config['per_worker']})" for k in ks])
    acc_ax.set_xlabel("workers k (images per step k·n)")
    acc_ax.set_ylabel("test accuracy (%)")
    acc_ax.set_title(f"digits, mean ± std over {len(study.seeds)} seeds")
    acc_ax.legend(fontsize=8, loc="lower left")
    k = ks[-1]
    run = study.runs[0]
    for arm in ARMS:
        result = run.small if arm == "small" else run.large[k].get(arm)
        if result is None:
            continue
        epochs = [t * run.config["epochs"] / result.steps for t in range(len(result.lrs))]
        color = styles.get(arm, ("0.4", ""))[0]
        wide = arm in ("small", "scaled")  # drawn wide and pale: the others overlap them
        lr_ax.plot(
            epochs,
            result.lrs,
            color=color,
            lw=4 if wide else 1.5,
            alpha=0.45 if wide else 1.0,
            label=f"{arm} (k = {result.k})",
            drawstyle="steps-post",
        )
    lr_ax.set_yscale("log")
    lr_ax.set_xlabel("epoch")
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_title(f"applied learning rate, k = {k}")
    lr_ax.legend(fontsize=8)
    return save_figure(fig, path)
