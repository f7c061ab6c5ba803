"""The optimizer benchmark's test problems (issue 14; after DeepOBS, Schneider, Balles & Hennig
2019, whose problems each fix a model, a data set, a step budget and a target): small enough
that every one trains on two CPU cores in seconds, with no download.

  name             model and data                                  metric (goal)       target
  noisy_quadratic  ½θᵀHθ + ξᵀθ, κ = 100, σ = 0.5 (surfaces)        f̄(θ) noise-free (min) 0.01
  rosenbrock       the Rosenbrock valley from (−1.5, 2) (surfaces)  f(θ) (min)            0.01
  beale            the Beale function from (1, 1.5) (surfaces)      f(θ) (min)            0.01
  digits_logreg    multinomial logistic regression, digits          test accuracy (max)   0.95
  digits_mlp       MLP 64-128-10 (ReLU), digits                     test accuracy (max)   0.96
  digits_cnn       CNN (16, 32) channels with batch norm, digits    test accuracy (max)   0.97
  adding_rnn       GRU(16) on the adding problem, T = 10            test MSE (min)        0.01
  digits_vae       VAE (latent 8, widths 64-32), digits             test −ELBO (min)      14

f̄ is the quadratic without its noise (E f − const); all three surfaces have minimum 0, so the
metric is the excess over the optimum. The digits problems use scikit-learn's bundled 8×8
digits (1,257 / 270 / 270 images, standardised); the adding problem predicts the sum of the two
marked values (Var y = 1/6 is what a constant prediction scores). The −ELBO is evaluated with
z = μ (the VAE in eval mode), so it is deterministic.

A problem's ``build(seed)`` returns a :class:`Task`: its parameters, the closure of each kind an
optimizer's registry metadata may ask for (``closure(kind)``: "backward" torch's convention,
"graph" (loss, outputs) left undifferentiated, "residuals" predictions − targets for least
squares), ``next_batch()`` (a seeded mini-batch stream: the seed draws the initial parameters
and the batch order, the data split is fixed) and ``evaluate(split)`` ("val" for tuning, "test"
for reporting). Deviations from DeepOBS: CPU-sized models and budgets (its problems are
GPU-sized), and the 2-D surfaces stand in for its 2-D test problems.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlskills.bench import surfaces


class Task:
    """One problem instance built from a seed: parameters, closures, a batch stream, metrics."""

    params: list[Tensor]

    def next_batch(self) -> None:
        """Draw the next mini-batch (the closures then use it)."""

    def closure(self, kind: str) -> Callable[[], Any]:
        raise NotImplementedError

    def evaluate(self, split: str) -> float:
        raise NotImplementedError


@dataclass(frozen=True)
class Problem:
    """A benchmark problem: its fixed step budget, evaluation interval, metric and target."""

    name: str
    description: str
    metric: str
    goal: str  # "min" or "max"
    target: float
    steps: int
    eval_every: int
    build: Callable[[int], Task]
    closures: tuple[str, ...] = ("backward", "graph")

    def reached(self, value: float) -> bool:
        """Whether a metric value meets the target (NaN never does)."""
        if math.isnan(value):
            return False
        return value <= self.target if self.goal == "min" else value >= self.target

    def better(self, a: float, b: float) -> bool:
        """Whether metric ``a`` is strictly better than ``b`` (NaN is worse than anything)."""
        if math.isnan(a):
            return False
        if math.isnan(b):
            return True
        return a < b if self.goal == "min" else a > b


class SurfaceTask(Task):
    """A 2-D surface of :mod:`dlskills.bench.surfaces` from its start point (float64)."""

    def __init__(self, objective: surfaces.Objective2D) -> None:
        self.objective = objective
        self.point = torch.tensor(objective.start, dtype=torch.float64, requires_grad=True)
        self.params = [self.point]

    def closure(self, kind: str) -> Callable[[], Any]:
        return surfaces.closure_for(self.objective, self.point, kind)

    def evaluate(self, split: str) -> float:
        with torch.no_grad():
            return float(self.objective.mean_value(self.point))


class ModelTask(Task):
    """A model on in-memory data: ``loss(batch) -> (loss, outputs or None)``, a metric on a
    split's full tensors, mini-batches drawn without replacement per epoch from ``seed``."""

    def __init__(
        self,
        model: nn.Module,
        splits: Any,
        *,
        seed: int,
        batch_size: int,
        loss: Callable[[nn.Module, Tensor, Tensor], tuple[Tensor, Tensor | None]],
        metric: Callable[[nn.Module, Tensor, Tensor], float],
        residuals: bool = False,
    ) -> None:
        self.model, self.loss, self.metric = model, loss, metric
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.data = {split: getattr(splits, split).tensors for split in ("train", "val", "test")}
        self.batch_size, self.residuals = batch_size, residuals
        self.generator = torch.Generator().manual_seed(seed)
        self.order: list[Tensor] = []
        self.batch: tuple[Tensor, Tensor] | None = None

    def next_batch(self) -> None:
        if not self.order:
            x, _ = self.data["train"]
            order = torch.randperm(len(x), generator=self.generator)
            self.order = list(order.split(self.batch_size))[::-1]
            if len(self.order) > 1 and len(self.order[0]) < self.batch_size:
                self.order.pop(0)  # drop the short last batch (popped from the end first)
        index = self.order.pop()
        x, y = self.data["train"]
        self.batch = (x[index], y[index])

    def closure(self, kind: str) -> Callable[[], Any]:
        def batch() -> tuple[Tensor, Tensor]:
            if self.batch is None:
                raise RuntimeError("call next_batch() before the closure")
            return self.batch

        if kind == "backward":

            def backward() -> Tensor:
                for p in self.params:
                    p.grad = None
                loss, _ = self.loss(self.model, *batch())
                loss.backward()
                return loss.detach()

            return backward
        if kind == "graph":

            def graph() -> Any:
                loss, outputs = self.loss(self.model, *batch())
                return loss if outputs is None else (loss, outputs)

            return graph
        if kind == "residuals" and self.residuals:

            def residuals() -> Tensor:
                x, y = batch()
                return (self.model(x) - y).flatten()

            return residuals
        raise ValueError(f"closure kind {kind!r} is not available on this problem")

    def evaluate(self, split: str) -> float:
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            value = self.metric(self.model, *self.data[split])
        self.model.train(was_training)
        return value


