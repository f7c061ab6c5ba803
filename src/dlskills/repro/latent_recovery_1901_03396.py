"""Reproduction of catalog 1901.03396: Webster, Rabin, Simon & Jurie, "Detecting Overfitting of
Deep Generative Networks via Latent Recovery" (CVPR 2019).

Claim (Sec. 4, Fig. 3–4): recovering by optimisation the latent code that best reconstructs an
image separates training from held-out images when a generator memorises (a small training set):
training images are recovered with far smaller error; a generator trained on enough data shows no
such gap.

Measured: ``dlskills.diagnose.latent_recovery.memorization_check``: a VAE decoder (latent 8)
trained on 50 digits images (memorising) and on the whole training split (1,257 images, the
control); the AUC of separating training from held-out images by recovery error, and the median
errors. Deterministic for a seed; several seeds give mean ± std.

Deviation: small VAEs on 8×8 digits instead of GANs on CelebA/LSUN.
"""

from __future__ import annotations

from collections.abc import Iterable

from dlskills.diagnose.latent_recovery import memorization_check, plot_latent_recovery
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1901.03396"
SIZES = (50, 1257)

CLAIM = Claim(
    text="A generator that memorises recovers its training images with much smaller error than "
    "held-out images; with enough training data the two error distributions coincide.",
    value="train/held-out recovery errors separate for small training sets, not for large ones",
    source="Sec. 4, Fig. 3–4",
)


@register(CATALOG_ID)
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Latent-recovery AUC of a memorising and a well-trained VAE decoder (see module doc)."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0,), "full": (0, 1, 2)})
    steps = run.pick(fast=1200, full=2400)
    per_seed = [memorization_check(SIZES, steps=steps, seed=seed) for seed in run.seeds]
    run.figure("recovery.png", lambda path: plot_latent_recovery(per_seed[0], path))

    def row(name: str, unit: str, value) -> Measured:
        return Measured.over_seeds(name, unit, [value(r) for r in per_seed], run.seeds)

    small, large = SIZES
    return run.result(
        claim=CLAIM,
        measured=[
            row(f"AUC, {small} images", "", lambda r: r[small].auc),
            row(f"AUC, {large} images", "", lambda r: r[large].auc),
            row(
                f"median error ratio held-out/train, {small} images",
                "",
                lambda r: r[small].median_heldout / r[small].median_train,
            ),
        ],
        thresholds=[
            Threshold(f"AUC, {small} images", ">", 0.9, "memorised: near-perfect separation"),
            Threshold(f"AUC, {large} images", "<", 0.7, "control: near chance (0.5)"),
            Threshold(
                f"median error ratio held-out/train, {small} images",
                ">",
                4.0,
                "'much smaller' training error (documented run: 12×)",
            ),
        ],
        config={"train_sizes": list(SIZES), "steps": steps, "latent_dim": 8, "evaluated": 50},
    )
