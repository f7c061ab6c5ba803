"""The optimizer registry. Each optimizer file registers its class with ``register_optimizer``.

Metadata keys (they drive the shared conformance tests, the CLI listing and the benchmark):
  needs_closure (bool)    step() must be given a closure
  closure (str)           the closure's kind when needed: "backward" (torch's convention,
                          default), "graph" or "residuals"
                          (see dlskills.bench.surfaces.closure_for)
  supports_foreach (bool) has a ``torch._foreach_*`` path next to the for-loop reference
  supports_fused (bool)   has a fused CPU kernel (``fused=`` argument, dlskills.optim._native)
  elementwise (bool)      per-coordinate update (benchmarked against torch Adam)
  test_function (str)     a surface of dlskills.bench.surfaces it provably handles
  test_kwargs (dict)      hyper-parameters for that test (and the conformance problems)
  test_steps (int)        steps it needs there (default 500)
  test_tolerance (float)  bound on f(θ_T) − f(θ*) it must reach (default 1e-3)
  reference (str)         peer package implementing the same algorithm, e.g. "adabound"
  run_lr (float)          the learning rate ``dlskills train`` uses without --lr, where the
                          class default is no place to start a run (torch's SGD: 1e-3)
"""

from dlskills._registry import Registry

OPTIMIZERS = Registry("optimizer", discover="dlskills.optim")
register_optimizer = OPTIMIZERS.register
