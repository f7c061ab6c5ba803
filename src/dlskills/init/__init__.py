"""Initializers by name (READING_LIST §3: 1803.01719 and the papers of each scheme).

``apply(model, name, **kw)`` runs the initializer registered as ``name`` on ``model`` and returns
the model. Each scheme lives in its own module and registers itself in ``INITIALIZERS``; the
entry's metadata carries its catalog id and the variance rule it implements.

Schemes (weights of every Conv/Linear; biases set to 0):

==================  ==========================================  ==========
name                rule                                        catalog
==================  ==========================================  ==========
xavier_uniform      U(±√(6/(fan_in+fan_out))), Var = 2/(fan_in+fan_out)   1803.01719
xavier_normal       N(0, 2/(fan_in+fan_out))                    1803.01719
he_normal           N(0, 2/fan) (fan = fan_in or fan_out)       1803.01719
he_uniform          U(±√(6/fan)), Var = 2/fan                   1803.01719
lecun_normal        N(0, 1/fan_in)                              1706.02515
lecun_uniform       U(±√(3/fan_in)), Var = 1/fan_in             1706.02515
orthogonal          (semi-)orthogonal rows/columns × gain       1803.01719
lsuv                orthogonal, then rescale to unit output variance on data   1803.01719
zero_init_residual  last norm (or conv) of each residual branch = 0            1803.01719
fixup               Fixup (see dlskills.nn.fixup)               1901.09321
==================  ==========================================  ==========
"""

from typing import Any

from torch import nn

from dlskills.init._registry import INITIALIZERS, register_initializer, weight_layers


def apply(model: nn.Module, name: str, **kwargs: Any) -> nn.Module:
    """Initialise ``model`` in place with the scheme registered as ``name``; returns ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    return INITIALIZERS.create(name, model, **kwargs)


__all__ = ["INITIALIZERS", "apply", "register_initializer", "weight_layers"]
