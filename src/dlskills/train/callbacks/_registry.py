"""The callback registry: each callback file registers its class (by short name, with a catalog id
where a paper defines it), so configs and the catalog can name callbacks."""

from dlskills._registry import Registry

CALLBACKS = Registry("callback", discover="dlskills.train.callbacks")
register_callback = CALLBACKS.register
