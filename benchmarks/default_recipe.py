"""The default recipe (`dlskills train` with no options) over seeds 0–4, beside scikit-learn's SVC.

Each seed is one full `dlskills train` run (its own stratified split of the bundled digits, its
own init and data order; the test split is 270 images, so one error is 0.37 %). Prints a line per
seed (test accuracy, test errors, training wall and CPU seconds), then the mean ± std (sample
std over the seeds), and the same for ``sklearn.svm.SVC()`` (default RBF kernel) fitted on the same
standardised training images of each seed, and the ratios. Training seconds are the Trainer's
``train_seconds`` (the fit with its validation and checkpoints, without loading data or writing
the report) and the process CPU time of the same span; on a shared machine wall time grows with
the load (printed), CPU time much less.

    python benchmarks/default_recipe.py [--seeds 0,1,2,3,4] [--set KEY=VALUE ...] [--members K]
        [--errors-png P]

``--members K`` trains K runs on each seed's split (``data_seed`` = S, ``seed`` = S + 1000·k; run
0 is the default run) and scores the average of their log-probabilities (the normalised geometric
mean, ``dlskills.train.techniques.ensemble.combine``); its training time is the K runs'.
``--errors-png P`` draws every test image the recipe gets wrong (all seeds), titled with its
seed, index, label → prediction and the recipe's probability for the prediction, and marks the
ones SVC misclassifies too.

``--set`` overrides a config key for an ablation, e.g. ``--set ema_decay=0`` (no averaging),
``--set label_smoothing=0``, ``--set 'model_args={"convs_per_stage": 2}'`` (a deeper model).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any, NamedTuple

import numpy as np
import torch


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {spread:.3f}"


#: run k of an ensemble on the split of seed S trains with seed S + MEMBER_SEED_STRIDE·k
MEMBER_SEED_STRIDE = 1000


class Mistake(NamedTuple):
    seed: int
    index: int
    label: int
    prediction: int
    probability: float  # the recipe's probability for its prediction
    svc_prediction: int
    image: np.ndarray


def svc_baseline(seed: int) -> tuple[float, int, float, int, np.ndarray]:
    """(test accuracy, test errors, fit seconds, test size, test predictions) of SVC() on the
    run's own split of ``seed``."""
    from sklearn.svm import SVC

    from dlskills import data

    splits = data.load("digits", seed=seed)
    x_train, y_train = (t.numpy() for t in splits.train.tensors)
    x_test, y_test = (t.numpy() for t in splits.test.tensors)
    start = time.perf_counter()
    svc = SVC().fit(x_train.reshape(len(x_train), -1), y_train)
    seconds = time.perf_counter() - start
    predictions = svc.predict(x_test.reshape(len(x_test), -1))
    errors = int(np.sum(predictions != y_test))
    return 1 - errors / len(y_test), errors, seconds, len(y_test), predictions


