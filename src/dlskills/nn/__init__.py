"""Layers (DESIGN.md ``nn/``): convolution family (``dlskills.nn.conv``), the activation zoo
(``dlskills.nn.activations``, catalog 1905.08618), normalisation by name
(``dlskills.nn.normalization``, catalog norm-layers), the SELU kit (``dlskills.nn.selu``) and
Fixup blocks (``dlskills.nn.fixup``). Import the submodules directly.
"""
