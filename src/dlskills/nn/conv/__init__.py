"""Convolution family (DESIGN.md ``nn/conv``), one file per technique:

- ``arith`` (1603.07285): output sizes of convolution, pooling, transposed and dilated
  convolution (all of the guide's relationships), padding helpers, receptive fields.
- ``matrix`` (1603.07285 §4, transposed-conv): a convolution as a sparse matrix C, the
  transposed convolution as Cᵀ.
- ``deform`` (1703.06211): ``DeformConv2d`` with learned offsets (and the DCNv2 mask); the
  functional form is ``dlskills.nn.functional.deform_conv2d``.
- ``separable`` (1808.05517): depthwise-separable conv and Network Decoupling of trained convs.
- ``dice`` (1906.03516): the DiCE unit (dimension-wise convolutions and fusion).
- ``vargroup`` (1907.05653): variable group convolution and the VarGNet blocks.
- ``random_shift`` (ijcai17-random-shift): random-shift down-sampling.
"""

from dlskills.nn.conv.arith import (
    conv_out,
    conv_transpose_out,
    full_padding,
    pool_out,
    receptive_field,
    relationship,
    same_padding,
    transposed_equivalent,
)
from dlskills.nn.conv.deform import DeformConv2d
from dlskills.nn.conv.dice import DiCE, DimensionWiseConv2d, StridedDiCE
from dlskills.nn.conv.matrix import conv2d_as_matrix, conv_matrix, conv_transpose2d_as_matrix
from dlskills.nn.conv.random_shift import RandomShift2d, RandomShiftDownsample
from dlskills.nn.conv.separable import (
    DecoupledConv2d,
    DecoupleReport,
    DepthwiseSeparableConv2d,
    decouple,
    decouple_model,
)
from dlskills.nn.conv.vargroup import VarGDownBlock, VarGNormalBlock, VarGroupConv2d

__all__ = [
    "DecoupleReport",
    "DecoupledConv2d",
    "DeformConv2d",
    "DepthwiseSeparableConv2d",
    "DiCE",
    "DimensionWiseConv2d",
    "RandomShift2d",
    "RandomShiftDownsample",
    "StridedDiCE",
    "VarGDownBlock",
    "VarGNormalBlock",
    "VarGroupConv2d",
    "conv2d_as_matrix",
    "conv_matrix",
    "conv_out",
    "conv_transpose2d_as_matrix",
    "conv_transpose_out",
    "decouple",
    "decouple_model",
    "full_padding",
    "pool_out",
    "receptive_field",
    "relationship",
    "same_padding",
    "transposed_equivalent",
]
