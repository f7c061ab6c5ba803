"""Reproduction of catalog 1905.10157: Yu, Chen & Lu (2019), learning dynamics of two-layer
nonlinear convolutional networks.

Claim (Sec. 3–4): when a few key patterns decide the label, SGD on a two-layer ReLU CNN drives
some of its filters onto the key patterns, and those filters come to dominate the others.

Measured: ``dlskills.diagnose.filter_recovery.teacher_student``: a teacher two-layer CNN with
three stroke filters labels N(0, 1) images; a student with six filters is trained by SGD. Per
seed: the worst best-match cosine of a teacher filter with a student filter, the worst of a
student filter with a teacher (every student filter has gone to a key pattern), and the final
loss. Control arm: a student with two filters (fewer than the teacher's three) cannot recover
them all.

Deviation: the teacher stands in for the paper's key patterns (regression on the teacher's
output instead of classification), so the recovered direction is measured exactly.
"""

from __future__ import annotations

from collections.abc import Iterable

from dlskills.diagnose.filter_recovery import plot_filter_recovery, teacher_student
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1905.10157"

CLAIM = Claim(
    text="With labels decided by key patterns, SGD on a two-layer nonlinear CNN makes some "
    "filters learn the key patterns; these filters come to dominate.",
    value="learned filters align with the key patterns",
    source="Sec. 3–4 (Theorems 4.1–4.2)",
)


@register(CATALOG_ID)
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Teacher–student filter recovery with a too-small student as control (see module doc)."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0, 1, 2), "full": range(5)})
    steps = run.pick(fast=2000, full=5000)
    students = [teacher_student(seed=seed, steps=steps) for seed in run.seeds]
    controls = [
        teacher_student(seed=seed, student_filters=2, steps=steps // 2) for seed in run.seeds
    ]
    run.figure("filters.png", lambda path: plot_filter_recovery(students[0], path))

    def row(name: str, unit: str, results, value) -> Measured:
        return Measured.over_seeds(name, unit, [value(r) for r in results], run.seeds)

    return run.result(
        claim=CLAIM,
        measured=[
            row("worst teacher cosine", "", students, lambda r: r.best_cosine_per_teacher().min()),
            row("worst student cosine", "", students, lambda r: r.best_cosine_per_student().min()),
            row("final loss", "MSE", students, lambda r: r.losses[-1]),
            row(
                "worst teacher norm error",
                "",
                students,
                lambda r: float((r.norm_per_teacher() - 1).abs().max()),
            ),
            row(
                "worst teacher cosine, 2-filter control",
                "",
                controls,
                lambda r: r.best_cosine_per_teacher().min(),
            ),
        ],
        thresholds=[
            Threshold("worst teacher cosine", ">", 0.999, "every key pattern learned"),
            Threshold("worst student cosine", ">", 0.995, "every filter went to a key pattern"),
            Threshold("final loss", "<", 1e-5, "the student fits the teacher"),
            Threshold(
                "worst teacher norm error", "<", 0.01, "students on one pattern split its norm"
            ),
            Threshold(
                "worst teacher cosine, 2-filter control",
                "<",
                0.9,
                "control: two filters cannot cover three patterns",
            ),
        ],
        config={"teacher": "3 stroke filters 4×4", "student_filters": 6, "steps": steps},
    )
