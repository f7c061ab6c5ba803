"""Run a function on N local ranks for the distributed tests: spawned processes, gloo, 127.0.0.1
only, a free port chosen at run time, every process group torn down, bounded in time.

``run_ranks(fn, world_size, *args, timeout=...)`` calls ``fn(rank, world_size, *args)`` in each
rank with torchrun's environment set (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1,
MASTER_PORT) and returns the ranks' return values in rank order. ``fn`` must be a module-level
function (spawn imports it by name). ``init_group=True`` also joins a gloo group first (for tests
of raw collectives); otherwise the strategy under test joins it from the environment. A rank
that raises, dies or outlives ``timeout`` fails the call with its rank and traceback; every rank
still alive then is killed.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import traceback
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun_env(rank: int, world_size: int, port: int) -> dict[str, str]:
    return {
        "RANK": str(rank),
        "WORLD_SIZE": str(world_size),
        "LOCAL_RANK": str(rank),
        "LOCAL_WORLD_SIZE": str(world_size),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }


def _rank_main(fn, rank, world_size, port, init_group, args, results, timeout) -> None:
    os.environ.update(torchrun_env(rank, world_size, port))
    import faulthandler

    # a rank that hangs prints where, and exits, before the parent gives up on it
    faulthandler.dump_traceback_later(max(timeout - 10.0, 1.0), exit=True)
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    try:
        if init_group:
            dist.init_process_group("gloo", rank=rank, world_size=world_size)
        results.put((rank, "ok", _by_value(fn(rank, world_size, *args), to_numpy=True)))
    except BaseException:
        results.put((rank, "error", traceback.format_exc()))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def run_ranks(
    fn, world_size: int = 2, *args: Any, timeout: float = 120.0, init_group: bool = False
) -> list[Any]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    port = free_port()
    processes = [
        context.Process(
            target=_rank_main,
            args=(fn, rank, world_size, port, init_group, args, results, timeout),
            daemon=True,
        )
        for rank in range(world_size)
    ]
    for process in processes:
        process.start()
    outcome: dict[int, tuple[str, Any]] = {}
    try:
        import queue
        import time

        deadline = time.monotonic() + timeout
        while len(outcome) < world_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"ranks {sorted(set(range(world_size)) - set(outcome))} did not finish "
                    f"within {timeout:.0f} s"
                )
            try:
                rank, status, value = results.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                dead = [
                    r
                    for r, p in enumerate(processes)
                    if r not in outcome and p.exitcode is not None
                ]
                if dead:
                    # a rank may have exited right after putting its result: drain once more
                    try:
                        rank, status, value = results.get(timeout=2.0)
                    except queue.Empty:
                        codes = {r: processes[r].exitcode for r in dead}
                        raise RuntimeError(
                            f"rank(s) died without a result: exit codes {codes}"
                        ) from None
                else:
                    continue
            outcome[rank] = (status, value)
            if status == "error":
                raise RuntimeError(f"rank {rank} failed:\n{value}")
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
    return [_by_value(outcome[rank][1], to_numpy=False) for rank in range(world_size)]


def _by_value(value: Any, *, to_numpy: bool) -> Any:
    """Tensors travel as NumPy arrays: torch's queue pickling shares memory through file
    descriptors that vanish with the rank's process."""
    import numpy as np
    import torch

    if to_numpy and isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if not to_numpy and isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if isinstance(value, list | tuple):
        return type(value)(_by_value(v, to_numpy=to_numpy) for v in value)
    if isinstance(value, dict):
        return {k: _by_value(v, to_numpy=to_numpy) for k, v in value.items()}
    return value
