"""dlskills: the deep-learning "basic skills" reading list made executable.

Sub-packages are imported on demand (``import dlskills.optim``) so that ``dlskills --help``
and ``import dlskills`` stay fast; nothing here imports torch.
"""

__version__ = "0.1.0"
