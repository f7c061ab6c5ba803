"""Benchmarks and studies over the library.

The optimizer benchmark (issue 14; DeepOBS's protocol, light, in PyTorch): ``surfaces``, the
classic 2-D test functions; ``problems``, the benchmark's test problems (each with a fixed step
budget and a target metric); ``protocol``, tune each optimizer on a fixed search budget, rerun
the best setting over seeds, summarise (``run_benchmark``); ``figures``, one page per problem.
The CLI is ``dlskills bench optimizers``.

Hyper-parameter studies: ``sweep``, grid / one-factor-at-a-time / random / TPE studies on
Optuna with SQLite storage, resumable (``dlskills sweep``).
"""