def _cross_entropy(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    outputs = model(x)
    return F.cross_entropy(outputs, y), outputs


def _accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    return float((model(x).argmax(1) == y).float().mean())


def _mse(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    outputs = model(x)
    return F.mse_loss(outputs, y), outputs


def _test_mse(model: nn.Module, x: Tensor, y: Tensor) -> float:
    return float(F.mse_loss(model(x), y))


def _negative_elbo(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, None]:
    return model.loss(x), None


def _eval_negative_elbo(model: nn.Module, x: Tensor, y: Tensor) -> float:
    return float(model.loss(x))


def _digits_task(
    seed: int, model: Callable[[tuple[int, ...]], nn.Module], *, batch_size: int = 64, **kw: Any
) -> ModelTask:
    from dlskills.data import load

    splits = load("digits", seed=0)
    torch.manual_seed(seed)
    net = model(splits.input_shape)
    kw.setdefault("loss", _cross_entropy)
    kw.setdefault("metric", _accuracy)
    return ModelTask(net, splits, seed=seed, batch_size=batch_size, **kw)


def _logreg(seed: int) -> Task:
    from dlskills.models import MLP

    return _digits_task(seed, lambda shape: MLP(input_shape=shape, num_classes=10, depth=0))


def _mlp(seed: int) -> Task:
    from dlskills.models import MLP

    return _digits_task(
        seed, lambda shape: MLP(input_shape=shape, num_classes=10, depth=1, width=128)
    )


def _cnn(seed: int) -> Task:
    from dlskills.models import CNN

    return _digits_task(
        seed, lambda shape: CNN(input_shape=shape, num_classes=10, channels=(16, 32))
    )


def _vae(seed: int) -> Task:
    from dlskills.models import VAE

    return _digits_task(
        seed,
        lambda shape: VAE(input_shape=shape, latent_dim=8, widths=(64, 32)),
        loss=_negative_elbo,
        metric=_eval_negative_elbo,
    )


def _adding(seed: int) -> Task:
    from dlskills.data import load
    from dlskills.models import RNNModel

    splits = load("adding", seed=0, n=2000, length=10)
    torch.manual_seed(seed)
    model = RNNModel(input_shape=(10, 2), num_classes=1, cell="gru", hidden_size=16)
    return ModelTask(
        model, splits, seed=seed, batch_size=64, loss=_mse, metric=_test_mse, residuals=True
    )


def _surface(factory: Callable[..., surfaces.Objective2D], **kw: Any) -> Callable[[int], Task]:
    return lambda seed: SurfaceTask(factory(**kw))


def _noisy_quadratic(seed: int) -> Task:
    return SurfaceTask(surfaces.noisy_quadratic(condition_number=100.0, noise=0.5, seed=seed))


_SURFACE_CLOSURES = ("backward", "graph", "residuals")

PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in (
        Problem(
            "noisy_quadratic",
            "2-D quadratic, condition number 100, gradient noise σ = 0.5",
            "noise-free loss",
            "min",
            0.01,
            300,
            10,
            _noisy_quadratic,
            _SURFACE_CLOSURES,
        ),
        Problem(
            "rosenbrock",
            "Rosenbrock valley from (−1.5, 2)",
            "f(θ) − f*",
            "min",
            0.01,
            500,
            10,
            _surface(surfaces.rosenbrock),
            _SURFACE_CLOSURES,
        ),
        Problem(
            "beale",
            "Beale function from (1, 1.5)",
            "f(θ) − f*",
            "min",
            0.01,
            500,
            10,
            _surface(surfaces.beale),
            _SURFACE_CLOSURES,
        ),
        Problem(
            "digits_logreg",
            "logistic regression on 8×8 digits, batch 64",
            "test accuracy",
            "max",
            0.95,
            300,
            20,
            _logreg,
        ),
        Problem(
            "digits_mlp",
            "MLP 64-128-10 on 8×8 digits, batch 64",
            "test accuracy",
            "max",
            0.96,
            300,
            20,
            _mlp,
        ),
        Problem(
            "digits_cnn",
            "CNN (16, 32 channels, batch norm) on 8×8 digits, batch 64",
            "test accuracy",
            "max",
            0.97,
            200,
            20,
            _cnn,
        ),
        Problem(
            "adding_rnn",
            "GRU(16) on the adding problem (T = 10), batch 64",
            "test MSE",
            "min",
            0.01,
            300,
            20,
            _adding,
            ("backward", "graph", "residuals"),
        ),
        Problem(
            "digits_vae",
            "VAE (latent 8, widths 64-32) on 8×8 digits, batch 64",
            "test −ELBO (nats)",
            "min",
            14.0,
            300,
            20,
            _vae,
        ),
    )
}


def get(name: str) -> Problem:
    """The problem named ``name`` (ValueError listing the known ones otherwise)."""
    key = str(name).strip().lower().replace("-", "_")
    if key not in PROBLEMS:
        import difflib

        close = difflib.get_close_matches(key, list(PROBLEMS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown problem {name!r}{hint} (known: {', '.join(PROBLEMS)})")
    return PROBLEMS[key]
