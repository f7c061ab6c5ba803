"""``dlskills train``: train a model and write a run folder (config, metrics, checkpoints, curves,
report). With no options: the small CNN on digits with the measured default recipe."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "train a model (default: the small CNN on digits) and write runs/<timestamp>/"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # every default is None: "not given", so a --config file's value is kept
    what = parser.add_argument_group("what to train")
    what.add_argument("--config", metavar="FILE", help="TOML or YAML file of config keys")
    what.add_argument("--model", help="model name (cnn, mlp, resnet, ...)")
    what.add_argument(
        "--model-arg",
        action="append",
        metavar="KEY=VALUE",
        dest="model_arg",
        help="extra model keyword (repeatable), e.g. --model-arg width=32",
    )
    what.add_argument("--activation", help="activation by name (model keyword)")
    what.add_argument("--norm", help="normalisation by name (model keyword)")
    what.add_argument("--dropout", type=float, help="dropout probability (model keyword)")
    what.add_argument("--init", help="initializer by name (dlskills.init)")
    what.add_argument("--dataset", help="dataset name (default digits)")
    what.add_argument("--data-dir", help="folder holding the dataset files, when it needs one")

    how = parser.add_argument_group("how to train")
    how.add_argument("--optimizer", help="optimizer name: any torch.optim class or zoo optimizer")
    how.add_argument(
        "--lr",
        type=float,
        help="learning rate (default: 3e-3 with adamw, else the optimizer's own default)",
    )
    how.add_argument("--weight-decay", type=float, help="weight decay")
    how.add_argument("--momentum", type=float, help="momentum (optimizers that take one)")
    how.add_argument(
        "--opt",
        action="append",
        metavar="KEY=VALUE",
        help="extra optimizer keyword (repeatable), e.g. --opt betas=0.9,0.99",
    )
    how.add_argument("--schedule", help="LR schedule: constant, cosine, linear, step")
    how.add_argument(
        "--warmup-steps",
        type=int,
        help="linear LR warm-up steps (default: min(20, a tenth of the run's steps))",
    )
    how.add_argument(
        "--milestones",
        type=_epochs_list,
        metavar="E1,E2,...",
        help="epochs at which the step schedule multiplies the LR by 0.1 (default: half and "
        "three quarters of the run)",
    )
    how.add_argument("--epochs", type=int, help="epochs to train")
    how.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    how.add_argument("--batch-size", type=int, help="training batch size")
    how.add_argument("--seed", type=int, help="random seed (data split, init, order, dropout)")
    how.add_argument(
        "--data-seed",
        type=int,
        help="seed of the data split alone (default: --seed), to vary the rest on one split",
    )
    how.add_argument(
        "--clip-grad-norm", type=float, metavar="MAX", help="clip the global gradient norm to MAX"
    )
    how.add_argument(
        "--label-smoothing",
        type=float,
        metavar="EPS",
        help="train on (1 − EPS)·onehot + EPS/K targets (catalog 1902.04103; 0 turns it off)",
    )
    how.add_argument(
        "--ema-decay",
        type=float,
        metavar="D",
        help="validate, checkpoint and test the exponential moving average of the weights "
        "(catalog polyak-juditsky-1992; 0 turns it off)",
    )
    how.add_argument(
        "--nan-policy",
        choices=("stop", "rollback", "off"),
        help="on a NaN/Inf loss or gradient: stop (default), roll back to the last "
        "checkpoint with a lower LR, or do nothing",
    )
    how.add_argument(
        "--early-stopping",
        type=int,
        metavar="PATIENCE",
        help="stop after PATIENCE epochs without a better validation loss",
    )
    how.add_argument("--device", help="torch device (default cpu)")
    how.add_argument(
        "--threads",
        type=int,
        help="torch intra-op threads (default 1: fastest for these small models, and "
        "reproducible across machines)",
    )
    how.add_argument(
        "--accumulate",
        type=int,
        metavar="K",
        help="sum the gradients of K batches before each optimizer step (= a K-times larger batch)",
    )
    how.add_argument(
        "--precision",
        choices=("32", "bf16"),
        help="32 (default) or bf16 autocast for forward and loss (CPU and GPU)",
    )
    how.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="torch.compile the model (catalog 2002.03794)",
    )

    scale = parser.add_argument_group("several processes (torch.distributed; docs/distributed.md)")
    scale.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="start N local worker processes through torch's elastic launcher (default 1); "
        "under torchrun leave it out",
    )
    scale.add_argument(
        "--strategy",
        help="ddp (default with N > 1), local-sgd, easgd or downpour",
    )
    scale.add_argument(
        "--sync-every",
        type=int,
        metavar="H",
        help="communication period: local-sgd averages every H steps, easgd's tau, downpour's "
        "n_fetch = n_push",
    )
    scale.add_argument(
        "--strategy-arg",
        action="append",
        metavar="KEY=VALUE",
        dest="strategy_arg",
        help="extra strategy keyword (repeatable), e.g. --strategy-arg warmup_steps=100",
    )
    scale.add_argument(
        "--max-restarts",
        type=int,
        metavar="K",
        help="restart the worker group from the last checkpoint up to K times when a worker "
        "dies (default 0)",
    )
    scale.add_argument(
        "--port",
        type=int,
        metavar="P",
        help="rendezvous port on 127.0.0.1 for --nproc (default: a free one)",
    )

    out = parser.add_argument_group("output")
    out.add_argument("--out", metavar="DIR", help="run folder (default runs/<timestamp>)")
    out.add_argument("--name", help="run folder name under runs/")
    out.add_argument(
        "--resume",
        metavar="RUN",
        help="continue the run folder RUN (or a checkpoint in it) exactly",
    )
    out.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="STEPS",
        help="also save the last checkpoint every STEPS optimizer steps",
    )
    out.add_argument(
        "--no-progress",
        action="store_false",
        dest="progress",
        default=None,
        help="no progress bar (it is also off when stdout is not a terminal)",
    )
    out.add_argument(
        "--tensorboard",
        action="store_true",
        default=None,
        help="also log to TensorBoard (<run>/tensorboard)",
    )


def _epochs_list(text: str) -> list[float]:
    """``--milestones 10,15`` (epochs; whole numbers stay ints)."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected epochs like 10,15, got {text!r}") from None
    return [int(v) if v.is_integer() else v for v in values]


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    from dlskills.train.config import KEYS, parse_assignment

    given = {key: getattr(args, key) for key in KEYS if getattr(args, key, None) is not None}
    for option, key, target in (
        ("--opt", "opt", "opt"),
        ("--model-arg", "model_arg", "model_args"),
        ("--strategy-arg", "strategy_arg", "strategy_args"),
    ):
        pairs = getattr(args, key) or []
        if pairs:
            given[target] = dict(parse_assignment(text, option) for text in pairs)
    return given


