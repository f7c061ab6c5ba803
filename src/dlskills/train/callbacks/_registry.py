"""The callback registry: each callback file registers its class (by short name, with a catalog id
where a paper defines it), so configs and the catalog can name callbacks. Discovery covers all of
dlskills.train: technique callbacks (e.g. Mixup in train/techniques) live beside their technique."""

from dlskills._registry import Registry

CALLBACKS = Registry("callback", discover="dlskills.train")
register_callback = CALLBACKS.register
