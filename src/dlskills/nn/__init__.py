"""Layers (DESIGN.md ``nn/``): the convolution family (``dlskills.nn.conv``), the activation zoo
(``dlskills.nn.activations``, catalog 1905.08618), normalisation by name
(``dlskills.nn.normalization``, catalog norm-layers), the dropout family (``dlskills.nn.dropout``,
dropout-2014), the SELU kit (``dlskills.nn.selu``,
1706.02515), Fixup blocks (``dlskills.nn.fixup``, 1901.09321), the selective softmax
(``dlskills.nn.selective_softmax``, 1801.01687), memorized sparse backprop
(``dlskills.nn.sparse_backprop``, 1905.10194) and functional forms
(``dlskills.nn.functional``). ``LAYERS`` registers every technique layer by name and catalog id.
"""

from dlskills.nn import conv
from dlskills.nn._registry import LAYERS, register_layer
from dlskills.nn.activations import ACTIVATIONS, get_activation
from dlskills.nn.conv import (
    DecoupledConv2d,
    DeformConv2d,
    DepthwiseSeparableConv2d,
    DiCE,
    RandomShift2d,
    RandomShiftDownsample,
    VarGroupConv2d,
)
from dlskills.nn.dropout import DropConnectLinear, SpatialDropout, drop_connect, spatial_dropout
from dlskills.nn.fixup import FixupBasicBlock, ScalarBias, ScalarScale, fixup_param_groups
from dlskills.nn.normalization import NORMS, apply_weight_norm, make_norm
from dlskills.nn.selective_softmax import SelectiveSoftmax, selective_softmax_check
from dlskills.nn.selu import (
    SELU_ALPHA,
    SELU_LAMBDA,
    AlphaDropout,
    SelfNormalizingMLP,
    alpha_dropout,
    lecun_normal_,
)
from dlskills.nn.sparse_backprop import (
    SparseBackpropConv2d,
    SparseBackpropLinear,
    sparsify_backprop,
)

__all__ = [
    "ACTIVATIONS",
    "LAYERS",
    "NORMS",
    "SELU_ALPHA",
    "SELU_LAMBDA",
    "AlphaDropout",
    "DecoupledConv2d",
    "DeformConv2d",
    "DepthwiseSeparableConv2d",
    "DiCE",
    "DropConnectLinear",
    "FixupBasicBlock",
    "RandomShift2d",
    "RandomShiftDownsample",
    "ScalarBias",
    "ScalarScale",
    "SelectiveSoftmax",
    "SelfNormalizingMLP",
    "SparseBackpropConv2d",
    "SparseBackpropLinear",
    "SpatialDropout",
    "VarGroupConv2d",
    "alpha_dropout",
    "apply_weight_norm",
    "conv",
    "drop_connect",
    "fixup_param_groups",
    "get_activation",
    "lecun_normal_",
    "make_norm",
    "register_layer",
    "selective_softmax_check",
    "sparsify_backprop",
    "spatial_dropout",
]
