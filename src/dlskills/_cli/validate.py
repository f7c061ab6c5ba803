"""``dlskills validate --pmv``: rank model configurations by Perturbed Model Validation
(catalog 1905.10201) on a dataset; prints a table, writes the PMV plot (and optionally JSON).

Example::

    dlskills validate --pmv --models "mlp:width=4,mlp:width=64,mlp:width=1024" --dataset spirals

``--models`` is a comma-separated list of model names from ``dlskills.models``, each optionally
followed by ``:key=value`` options (``mlp:width=64:depth=1``; a tuple is written with commas,
``hidden=64,32``, as in ``dlskills train --opt``).
"""

from __future__ import annotations

import argparse
from typing import Any

HELP = "validate model choices: rank model configs by Perturbed Model Validation (--pmv)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pmv", action="store_true", help="Perturbed Model Validation (1905.10201)"
    )
    parser.add_argument(
        "--models",
        default="mlp:width=4,mlp:width=64,mlp:width=1024",
        help="comma-separated model specs name[:key=value...]",
    )
    parser.add_argument("--dataset", default="spirals", help="registered dataset name")
    parser.add_argument("--data-dir", default=None, help="folder of local datasets")
    parser.add_argument(
        "--train-samples",
        type=int,
        default=None,
        help="use only the first N training samples (PMV retrains once per noise rate)",
    )
    parser.add_argument(
        "--noise-rates",
        default="0,0.1,0.2,0.3,0.4,0.5",
        help="comma-separated label-noise rates",
    )
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per fit")
    parser.add_argument("--lr", type=float, default=1e-2, help="learning rate")
    parser.add_argument("--batch-size", type=int, default=None, help="default: full batch")
    parser.add_argument("--optimizer", default="adam", help="dlskills.optim name")
    parser.add_argument("--repeats", type=int, default=1, help="noise draws averaged per rate")
    parser.add_argument("--seed", type=int, default=0, help="seed of data split, noise and inits")
    parser.add_argument("--out", default="figures/pmv.png", help="PNG to write")
    parser.add_argument("--json", default=None, help="also write the results as JSON here")
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar or per-fit lines (stderr)"
    )


def parse_models(spec: str) -> list[tuple[str, str, dict[str, Any]]]:
    """``"mlp:width=4,cnn"`` -> ``[("mlp:width=4", "mlp", {"width": 4}), ("cnn", "cnn", {})]``."""
    from dlskills._cli._specs import parse_item, split_items

    models = []
    for item in split_items(spec):
        name, kwargs = parse_item(item, "--models")
        models.append((item, name, kwargs))
    if not models:
        raise ValueError("--models must name at least one model")
    labels = [label for label, _, _ in models]
    if len(set(labels)) != len(labels):
        raise ValueError(f"--models lists a configuration twice: {labels}")
    return models


def parse_rates(spec: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in spec.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"--noise-rates must be comma-separated numbers, got {spec!r}") from None


def run(args: argparse.Namespace) -> int:
    if not args.pmv:
        raise ValueError("choose a validation method: --pmv")
    models = parse_models(args.models)
    rates = parse_rates(args.noise_rates)

    from dlskills import data as datasets
    from dlskills._io import atomic_write_json
    from dlskills._progress import Progress
    from dlskills.diagnose.pmv import plot_pmv, rank_models
    from dlskills.models import MODELS, create

    for _, name, _ in models:
        MODELS.entry(name)  # unknown names fail here with a did-you-mean hint
    splits = datasets.load(args.dataset, seed=args.seed, data_dir=args.data_dir)
    if splits.task != "classification":
        raise ValueError(f"PMV needs a classification dataset; {args.dataset!r} is {splits.task}")
    inputs, labels = splits.train.tensors
    if args.train_samples is not None:
        if args.train_samples < 2:
            raise ValueError(f"--train-samples must be ≥ 2, got {args.train_samples}")
        inputs, labels = inputs[: args.train_samples], labels[: args.train_samples]

    def factory(name: str, kwargs: dict[str, Any]) -> Any:
        return lambda: create(
            name, input_shape=splits.input_shape, num_classes=splits.num_classes, **kwargs
        )

    factories = {label: factory(name, kwargs) for label, name, kwargs in models}
    progress = None if args.no_progress else Progress("validate --pmv", None, unit="fit")
    try:
        ranked = rank_models(
            factories,
            (inputs, labels),
            noise_rates=rates,
            steps=args.steps,
            lr=args.lr,
            batch_size=args.batch_size,
            optimizer=args.optimizer,
            num_classes=splits.num_classes,
            repeats=args.repeats,
            seed=args.seed,
            eval_data=splits.val,
            progress=progress,
        )
    finally:
        if progress is not None:
            progress.close()
    print(
        f"PMV on {args.dataset} ({len(labels)} training samples, {splits.num_classes} classes), "
        f"{args.steps} {args.optimizer} steps per fit, noise rates {', '.join(map(str, rates))}"
    )
    clean = rates.index(min(rates))  # the fit with the least noise gives the usual scores
    label_width = max(len(r.name) for r in ranked)
    header = (
        f"{'rank':>4}  {'model':<{label_width}}  {'relevance':>9}  {'train acc':>9}  "
        f"{'val acc':>7}  training accuracy on the perturbed labels, per rate"
    )
    print(header)
    for position, result in enumerate(ranked, start=1):
        curve = " ".join(f"{a:.3f}" for a in result.accuracies)
        print(
            f"{position:>4}  {result.name:<{label_width}}  {result.relevance:>9.3f}  "
            f"{result.accuracies[clean]:>9.3f}  {result.eval_accuracy:>7.3f}  {curve}"
        )
    by_train = max(ranked, key=lambda r: r.accuracies[clean]).name
    by_val = max(ranked, key=lambda r: r.eval_accuracy).name
    print(f"PMV picks {ranked[0].name}; train accuracy picks {by_train}; val accuracy {by_val}")
    print(f"wrote {plot_pmv(ranked, args.out)}")
    if args.json:
        print(f"wrote {atomic_write_json(args.json, [r.as_dict() for r in ranked])}")
    return 0
