"""The registry of training techniques that are neither callbacks nor optimizers (e.g. compiling
the model); each registers itself in its own module of dlskills.train."""

from dlskills._registry import Registry

TECHNIQUES = Registry("training technique", discover="dlskills.train")
register_technique = TECHNIQUES.register
