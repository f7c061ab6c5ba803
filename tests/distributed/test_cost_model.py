"""The cost model's formulas against values computed by hand (module docstring of
dlskills.distributed.cost_model)."""

import math

import pytest

from dlskills.distributed.cost_model import (
    CostModel,
    Network,
    communication_seconds,
    fit_network,
    parameter_server_seconds,
    ring_allreduce_bytes,
    ring_allreduce_seconds,
)

# 1 MB over 4 workers on a 1 GB/s link with 10 µs per message
MB, NET = 1e6, Network(bandwidth=1e9, latency=1e-5)


def test_ring_allreduce_by_hand():
    # 2·3/4 · 1e6 B = 1.5e6 B sent per worker; 1.5e6/1e9 s + 2·3·1e-5 s
    assert ring_allreduce_bytes(MB, 4) == pytest.approx(1.5e6)
    assert ring_allreduce_seconds(MB, 4, NET) == pytest.approx(1.5e-3 + 6e-5)
    # two workers: each sends the whole buffer once, 2 messages
    assert ring_allreduce_seconds(MB, 2, NET) == pytest.approx(1e-3 + 2e-5)
    # one worker does not communicate
    assert ring_allreduce_seconds(MB, 1, NET) == 0.0


def test_ring_bandwidth_term_tends_to_twice_the_buffer():
    assert ring_allreduce_bytes(MB, 1024) == pytest.approx(2 * 1023 / 1024 * MB)
    assert ring_allreduce_bytes(MB, 1024) < 2 * MB


def test_parameter_server_link_carries_n_times_the_bytes_each_way():
    # 4 workers: 4 MB in and 4 MB out through the server's 1 GB/s link, plus 2 messages
    assert parameter_server_seconds(MB, 4, NET) == pytest.approx(8e-3 + 2e-5)
    # one worker still talks to its server
    assert parameter_server_seconds(MB, 1, NET) == pytest.approx(2e-3 + 2e-5)


def test_strategies_by_hand():
    ring, server = 1.5e-3 + 6e-5, 8e-3 + 2e-5
    assert communication_seconds("ddp", MB, 4, NET) == pytest.approx(ring)
    assert communication_seconds("local-sgd", MB, 4, NET, period=8) == pytest.approx(ring / 8)
    assert communication_seconds("parameter-server", MB, 4, NET) == pytest.approx(server)
    assert communication_seconds("easgd", MB, 4, NET, period=4) == pytest.approx(server / 4)
    # downpour pushing every 2 and fetching every 5 steps: each way 4e-3 + 1e-5 s
    assert communication_seconds("downpour", MB, 4, NET, period=2, fetch_period=5) == pytest.approx(
        (4e-3 + 1e-5) * (1 / 2 + 1 / 5)
    )
    # with n_push = n_fetch = 1 downpour is the synchronous parameter server's traffic
    assert communication_seconds("downpour", MB, 4, NET) == pytest.approx(server)


def test_gbit_link():
    # 10 Gbit/s = 1.25e9 bytes per second
    assert Network.gbit(10).bandwidth == pytest.approx(1.25e9)


def test_step_time_and_speedup_by_hand():
    model = CostModel(seconds_per_example=1e-4, parameter_bytes=MB, network=NET)
    # batch 32: 3.2e-3 s compute; ring of 4 workers 1.56e-3 s
    assert model.step_seconds("ddp", 4, 32) == pytest.approx(3.2e-3 + 1.56e-3)
    assert model.speedup("ddp", 4, 32) == pytest.approx(4 * 3.2e-3 / 4.76e-3)
    assert model.speedup("ddp", 1, 32) == pytest.approx(1.0)
    # local SGD with H = 8 amortises the same ring over 8 steps
    assert model.step_seconds("local-sgd", 4, 32, period=8) == pytest.approx(3.2e-3 + 1.95e-4)


def test_fit_recovers_bandwidth_and_latency_from_hand_computed_times():
    # 2 workers, β = 5e8 B/s, α = 4e-5 s: t = s/β + 2α
    sizes = [1e3, 1e5, 1e7]
    seconds = [1e3 / 5e8 + 8e-5, 1e5 / 5e8 + 8e-5, 1e7 / 5e8 + 8e-5]
    network = fit_network(sizes, seconds, 2)
    assert network.bandwidth == pytest.approx(5e8, rel=1e-9)
    assert network.latency == pytest.approx(4e-5, rel=1e-9)
    model = CostModel.fitted(
        one_process_seconds=2.0,
        examples=1000,
        parameter_bytes=MB,
        allreduce_sizes=sizes,
        allreduce_seconds=seconds,
        workers=2,
    )
    assert model.seconds_per_example == pytest.approx(2e-3)
    assert model.network.bandwidth == pytest.approx(5e8, rel=1e-9)


def test_fit_of_noisy_times_is_least_squares_on_relative_errors():
    # x = s (N = 2); points (0, 1), (1, 2), (2, 4) with weights 1/t² = 1, 1/4, 1/16 (sum 21/16):
    # weighted means x̄ = (3/8)/(21/16) = 2/7, ȳ = (7/4)/(21/16) = 4/3;
    # Σw(x − x̄)(y − ȳ) = 1/2, Σw(x − x̄)² = 11/28 → slope 14/11, intercept 4/3 − 4/11 = 32/33
    network = fit_network([0.0, 1.0, 2.0], [1.0, 2.0, 4.0], 2)
    assert network.bandwidth == pytest.approx(11 / 14)
    assert network.latency == pytest.approx(32 / 33 / 2)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: Network(bandwidth=0), "bandwidth"),
        (lambda: Network(bandwidth=1e9, latency=-1), "latency"),
        (lambda: Network(bandwidth=math.inf), "bandwidth"),
        (lambda: ring_allreduce_seconds(MB, 0, NET), "workers"),
        (lambda: communication_seconds("allgather", MB, 2, NET), "strategy"),
        (lambda: communication_seconds("local-sgd", MB, 2, NET, period=0), "period"),
        (lambda: fit_network([1.0, 2.0], [1.0, 2.0], 1), "workers"),
        (lambda: fit_network([1.0, 1.0], [1.0, 2.0], 2), "sizes"),
        (lambda: fit_network([1.0, 2.0], [2.0, 1.0], 2), "bandwidth"),
        (lambda: CostModel(seconds_per_example=0, parameter_bytes=MB, network=NET), "seconds"),
    ],
)
def test_bad_values_name_themselves(call, match):
    with pytest.raises(ValueError, match=match):
        call()
