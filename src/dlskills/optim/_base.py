"""What every dlskills optimizer shares with torch.optim's own, so that each technique's file holds
its update rule and little else.

``ZooOptimizer`` (a ``torch.optim.Optimizer``):
  * validates the defaults before any group exists and every group as it joins
    (``_validate(group)``: a ValueError naming the setting, as torch.optim does), refuses complex
    parameters where the rule is real-valued (``real_only``), then lets the subclass prepare the
    group (``_join``);
  * ``step(closure=None)`` evaluates the closure with gradients enabled and, for rules that work
    per group on the parameters that have a gradient, calls ``_update(group, params, grads,
    states)`` with the states made by ``_init_state(p, group)`` on first use; optimizers whose
    step needs the closure itself (second-order and multi-worker rules) override ``step``;
  * ``trainable()``: every parameter that can receive a gradient (``requires_grad``), in group
    order — what closure-based rules differentiate: a frozen tensor in the list (a fine-tuned
    backbone) is left alone, as torch.optim leaves a parameter without a gradient;
  * keeps the subclass's own settings (instance attributes) through ``copy.deepcopy`` and
    pickling, which torch.optim's ``__getstate__`` limits to defaults, state and param groups.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from dlskills.optim._foreach import params_with_grads, reject_complex


class ZooOptimizer(torch.optim.Optimizer):
    #: the rule is real-valued: complex parameters are refused by name when they join
    real_only: ClassVar[bool] = False

    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        self._validate(defaults)
        super().__init__(params, defaults)

    @staticmethod
    def _validate(group: dict[str, Any]) -> None:
        """Raise a ValueError naming the first invalid setting of ``group``."""

    def _join(self, group: dict[str, Any]) -> None:
        """Prepare a group that has just joined (validated; before any step that uses it)."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        self._validate(group)
        if self.real_only:
            reject_complex(type(self).__name__, group["params"])
        self._join(group)

    def trainable(self) -> list[Tensor]:
        """Every parameter that can receive a gradient, in group order."""
        return [p for group in self.param_groups for p in group["params"] if p.requires_grad]

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        """The state of ``p`` at its first step (per-group rules)."""
        raise NotImplementedError

    def _update(
        self,
        group: dict[str, Any],
        params: list[Tensor],
        grads: list[Tensor],
        states: list[dict[str, Any]],
    ) -> None:
        """One step of the rule on the group's parameters that have a gradient."""
        raise NotImplementedError

    @staticmethod
    def _loss_of(closure: Any) -> Any:
        """The closure's result, evaluated with gradients enabled (None without a closure)."""
        if closure is None:
            return None
        with torch.enable_grad():
            return closure()

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = self._loss_of(closure)
        for group in self.param_groups:
            params, grads, states = params_with_grads(
                self, group, lambda p, group=group: self._init_state(p, group)
            )
            if params:
                self._update(group, params, grads, states)
        return loss

    def __getstate__(self) -> dict[str, Any]:
        # torch's hook tables are rebuilt empty by __setstate__, as for its own optimizers
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_optimizer_")}
