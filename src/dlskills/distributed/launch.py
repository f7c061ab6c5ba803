"""``dlskills train --nproc N``: N local workers through torch's elastic launcher, and what each
rank runs (also under ``torchrun --nproc-per-node N -m dlskills train ...``).

The launching process validates the whole config first (names, values, the strategy's options,
the batch split) and writes nothing; it then hands the config to
``torch.distributed.launcher.api.elastic_launch`` (the engine behind torchrun: c10d rendezvous
on 127.0.0.1 at a free port, worker monitoring, restarts). Each worker runs this module with the
config as JSON, joins the group from torchrun's environment and calls ``train_run``; rank 0
names and writes the run folder.

Elastic restart: with ``--max-restarts K``, a worker that dies (e.g. SIGKILL) makes the agent
stop the others and start the group again, up to K times. A restarted group
(TORCHELASTIC_RESTART_COUNT > 0) resumes from the run folder's ``last`` checkpoint, which rank 0
wrote atomically with every rank's random and sampler state: for ddp and local-sgd the finished
run's weights are bit-identical to an uninterrupted run (tested). A failure after the last
restart is reported with the rank and its exit code; the run folder keeps its last good
checkpoint.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from dlskills.distributed._base import (
    STRATEGIES,
    DistributedStrategy,
    environment_ranks,
    local_port,
)
from dlskills.train.checkpoint import checkpoint_paths
from dlskills.train.config import TrainConfig, make_config
from dlskills.train.runs import check_names, new_run_dir, resume_run, train_run


def strategy_for(config: TrainConfig) -> DistributedStrategy:
    """The strategy ``config`` names (``ddp`` when it names none), with ``sync_every`` mapped
    onto the strategy's period and ``strategy_args`` passed as keywords."""
    import inspect

    name = config.strategy or "ddp"
    try:
        cls = STRATEGIES.get(name)
    except ValueError as exc:
        raise ValueError(f"--strategy: {exc}") from exc
    options = dict(config.strategy_args)
    if config.sync_every is not None:
        accepted = inspect.signature(cls).parameters
        periods = [k for k in ("sync_every", "tau", "n_fetch", "n_push") if k in accepted]
        if not periods:
            raise ValueError(f"--sync-every: strategy {name!r} has no communication period")
        for key in periods:
            options.setdefault(key, config.sync_every)
    try:
        return cls(**options)
    except TypeError as exc:
        raise ValueError(f"--strategy-arg: strategy {name!r}: {exc}") from exc
    except ValueError as exc:
        raise ValueError(f"strategy {name!r}: {exc}") from exc


def run_rank(config: TrainConfig) -> dict[str, Any]:
    """What one rank runs: a fresh run, or the resume of a restarted group."""
    if config.strategy is None:
        config = make_config(config.to_dict(), {"strategy": "ddp"})
    strategy = strategy_for(config)
    restarted = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0
    if restarted:
        if config.out is None:
            raise ValueError("a restarted group needs the run folder: give --out DIR")
        if checkpoint_paths(Path(config.out) / "checkpoints" / "last")[0].is_file():
            return resume_run(config.out, strategy=strategy)
    return train_run(config, strategy=strategy)


def validate_launch(config: TrainConfig) -> None:
    """Everything that can be checked before a worker starts, as one-line ValueErrors."""
    if "RANK" in os.environ:
        raise ValueError(
            "--nproc starts the workers itself; under torchrun leave it out (torchrun's "
            "--nproc-per-node sets the ranks)"
        )
    check_names(config)
    strategy_cls = type(strategy_for(config))
    strategy_cls.check_world_size(config.nproc)
    sharing = strategy_cls.data_ranks(config.nproc)
    if config.batch_size % sharing:
        raise ValueError(
            f"--batch-size {config.batch_size} is not divisible by the {sharing} ranks that "
            "share each batch (--nproc)"
        )


def launch(config: TrainConfig, port: int | None = None) -> int:
    """Run ``config`` on ``config.nproc`` local workers, the rendezvous on 127.0.0.1 at ``port``
    (a free one by default); the exit code for the CLI."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    validate_launch(config)
    endpoint = f"127.0.0.1:{local_port(port)}"
    run_dir = Path(config.out) if config.out is not None else new_run_dir(config)
    worker_config = make_config(config.to_dict(), {"out": str(run_dir)})
    if worker_config.strategy is None:
        worker_config = make_config(worker_config.to_dict(), {"strategy": "ddp"})
    launch_config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=config.nproc,
        run_id=f"dlskills-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d",
        rdzv_endpoint=endpoint,
        max_restarts=config.max_restarts,
        monitor_interval=0.2,
        local_addr="127.0.0.1",
    )
    payload = json.dumps(worker_config.to_dict())
    try:
        elastic_launch(launch_config, entrypoint=sys.executable)(
            "-m", "dlskills.distributed.launch", payload
        )
    except ChildFailedError as exc:
        lines = []
        for rank, failure in sorted(exc.failures.items()):
            code = failure.exitcode
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            lines.append(f"rank {rank} failed ({how})")
        kept = checkpoint_paths(run_dir / "checkpoints" / "last")[0]
        where = f"; the run folder keeps its last good checkpoint {kept}" if kept.is_file() else ""
        print(
            f"dlskills train: error: {', '.join(lines)} after {config.max_restarts} "
            f"restart(s){where}",
            file=sys.stderr,
        )
        return 1
    return 0


def _worker_main(argv: list[str]) -> int:
    from dlskills._cli.train import print_summary

    config = make_config(json.loads(argv[0]))
    try:
        summary = run_rank(config)
    except (ValueError, FileNotFoundError, ConnectionError) as exc:
        rank = environment_ranks()[0]
        print(f"dlskills train (rank {rank}): error: {exc}", file=sys.stderr)
        return 2
    if "rank" not in summary:  # rank 0's summary
        print_summary(summary)
    return 1 if summary["stop_reason"] in ("non_finite", "error") else 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
