"""vSGD-l: SGD with per-parameter learning rates set from gradient statistics (catalog 1206.1106;
Schaul, Zhang & LeCun, "No More Pesky Learning Rates", ICML 2013).

The optimal rate for a noisy quadratic, coordinate i, is η* = ḡ²/(h̄·v̄): large when the gradient
is consistent (ḡ² ≈ v̄), small when it is noise. All statistics are running averages whose
memory τ adapts too (element-wise, the paper's "vSGD-l" variant). The rule is the authors'
code, py-optim's ``vSGD_original`` (Tom Schaul; no outlier detection), with ε = 1e-9:

    g, h  = this step's gradient and curvature sample (h ≥ 0)
    f = 1/τ
    ḡ ← (1 − f)·ḡ + f·g,   v̄ ← (1 − f)·v̄ + (f·g² + ε),   h̄ ← (1 − f)·h̄ + f·h
    r = ḡ²/v̄
    τ ← (1 − r)·τ + (1 + ε)
    θ ← θ − lr·r/(h̄ + ε)·g                  (lr = 1 is the method; it is a multiplier)

Initialisation (the paper's "slow start", as py-optim does it): the first ``init_samples`` = n0
(10) samples only gather statistics at the initial parameters, ḡ = mean g, v̄ = C·(mean g² + ε)
with C = ``variance_scale`` = 2 (overestimating the variance keeps the first rates small),
h̄ = mean h, and τ = ``init_memory``·(1 + ε) = 2(1 + ε) (the paper's τ = n0 is
``init_memory=n0``); the first update uses the next, fresh sample. With torch's closure
contract one ``step(closure)`` is one sample (its minibatch), so the first n0 calls leave the
parameters where they are (py-optim counts them as updates too) and the (n0 + 1)-th call makes
the first move. A test runs this class against a float64 port of ``vSGD_original`` (with the
same curvature samples) to 1e-10 over 60 updates.

Samples: one minibatch gradient per call, i.e. py-optim with batch_size 1 where a "sample" is
the closure's minibatch; py-optim's minibatch form, r = ḡ²/(v̄/B + (B − 1)/B·ḡ²) over
per-example statistics, estimates the same ratio for the minibatch gradient, which needs
per-example gradients this contract does not give.

Curvature (deviation): the paper back-propagates the Gauss-Newton diagonal ("bbprop"), which
needs per-layer code. We use h = |v ⊙ H v| with a Rademacher v and H v a finite difference of
two gradients of the same closure (``dlskills.optim._curvature``), which needs only torch's
closure contract and works for any model. Its mean is ≥ |diag H| (off-diagonal terms add noise,
never bias it low), so the rates err on the small side. Cost: two closure calls per step, and
both must see the same minibatch. The probe generator is seeded and saved in ``state_dict``.

Behaviour: on stochastic problems vSGD needs no tuning (tested: on a minibatch regression with
feature scales over two decades its excess loss after 300 steps is ≈10× below that of the best
SGD rate of a grid). On deterministic, fast-shrinking gradients the long-remembered early
gradients keep ḡ²/v̄ small, so the memory grows and progress slows (e.g. the rotated
ill-conditioned quadratic); this is the method, not a bug.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from dlskills.optim._base import ZooOptimizer
from dlskills.optim._curvature import (
    SeededProbes,
    finite_difference_hvp,
    gradients_of,
    rademacher_like,
)
from dlskills.optim._foreach import check_positive, reject_sparse
from dlskills.optim._registry import register_optimizer


def _sample(
    closure: Callable[[], Any], params: list[Tensor], generator: torch.Generator
) -> tuple[Any, list[Tensor], list[Tensor]]:
    """One sample: (loss, gradients, curvatures |v ⊙ Hv|)."""
    loss, grads = gradients_of(closure, params)
    reject_sparse("VSGD", grads)
    vectors = rademacher_like(params, generator)
    products = finite_difference_hvp(closure, params, vectors, grads)
    curvatures = [(v * hv).abs_() for v, hv in zip(vectors, products)]
    return loss, grads, curvatures


@register_optimizer(
    "vsgd",
    catalog_id="1206.1106",
    aliases=("vsgd_l",),
    needs_closure=True,
    supports_foreach=False,
    elementwise=False,
    test_function="beale",
    test_kwargs={"init_samples": 1},
    test_steps=500,
    test_tolerance=1e-3,
)
class VSGD(SeededProbes, ZooOptimizer):
    """vSGD-l: element-wise adaptive learning rates and memory, no rate to tune.

    Args:
        params: tensors or param groups (real floating point).
        lr: multiplier on the adaptive rate (> 0); 1 is the paper's method.
        init_samples: n0, samples (``step`` calls) that only initialise the statistics (≥ 1);
            the authors' 10.
        variance_scale: C ≥ 1, the initial overestimate of v̄ (the authors' ``slow_constant``).
        init_memory: τ₀ / (1 + ε) ≥ 1, the initial memory; the authors' 2 (the paper: n0).
        eps: ε > 0 of the authors' code (added to v̄ every step, to h̄ in the rate, to τ).
        seed: seed of the curvature probes.
    """

    real_only = True

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        init_samples: int = 10,
        variance_scale: float = 2.0,
        init_memory: float = 2.0,
        eps: float = 1e-9,
        *,
        seed: int = 0,
    ) -> None:
        if not (
            isinstance(init_samples, int)
            and not isinstance(init_samples, bool)
            and init_samples >= 1
        ):
            raise ValueError(f"Invalid init_samples: {init_samples!r} (must be an int >= 1)")
        check_positive("variance_scale", variance_scale)
        if variance_scale < 1:
            raise ValueError(f"Invalid variance_scale: {variance_scale!r} (must be >= 1)")
        check_positive("init_memory", init_memory)
        if init_memory < 1:
            raise ValueError(f"Invalid init_memory: {init_memory!r} (must be >= 1)")
        check_positive("eps", eps)
        super().__init__(params, {"lr": lr})
        self.init_samples = init_samples
        self.variance_scale = variance_scale
        self.init_memory = init_memory
        self.eps = eps
        self._init_probes(seed)

    @staticmethod
    def _validate(group: dict[str, Any]) -> None:
        check_positive("lr", group["lr"])

    def _gather(self, params: list[Tensor], grads: list[Tensor], curvatures: list) -> None:
        """One initialisation sample: sums of g, g², h; the means after the n0-th."""
        n0, eps = self.init_samples, self.eps
        for p, g, h in zip(params, grads, curvatures):
            state = self.state[p]
            if not state:
                state["step"] = torch.tensor(0.0)
                for key in ("grad_avg", "sq_avg", "curvature_avg"):
                    state[key] = torch.zeros_like(p)
            state["step"] += 1
            state["grad_avg"].add_(g)
            state["sq_avg"].addcmul_(g, g)
            state["curvature_avg"].add_(h)
            if int(state["step"].item()) == n0:
                state["grad_avg"].div_(n0)
                state["sq_avg"].div_(n0).add_(eps).mul_(self.variance_scale)
                state["curvature_avg"].div_(n0)
                state["memory"] = torch.full_like(p, (1.0 + eps) * self.init_memory)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        if closure is None:
            raise ValueError("VSGD.step needs a closure: curvature takes extra gradients")
        params = self.trainable()
        loss, grads, curvatures = _sample(closure, params, self._generator)
        samples = {id(p): (g, h) for p, g, h in zip(params, grads, curvatures)}
        # a parameter gathers its first init_samples samples (one that joined later too), then
        # updates
        fresh = [i for i, p in enumerate(params) if "memory" not in self.state[p]]
        self._gather(
            [params[i] for i in fresh], [grads[i] for i in fresh], [curvatures[i] for i in fresh]
        )
        fresh_ids = {id(params[i]) for i in fresh}
        eps = self.eps
        for group in self.param_groups:
            for p in group["params"]:
                if id(p) not in samples or id(p) in fresh_ids:
                    continue
                state, (g, h) = self.state[p], samples[id(p)]
                state["step"] += 1
                fraction = state["memory"].reciprocal()
                keep = 1.0 - fraction
                state["grad_avg"].mul_(keep).add_(fraction * g)
                state["sq_avg"].mul_(keep).add_(fraction * (g * g) + eps)
                state["curvature_avg"].mul_(keep).add_(fraction * h)
                ratio = state["grad_avg"].square() / state["sq_avg"]
                state["memory"].mul_(1.0 - ratio).add_(1.0 + eps)
                rate = ratio / (state["curvature_avg"] + eps)
                p.addcmul_(rate, g, value=-group["lr"])
        return loss
