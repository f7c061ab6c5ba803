"""Datasets as ready train/validation/test splits (DESIGN.md ``data/``).

``load(name, *, seed=0, data_dir=None, **kw)`` returns a :class:`DataSplits`;
``splits.loaders(batch_size, seed=...)`` gives plain DataLoaders. Registered datasets:

=========  ============  =====================================================================
name       source        what
=========  ============  =====================================================================
digits     bundled       scikit-learn's 8×8 digits (1797 images, 10 classes), 70/15/15
spirals    synthetic     two interleaved noisy spirals in 2-D (binary classification)
blobs      synthetic     isotropic Gaussian blobs (n_classes, dim)
teacher    synthetic     regression on the outputs of a random teacher MLP (+ noise)
adding     synthetic     long-term RNN task: sum of the two marked values (1211.5063)
temporal_  synthetic     long-term RNN task: order of two relevant symbols among distractors
order                    (1211.5063)
hierarch-  synthetic     regression on H = F + α·G(F): quadratic features along k hidden
ical                     directions and their products (1905.10337's concept class)
cbf        synthetic     Cylinder–Bell–Funnel time series, 3 classes (1407.4364)
mnist      local         MNIST IDX files from ``data_dir`` (raw or .gz)
cifar10    local         CIFAR-10 python batches from ``data_dir`` (restricted unpickler)
=========  ============  =====================================================================

Every split is a function of ``seed`` only; inputs are standardised with training statistics.
Nothing is downloaded: local datasets read ``data_dir`` (or ``$DLSKILLS_DATA_DIR``, or ./data).
A new dataset registers itself by living in its own module of this package
(``@register_dataset(name, task=..., source=...)``).
"""

from __future__ import annotations

import os
from typing import Any

from dlskills.data._registry import DATASETS, DataSplits, check_seed, register_dataset


def load(
    name: str, *, seed: int = 0, data_dir: str | os.PathLike[str] | None = None, **kwargs: Any
) -> DataSplits:
    """The dataset registered as ``name``, split by ``seed`` (``kwargs`` go to its loader).
    ``data_dir`` is read by local datasets (mnist, cifar10) and ignored by the others."""
    entry = DATASETS.entry(name)
    check_seed(seed)
    if entry.meta.get("source") == "local":
        kwargs["data_dir"] = data_dir
    return entry.obj(seed=seed, **kwargs)


__all__ = ["DATASETS", "DataSplits", "load", "register_dataset"]
