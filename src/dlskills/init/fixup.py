"""Fixup by name (1901.09321): ``apply(model, "fixup")`` re-initialises every FixupBasicBlock
with L = their number and zeroes the classifier; the rule is in ``dlskills.nn.fixup``."""

from dlskills.init._registry import register_initializer
from dlskills.nn.fixup import fixup_initialize

register_initializer(
    "fixup", catalog_id="1901.09321", variance="He · L^(−1/(2m−2)); last layers 0"
)(fixup_initialize)