def run(args: argparse.Namespace) -> int:
    import os

    from dlskills.train.config import make_config, read_config_file
    from dlskills.train.runs import resume_run, train_run

    overrides = _overrides(args)
    distributed = "WORLD_SIZE" in os.environ  # a rank started by torchrun
    if args.resume is not None:
        if args.config is not None:
            raise ValueError("--resume takes the run's own config; drop --config")
        if overrides.get("nproc", 1) > 1 or distributed:
            raise ValueError(
                "--resume runs in one process; a distributed run resumes by itself when its "
                "group restarts (--max-restarts), or under torchrun with the same --out"
            )
        summary = resume_run(args.resume, overrides)
    else:
        file_config = read_config_file(args.config) if args.config else {}
        for key in ("opt", "model_args", "strategy_args"):  # tables merge key by key
            if key in overrides and key in file_config:
                overrides[key] = {**file_config[key], **overrides[key]}
        config = make_config(file_config, overrides)
        if config.nproc > 1:
            from dlskills.distributed.launch import launch

            return launch(config, port=args.port)
        if args.port is not None:
            raise ValueError("--port is the rendezvous port of --nproc N (N > 1)")
        if distributed or config.strategy is not None:
            from dlskills.distributed.launch import run_rank

            summary = run_rank(config)
        else:
            summary = train_run(config)
    if "rank" not in summary:  # rank 0 prints the run
        print_summary(summary)
    return exit_code(summary["stop_reason"])


#: the shell's convention for a process stopped by SIGINT (128 + 2)
INTERRUPTED_EXIT_CODE = 130


def exit_code(stop_reason: str | None) -> int:
    if stop_reason == "interrupted":
        return INTERRUPTED_EXIT_CODE
    return 1 if stop_reason in ("non_finite", "error") else 0


def print_summary(summary: dict[str, Any]) -> None:
    accuracy = summary.get("test_accuracy")
    if accuracy is not None:
        shown = f"test accuracy {100 * accuracy:.2f} %"
    else:
        shown = f"test loss {summary['test_loss']:.4g}"
    print(
        f"run {summary['run_dir']}: {shown}, {summary['epochs']} epochs / "
        f"{summary['steps']} steps in {summary['train_seconds']:.1f} s, "
        f"{summary['parameters']:,} parameters, stop reason {summary['stop_reason']}"
        + (
            f", {summary['world_size']} ranks ({summary['strategy']})"
            if summary.get("world_size", 1) > 1
            else ""
        )
    )
    if summary.get("stop_message"):
        print(f"  {summary['stop_message']}")
    print(f"  report: {summary['run_dir']}/report.md")
    if summary["stop_reason"] == "interrupted":
        import shlex

        print(f"  continue with: dlskills train --resume {shlex.quote(summary['run_dir'])}")