def test_log_probabilities(run_dir: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(log-probabilities, labels, images) of the run's best checkpoint on its test split."""
    from dlskills.train.runs import load_run

    run = load_run(run_dir)
    images, labels = run.splits.test.tensors
    with torch.no_grad():
        return run.model(images).log_softmax(-1), labels, images


def mistakes(
    log_probabilities: torch.Tensor,
    labels: torch.Tensor,
    images: torch.Tensor,
    seed: int,
    svc_predictions: np.ndarray,
) -> list[Mistake]:
    """The test images whose most probable class is not their label."""
    confidence, predictions = log_probabilities.exp().max(-1)
    wrong = (predictions != labels).nonzero().flatten().tolist()
    return [
        Mistake(
            seed,
            i,
            int(labels[i]),
            int(predictions[i]),
            float(confidence[i]),
            int(svc_predictions[i]),
            images[i, 0].numpy(),
        )
        for i in wrong
    ]


def plot_mistakes(found: list[Mistake], path: str, title: str) -> None:
    """One panel per misclassified test image; a red frame where SVC is wrong as well."""
    from dlskills import _plot

    columns = min(6, max(len(found), 1))
    rows = -(-max(len(found), 1) // columns)
    fig, axes = _plot.new_figure(
        rows,
        columns,
        size=(1.8, 2.6),
        title=f"{title}\nlabel → recipe's prediction (its probability), standardised pixels; "
        "red frame: SVC (RBF) is wrong too",
    )
    for ax in np.atleast_1d(axes).flat:
        ax.set_axis_off()
    for ax, mistake in zip(np.atleast_1d(axes).flat, found):
        ax.imshow(mistake.image, cmap="gray_r", interpolation="nearest")
        ax.set_title(
            f"seed {mistake.seed} #{mistake.index}\n{mistake.label} → {mistake.prediction} "
            f"(p {mistake.probability:.2f})",
            fontsize=8,
        )
        if mistake.svc_prediction != mistake.label:
            ax.set_axis_on()
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor("tab:red")
                spine.set_linewidth(2)
    if not found:
        np.atleast_1d(axes).flat[0].text(0.5, 0.5, "no errors", ha="center", va="center")
    _plot.save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key of the default recipe (repeatable), for ablations",
    )
    parser.add_argument(
        "--members",
        type=int,
        default=1,
        help="train K runs per seed on its split (seeds S + 1000·k) and average their "
        "log-probabilities (an ensemble; the training time is the K runs')",
    )
    parser.add_argument(
        "--errors-png", metavar="P", help="draw the misclassified test images of all seeds into P"
    )
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.members < 1:
        parser.error(f"--members must be ≥ 1, got {args.members}")

    from dlskills.train.callbacks import Callback
    from dlskills.train.config import make_config, parse_assignment
    from dlskills.train.runs import train_run
    from dlskills.train.techniques.ensemble import combine

    overrides: dict[str, Any] = dict(parse_assignment(text, "--set") for text in args.set)

    class CPUTime(Callback):
        """Process CPU seconds from the start to the end of the fit."""

        def on_fit_start(self, trainer: Any) -> None:
            self.start = time.process_time()

        def on_fit_end(self, trainer: Any) -> None:
            self.seconds = time.process_time() - self.start

    ensemble = f", ensembles of {args.members} runs" if args.members > 1 else ""
    print(
        f"default recipe{' with ' + ', '.join(args.set) if args.set else ''}{ensemble}; "
        f"seeds {seeds}"
    )
    rows = []
    found: list[Mistake] = []
    for index, seed in enumerate(seeds, start=1):
        members = []  # (summary, CPU seconds, test log-probabilities) of each run on the split
        for member in range(args.members):
            with tempfile.TemporaryDirectory() as folder:
                config = make_config(
                    overrides,
                    {
                        "seed": seed + MEMBER_SEED_STRIDE * member,
                        "data_seed": seed,
                        "out": folder,
                        "progress": False,
                    },
                )
                cpu = CPUTime()
                summary = train_run(config, callbacks=[cpu])
                log_probabilities, labels, images = test_log_probabilities(folder)
            members.append((summary, cpu.seconds, log_probabilities))
        combined = combine([m[2] for m in members])
        svc_accuracy, svc_errors, svc_seconds, test_size, svc_predictions = svc_baseline(seed)
        if args.errors_png:
            found += mistakes(combined, labels, images, seed, svc_predictions)
        errors = int((combined.argmax(-1) != labels).sum())
        accuracy = 1 - errors / test_size
        train_seconds = sum(m[0]["train_seconds"] for m in members)
        cpu_seconds = sum(m[1] for m in members)
        rows.append(
            (
                accuracy,
                errors,
                train_seconds,
                cpu_seconds,
                svc_accuracy,
                svc_errors,
                svc_seconds,
                test_size,
            )
        )
        singles = [round((1 - m[0]["test_accuracy"]) * test_size) for m in members]
        alone = ", ".join(map(str, singles))
        of_members = f"; the {args.members} runs alone: {alone}" if args.members > 1 else ""
        print(
            f"[{index}/{len(seeds)}] seed {seed}: test {100 * accuracy:.2f} % ({errors} errors"
            f"{of_members}), train {train_seconds:.2f} s wall / {cpu_seconds:.2f} s CPU "
            f"({torch.get_num_threads()} thread(s), load {os.getloadavg()[0]:.1f}); "
            f"SVC {100 * svc_accuracy:.2f} % ({svc_errors} errors) in {svc_seconds:.3f} s",
            flush=True,
        )
    columns = list(zip(*rows))
    accuracy = [100 * a for a in columns[0]]
    svc = [100 * a for a in columns[4]]
    print(
        f"\ndefault recipe: test accuracy {mean_std(accuracy)} % over {len(seeds)} seeds "
        f"({sum(columns[1])} errors in {sum(columns[7])}); "
        f"train {mean_std(list(columns[2]))} s wall, {mean_std(list(columns[3]))} s CPU"
    )
    print(
        f"SVC (RBF):      test accuracy {mean_std(svc)} % ({sum(columns[5])} errors); "
        f"fit {mean_std(list(columns[6]))} s"
    )
    ratio_errors = sum(columns[1]) / max(sum(columns[5]), 1)
    ratio_time = statistics.fmean(columns[2]) / statistics.fmean(columns[6])
    print(f"ratio recipe/SVC: errors {ratio_errors:.2f}×, training time {ratio_time:.0f}×")
    if args.errors_png:
        both = sum(m.svc_prediction != m.label for m in found)
        plot_mistakes(
            found,
            args.errors_png,
            f"the recipe's {len(found)} test errors over seeds {args.seeds} "
            f"({both} also wrong for SVC)",
        )
        print(f"wrote {args.errors_png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
