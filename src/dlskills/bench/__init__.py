"""Benchmarks and studies over the library: test problems, protocols, hyper-parameter sweeps."""
