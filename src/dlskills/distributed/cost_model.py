"""A step-time model for data-parallel training: compute plus communication (catalog
dist-survey-2018 and 1912.09789, which classify the strategies this package implements; the
all-reduce cost is the ring algorithm's bandwidth-optimal count, Patarasuk & Yuan, "Bandwidth
optimal all-reduce algorithms for clusters of workstations", JPDC 2009).

N workers each take b examples of every step and hold a replica of P bytes of parameters. A link
moves β bytes per second each way and every message costs α seconds; c is the compute time per
example on one worker. A step takes

    t(N) = c · b + t_comm(N)          (no overlap of compute and communication: an upper bound)

with, by strategy:

    ddp                 ring all-reduce of the gradients every step
                        t_ring(P, N) = 2(N − 1)/N · P/β + 2(N − 1) · α
    local-sgd (H)       a ring all-reduce of the parameters every H steps: t_ring(P, N) / H
    parameter-server    workers push P bytes of gradients and fetch P bytes of parameters every
                        step through one server link, which carries N·P bytes each way:
                        t_ps(P, N) = 2 · N · P/β + 2α
    easgd (τ)           the centre variable on one rank: x̃ goes out to the N workers and their
                        elastic differences come back every τ steps, the parameter server's
                        traffic: t_ps(P, N) / τ
    downpour (n_push, n_fetch)
                        the parameter-server traffic with pushes every n_push and fetches every
                        n_fetch steps: N·P/β · (1/n_push + 1/n_fetch) + α · (1/n_push + 1/n_fetch)

The ring's 2(N − 1)/N · P is what each worker sends (a reduce-scatter then an all-gather, each
(N − 1) messages of P/N bytes); it tends to 2P, so the ring's bandwidth term stays flat in N while
its latency term grows linearly. The server's link is the bottleneck of the parameter server: its
bandwidth term grows linearly in N. Speed-up is measured against one worker without
communication: S(N) = N · c · b / t(N) at a fixed per-worker batch b (weak scaling, the
large-batch regime of 1706.02677).

Fitting: ``fit_network`` takes measured all-reduce times of several message sizes on N workers
and solves the ring formula for (α, β) by least squares on relative errors; ``CostModel.fitted``
adds c from a one-process measurement. Deviations: collectives are not overlapped with the
backward pass (DDP's buckets do overlap, so measured DDP steps can beat the model), asynchronous
strategies are costed as if every worker waited for its own exchange, and the parameter server
is one unsharded rank.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: bytes per second of a link of 1 Gbit/s
GBIT_PER_S = 1e9 / 8

COSTED_STRATEGIES = ("ddp", "local-sgd", "easgd", "parameter-server", "downpour")


def _check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _check_nonnegative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{name} must be ≥ 0, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int ≥ 1, got {value!r}")
    return value


@dataclass(frozen=True)
class Network:
    """A link of ``bandwidth`` bytes per second each way and ``latency`` seconds per message."""

    bandwidth: float
    latency: float = 0.0

    def __post_init__(self) -> None:
        _check_positive("bandwidth", self.bandwidth)
        _check_nonnegative("latency", self.latency)

    @classmethod
    def gbit(cls, gbit_per_s: float, latency: float = 0.0) -> Network:
        """A link of ``gbit_per_s`` Gbit/s."""
        return cls(_check_positive("gbit_per_s", gbit_per_s) * GBIT_PER_S, latency)


def ring_allreduce_bytes(nbytes: float, workers: int) -> float:
    """Bytes each worker sends in a ring all-reduce of ``nbytes``: 2(N − 1)/N · nbytes."""
    _check_nonnegative("nbytes", nbytes)
    _check_count("workers", workers)
    return 2 * (workers - 1) / workers * nbytes


def ring_allreduce_seconds(nbytes: float, workers: int, network: Network) -> float:
    """2(N − 1)/N · bytes/β + 2(N − 1)·α (zero on one worker)."""
    sent = ring_allreduce_bytes(nbytes, workers)
    return sent / network.bandwidth + 2 * (workers - 1) * network.latency


def parameter_server_seconds(nbytes: float, workers: int, network: Network) -> float:
    """One push and one fetch of ``nbytes`` by each of N workers through the server's link,
    which carries N · bytes each way: 2 · N · bytes/β + 2α."""
    _check_nonnegative("nbytes", nbytes)
    _check_count("workers", workers)
    return 2 * workers * nbytes / network.bandwidth + 2 * network.latency


def communication_seconds(
    strategy: str,
    nbytes: float,
    workers: int,
    network: Network,
    *,
    period: int = 1,
    fetch_period: int | None = None,
) -> float:
    """Communication time per step of ``strategy`` (module docstring). ``period`` is H for
    local-sgd, τ for easgd and n_push for downpour (``fetch_period`` its n_fetch, default
    ``period``); ddp and parameter-server communicate every step."""
    _check_count("period", period)
    if strategy == "ddp":
        return ring_allreduce_seconds(nbytes, workers, network)
    if strategy == "local-sgd":
        return ring_allreduce_seconds(nbytes, workers, network) / period
    if strategy == "parameter-server":
        return parameter_server_seconds(nbytes, workers, network)
    if strategy == "easgd":
        return parameter_server_seconds(nbytes, workers, network) / period
    if strategy == "downpour":
        fetch = _check_count("fetch_period", period if fetch_period is None else fetch_period)
        one_way = parameter_server_seconds(nbytes, workers, network) / 2
        return one_way / period + one_way / fetch
    raise ValueError(f"strategy must be one of {COSTED_STRATEGIES}, got {strategy!r}")


def fit_network(sizes: Sequence[float], seconds: Sequence[float], workers: int) -> Network:
    """(α, β) of the ring all-reduce formula fitted to all-reduce times ``seconds`` of messages
    of ``sizes`` bytes on ``workers`` (≥ 2) workers. The fit minimises relative errors (least
    squares with weights 1/t²): timing noise grows with the time, and unweighted the largest
    message would decide the latency too. The latency is clipped at 0 when the intercept is
    negative."""
    _check_count("workers", workers)
    if workers < 2:
        raise ValueError("workers must be ≥ 2 to fit a network (one worker does not communicate)")
    if len(sizes) != len(seconds) or len(sizes) < 2:
        raise ValueError("give at least two (size, seconds) pairs of equal length")
    xs = [ring_allreduce_bytes(s, workers) for s in sizes]
    ys = [_check_positive("seconds", t) for t in seconds]
    weights = [1 / y**2 for y in ys]
    total = sum(weights)
    mean_x = sum(w * x for w, x in zip(weights, xs)) / total
    mean_y = sum(w * y for w, y in zip(weights, ys)) / total
    spread = sum(w * (x - mean_x) ** 2 for w, x in zip(weights, xs))
    if spread == 0:
        raise ValueError("sizes must differ to separate bandwidth from latency")
    slope = sum(w * (x - mean_x) * (y - mean_y) for w, x, y in zip(weights, xs, ys)) / spread
    if not slope > 0:
        raise ValueError("the times do not grow with the message size: no bandwidth to fit")
    intercept = mean_y - slope * mean_x
    return Network(bandwidth=1 / slope, latency=max(intercept, 0.0) / (2 * (workers - 1)))


@dataclass(frozen=True)
class CostModel:
    """Step time of N workers for a model of ``parameter_bytes`` bytes: ``seconds_per_example``
    of compute on one worker, plus the strategy's communication over ``network``."""

    seconds_per_example: float
    parameter_bytes: float
    network: Network

    def __post_init__(self) -> None:
        _check_positive("seconds_per_example", self.seconds_per_example)
        _check_nonnegative("parameter_bytes", self.parameter_bytes)

    @classmethod
    def fitted(
        cls,
        *,
        one_process_seconds: float,
        examples: int,
        parameter_bytes: float,
        allreduce_sizes: Sequence[float],
        allreduce_seconds: Sequence[float],
        workers: int,
    ) -> CostModel:
        """c from one process taking ``one_process_seconds`` for ``examples`` examples, the
        network from all-reduce timings on ``workers`` workers (``fit_network``)."""
        return cls(
            seconds_per_example=_check_positive("one_process_seconds", one_process_seconds)
            / _check_count("examples", examples),
            parameter_bytes=parameter_bytes,
            network=fit_network(allreduce_sizes, allreduce_seconds, workers),
        )

    def compute_seconds(self, per_worker_batch: int) -> float:
        return self.seconds_per_example * _check_count("per_worker_batch", per_worker_batch)

    def step_seconds(
        self,
        strategy: str,
        workers: int,
        per_worker_batch: int,
        *,
        period: int = 1,
        fetch_period: int | None = None,
    ) -> float:
        """c · b + the strategy's communication per step."""
        return self.compute_seconds(per_worker_batch) + communication_seconds(
            strategy,
            self.parameter_bytes,
            workers,
            self.network,
            period=period,
            fetch_period=fetch_period,
        )

    def speedup(
        self,
        strategy: str,
        workers: int,
        per_worker_batch: int,
        *,
        period: int = 1,
        fetch_period: int | None = None,
    ) -> float:
        """Examples per second of N workers over one worker's without communication."""
        step = self.step_seconds(
            strategy, workers, per_worker_batch, period=period, fetch_period=fetch_period
        )
        return workers * self.compute_seconds(per_worker_batch) / step
