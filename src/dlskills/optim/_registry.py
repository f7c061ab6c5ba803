"""The optimizer registry. Each optimizer file registers its class with ``register_optimizer``.

Metadata keys (they drive the shared conformance tests, the CLI listing and the benchmark):
  needs_closure (bool)   step() must be given a closure
  supports_foreach (bool) has a ``torch._foreach_*`` path next to the for-loop reference
  elementwise (bool)      per-coordinate update (benchmarked against torch Adam)
  test_function (str)     a function of dlskills.optim.test_functions it provably handles
  reference (str)         peer package implementing the same algorithm, e.g. "adabound"
"""

from dlskills._registry import Registry

OPTIMIZERS = Registry("optimizer", discover="dlskills.optim")
register_optimizer = OPTIMIZERS.register
