"""Trainer callbacks, one concern per file."""

from dlskills.train.callbacks._registry import CALLBACKS, register_callback
from dlskills.train.callbacks.base import (
    Callback,
    CancelBatch,
    CancelEpoch,
    CancelFit,
    Rewound,
    StopReason,
    overrides,
)
from dlskills.train.callbacks.csv_logger import CSVLogger
from dlskills.train.callbacks.early_stopping import EarlyStopping
from dlskills.train.callbacks.grad_clip import GradClip
from dlskills.train.callbacks.lr_monitor import LRMonitor
from dlskills.train.callbacks.model_checkpoint import ModelCheckpoint
from dlskills.train.callbacks.nan_guard import NaNGuard
from dlskills.train.callbacks.progress import ProgressBar
from dlskills.train.callbacks.weight_averaging import WeightAveraging

__all__ = [
    "CALLBACKS",
    "CSVLogger",
    "Callback",
    "CancelBatch",
    "CancelEpoch",
    "CancelFit",
    "EarlyStopping",
    "GradClip",
    "LRMonitor",
    "ModelCheckpoint",
    "NaNGuard",
    "ProgressBar",
    "Rewound",
    "StopReason",
    "WeightAveraging",
    "overrides",
    "register_callback",
]
