"""Perturbed Model Validation (catalog 1905.10201; Zhang, Harman, Guedj, Barr & Shawe-Taylor,
"Perturbed Model Validation: A New Framework to Validate Model Relevance", 2019).

PMV judges how well a model class fits the concept behind the training data by how it reacts to
label noise. For each noise rate r in R = (r_1, …, r_m):

    D_r  = the training set with a fraction r of its labels flipped (seeded; each flipped label
           becomes one of the other K − 1 classes, uniformly),
    θ_r  = the model trained from a fresh seeded init on D_r with a fixed budget,
    a(r) = accuracy of θ_r on D_r, the (perturbed) data it was trained on  — "training accuracy".

The least-squares line a(r) ≈ intercept + slope·r is fitted and

    relevance = −slope  (the training-accuracy *decrease rate*; larger = better concept fit).

Why it ranks capacities: a model that captures the concept but cannot memorise keeps predicting
the clean labels, so its accuracy on D_r falls like a(r) ≈ a₀ − r·(a₀ − (1 − a₀)/(K − 1))
(relevance ≈ 2a₀ − 1 for K = 2); a model that memorises the flipped labels keeps a(r) ≈ 1
(relevance ≈ 0); a model too small for the concept has a low a₀ and so a small relevance.

Deviations and choices (the paper leaves them open):
- Noise sets are nested: one seeded permutation of the samples is drawn and rate r flips its
  first round(r·n) entries, so every curve uses the same corrupted samples at growing rates,
  which lowers the variance of the slope. ``repeats`` > 1 averages over independent draws.
- ``PMVResult.clean_accuracies`` also reports each θ_r's accuracy on the original labels (how
  much of the noise the model memorised); it is not used for the relevance.
- Each fit is a fixed budget of optimizer steps (the paper retrains each learner to convergence
  with its defaults); compare models under the same budget.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

DEFAULT_NOISE_RATES: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


@dataclass(frozen=True)
class PMVResult:
    """The PMV curve of one model: per noise rate, the training accuracy on the perturbed labels
    (``accuracies``, the paper's quantity) and on the original ones (``clean_accuracies``);
    ``slope``/``intercept`` of the least-squares line through (noise_rates, accuracies);
    ``eval_accuracy``: accuracy on ``eval_data`` of the model fitted at the lowest noise rate
    (the ordinary validation score, for comparison; None without ``eval_data``)."""

    name: str
    noise_rates: tuple[float, ...]
    accuracies: tuple[float, ...]
    clean_accuracies: tuple[float, ...]
    slope: float
    intercept: float
    eval_accuracy: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def relevance(self) -> float:
        """Model relevance = −slope: the training-accuracy decrease per unit of noise rate."""
        return -self.slope

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "noise_rates": list(self.noise_rates),
            "accuracies": list(self.accuracies),
            "clean_accuracies": list(self.clean_accuracies),
            "slope": self.slope,
            "intercept": self.intercept,
            "relevance": self.relevance,
            "eval_accuracy": self.eval_accuracy,
            **self.info,
        }

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """PNG of the accuracy-vs-noise curve and its fitted line."""
        return plot_pmv([self], path)


def pmv(
    model_factory: Callable[[], nn.Module],
    train_data: Any,
    noise_rates: Sequence[float] = DEFAULT_NOISE_RATES,
    *,
    steps: int = 300,
    lr: float = 1e-2,
    batch_size: int | None = None,
    optimizer: str = "adam",
    num_classes: int | None = None,
    repeats: int = 1,
    seed: int = 0,
    name: str = "model",
    eval_data: Any = None,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int, str], Any] | None = None,
) -> PMVResult:
    """Perturbed Model Validation of the model class ``model_factory`` on ``train_data``.

    ``model_factory()`` returns a fresh classifier (logits of shape (N, K)); it is called after
    ``torch.manual_seed`` so the init of every fit is a function of ``seed``. ``train_data`` is a
    ``TensorDataset``/``(inputs, labels)`` pair (or a ``DataSplits``, whose ``train`` is used).
    Each fit runs ``steps`` optimizer steps of ``optimizer`` (a ``dlskills.optim`` name) at
    ``lr`` on mini-batches of ``batch_size`` (None: full batch) with cross-entropy.
    Returns a :class:`PMVResult`; ``result.slope`` is the fitted slope of training accuracy (on
    the perturbed labels) against the noise rate, ``result.relevance = −slope``. With
    ``eval_data`` (same forms as ``train_data``; a ``DataSplits`` gives its ``val``) the result
    also carries the validation accuracy of the model fitted at the lowest noise rate.
    ``progress(done, total, what)`` is called after every fit (one per noise rate and repeat).
    """
    inputs, labels = _tensors(train_data)
    evaluation = None if eval_data is None else _tensors(getattr(eval_data, "val", eval_data))
    rates = _check_rates(noise_rates)
    classes = _num_classes(labels, num_classes)
    for arg, value in (("steps", steps), ("repeats", repeats)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{arg} must be a positive int, got {value!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    if not (isinstance(lr, int | float) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")

    noisy_sum = torch.zeros(len(rates), dtype=torch.float64)
    clean_sum = torch.zeros(len(rates), dtype=torch.float64)
    eval_sum = 0.0
    lowest = rates.index(min(rates))
    for repeat in range(repeats):
        draw_seed = seed + 7919 * repeat
        for index, rate in enumerate(rates):
            noisy = flip_labels(labels, rate, classes, seed=draw_seed)
            torch.manual_seed(draw_seed)
            model = model_factory()
            if not isinstance(model, nn.Module):
                raise TypeError(f"model_factory must return an nn.Module, got {type(model)}")
            _fit(model, inputs, noisy, steps, lr, batch_size, optimizer, draw_seed, device)
            predictions = _predict(model, inputs, device)
            noisy_sum[index] += (predictions == noisy).double().mean()
            clean_sum[index] += (predictions == labels).double().mean()
            if evaluation is not None and index == lowest:
                eval_predictions = _predict(model, evaluation[0], device)
                eval_sum += float((eval_predictions == evaluation[1]).double().mean())
            if progress is not None:
                progress(
                    repeat * len(rates) + index + 1,
                    repeats * len(rates),
                    f"{name} at noise {rate:g}",
                )
    accuracies = (noisy_sum / repeats).tolist()
    slope, intercept = fit_line(rates, accuracies)
    return PMVResult(
        name=name,
        noise_rates=rates,
        accuracies=tuple(accuracies),
        clean_accuracies=tuple((clean_sum / repeats).tolist()),
        slope=slope,
        intercept=intercept,
        eval_accuracy=None if evaluation is None else eval_sum / repeats,
        info={
            "steps": steps,
            "lr": lr,
            "batch_size": batch_size,
            "optimizer": optimizer,
            "repeats": repeats,
            "seed": seed,
            "samples": len(labels),
            "classes": classes,
        },
    )


def rank_models(
    factories: Mapping[str, Callable[[], nn.Module]],
    train_data: Any,
    *,
    progress: Callable[[int, int, str], Any] | None = None,
    **pmv_kwargs: Any,
) -> list[PMVResult]:
    """PMV of every model class in ``factories`` (name -> factory) under the same noise draws and
    budget, sorted by relevance, most relevant (steepest accuracy decrease) first.
    ``progress(done, total, what)`` counts the fits of all the models together."""
    if not factories:
        raise ValueError("factories must name at least one model")
    results = []
    for position, (name, factory) in enumerate(factories.items()):

        def counted(done: int, per_model: int, what: str, position: int = position) -> None:
            if progress is not None:
                progress(position * per_model + done, len(factories) * per_model, what)

        results.append(pmv(factory, train_data, name=name, progress=counted, **pmv_kwargs))
    return sorted(results, key=lambda result: result.relevance, reverse=True)


# the check's task: one hidden ReLU layer of 4 units represents y = [x₁x₂ > 0] exactly
# (sign(|x₁+x₂| − |x₁−x₂|) = sign(x₁x₂)); 1 unit cannot; a 3×64 net memorises flipped labels
CAPACITIES: dict[str, tuple[int, int]] = {
    "too_small": (1, 1),
    "right": (1, 4),
    "oversized": (3, 64),
}  # name -> (depth, width) of dlskills.models "mlp"


@dataclass(frozen=True)
class CapacityCheck:
    """The claim "PMV picks the right capacity where train/validation accuracy does not", per
    seed: which model each criterion picks and PMV's margin (top relevance − second)."""

    results: tuple[tuple[PMVResult, ...], ...]
    pmv_picks: tuple[str, ...]
    train_picks: tuple[str, ...]
    val_picks: tuple[str, ...]
    margins: tuple[float, ...]

    @property
    def pmv_right(self) -> float:
        """Fraction of seeds where PMV picks the right capacity."""
        return self.pmv_picks.count("right") / len(self.pmv_picks)

    @property
    def val_right(self) -> float:
        """Fraction of seeds where validation accuracy picks the right capacity."""
        return self.val_picks.count("right") / len(self.val_picks)


def xor_task(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n points x ~ N(0, I₂) with labels y = [x₁·x₂ > 0] (XOR of the signs)."""
    x = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
    return x, (x[:, 0] * x[:, 1] > 0).long()


def capacity_check(
    seeds: Sequence[int] = (2,),
    *,
    train_samples: int = 200,
    val_samples: int = 2000,
    noise_rates: Sequence[float] = (0.0, 0.2, 0.4),
    steps: int = 300,
    lr: float = 1e-2,
) -> CapacityCheck:
    """Rank the :data:`CAPACITIES` MLPs on :func:`xor_task` by PMV, training accuracy (noise-free
    fit) and validation accuracy, once per seed (data, noise and inits all follow the seed)."""
    from dlskills.models import create

    def factory(depth: int, width: int) -> Callable[[], nn.Module]:
        return lambda: create("mlp", input_shape=(2,), num_classes=2, depth=depth, width=width)

    factories = {name: factory(*spec) for name, spec in CAPACITIES.items()}
    results, pmv_picks, train_picks, val_picks, margins = [], [], [], [], []
    for seed in seeds:
        x, y = xor_task(train_samples + val_samples, seed)
        ranked = rank_models(
            factories,
            (x[:train_samples], y[:train_samples]),
            noise_rates=noise_rates,
            steps=steps,
            lr=lr,
            seed=seed,
            eval_data=(x[train_samples:], y[train_samples:]),
        )
        clean = ranked[0].noise_rates.index(min(ranked[0].noise_rates))
        results.append(tuple(ranked))
        pmv_picks.append(ranked[0].name)
        train_picks.append(max(ranked, key=lambda r: r.accuracies[clean]).name)
        val_picks.append(max(ranked, key=lambda r: r.eval_accuracy).name)
        margins.append(ranked[0].relevance - ranked[1].relevance)
    return CapacityCheck(
        tuple(results), tuple(pmv_picks), tuple(train_picks), tuple(val_picks), tuple(margins)
    )


def flip_labels(labels: torch.Tensor, rate: float, num_classes: int, *, seed: int) -> torch.Tensor:
    """A copy of ``labels`` with round(rate·n) of them replaced by a different class.

    The flipped samples are the first round(rate·n) of a permutation drawn from ``seed`` (so the
    sets are nested across rates) and each new class is uniform over the other K − 1 classes."""
    if num_classes < 2:
        raise ValueError(f"label flipping needs at least 2 classes, got {num_classes}")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    shifts = torch.randint(1, num_classes, (len(labels),), generator=generator)
    chosen = order[: round(rate * len(labels))]
    noisy = labels.clone()
    noisy[chosen] = (labels[chosen] + shifts[chosen]) % num_classes
    return noisy


def fit_line(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Least-squares (slope, intercept) of y ≈ intercept + slope·x."""
    xs = torch.tensor(x, dtype=torch.float64)
    ys = torch.tensor(y, dtype=torch.float64)
    centred = xs - xs.mean()
    slope = float((centred * (ys - ys.mean())).sum() / (centred * centred).sum())
    return slope, float(ys.mean() - slope * xs.mean())


def plot_pmv(results: Sequence[PMVResult], path: str | os.PathLike[str]) -> Path:
    """One PNG with every result's training accuracy vs noise rate and its fitted line."""
    from dlskills._plot import new_figure, save_figure

    fig, ax = new_figure()
    for result in results:
        rates = torch.tensor(result.noise_rates)
        (line,) = ax.plot(
            result.noise_rates,
            result.accuracies,
            "o",
            label=f"{result.name}: relevance {result.relevance:.3f}",
        )
        ax.plot(rates, result.intercept + result.slope * rates, "-", color=line.get_color())
    ax.set_xlabel("injected label-noise rate")
    ax.set_ylabel("training accuracy on the perturbed labels")
    ax.set_title("Perturbed Model Validation (1905.10201)")
    ax.legend(fontsize="small")
    return save_figure(fig, path)


def _fit(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    steps: int,
    lr: float,
    batch_size: int | None,
    optimizer_name: str,
    seed: int,
    device: str | torch.device,
) -> None:
    """``steps`` optimizer steps of cross-entropy on seeded shuffled mini-batches.

    A plain loop: PMV runs many short fits and needs none of the Trainer's callbacks,
    validation or checkpoints."""
    from dlskills.optim import create

    model.to(device).train()
    inputs, labels = inputs.to(device), labels.to(device)
    optimizer = create(optimizer_name, model.parameters(), lr=lr)
    batch = min(batch_size or len(labels), len(labels))
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    position = 0
    for _ in range(steps):
        if position + batch > len(labels):
            order, position = torch.randperm(len(labels), generator=generator), 0
        index = order[position : position + batch].to(device)
        position += batch
        loss = F.cross_entropy(model(inputs[index]), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


@torch.no_grad()
def _predict(model: nn.Module, inputs: torch.Tensor, device: str | torch.device) -> torch.Tensor:
    model.eval()
    return model(inputs.to(device)).argmax(1).cpu()


def _tensors(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    data = getattr(data, "train", data)
    tensors = data.tensors if isinstance(data, TensorDataset) else data
    if not (isinstance(tensors, tuple | list) and len(tensors) == 2):
        raise TypeError(
            "train_data must be a TensorDataset, an (inputs, labels) pair or DataSplits"
        )
    inputs, labels = tensors
    if not isinstance(inputs, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise TypeError("data must hold tensors")
    if labels.dtype != torch.int64 or labels.dim() != 1:
        raise ValueError("data labels must be a 1-D int64 tensor of class indices")
    if len(inputs) != len(labels) or len(labels) == 0:
        raise ValueError("data must have as many inputs as labels, at least one")
    return inputs, labels


def _check_rates(noise_rates: Sequence[float]) -> tuple[float, ...]:
    rates = tuple(float(r) for r in noise_rates)
    if len(rates) < 2 or len(set(rates)) < 2:
        raise ValueError(f"noise_rates needs at least two distinct rates, got {noise_rates!r}")
    if any(not (0.0 <= r < 1.0) or math.isnan(r) for r in rates):
        raise ValueError(f"noise_rates must lie in [0, 1), got {noise_rates!r}")
    return rates


def _num_classes(labels: torch.Tensor, num_classes: int | None) -> int:
    found = int(labels.max()) + 1
    if num_classes is None:
        return max(found, 2)
    if not isinstance(num_classes, int) or num_classes < found:
        raise ValueError(f"num_classes must be an int ≥ {found} (labels go up to {found - 1})")
    return num_classes
