"""The layer registry. Each layer file registers its nn.Module with ``register_layer``.

Metadata: ``example`` = (constructor kwargs, input shape without batch) — the shared conformance
suite (tests/nn/test_layer_conformance.py) builds every registered layer from it and checks the
output is finite, float64 gradients pass torch.autograd.gradcheck, and eval mode is deterministic.
"""

from dlskills._registry import Registry

LAYERS = Registry("layer", discover="dlskills.nn")
register_layer = LAYERS.register
