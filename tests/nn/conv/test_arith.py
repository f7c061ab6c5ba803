"""Convolution arithmetic (1603.07285): the reproduction (PyTorch's real shapes on random
configurations, meta tensors: shapes only; the guide's worked figures), each relationship's own
formula, the transposed-conv equivalence on real values, receptive fields measured by autograd."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dlskills import repro
from dlskills.nn.conv import arith
from dlskills.nn.conv.arith import (
    Layer,
    conv_out,
    conv_transpose_out,
    full_padding,
    pool_out,
    receptive_field,
    relationship,
    same_padding,
    transposed_equivalent,
)

META = torch.device("meta")

sizes = st.integers(1, 40)
kernels = st.integers(1, 9)
strides = st.integers(1, 5)
paddings = st.integers(0, 6)
dilations = st.integers(1, 4)


def torch_size(fn):
    """PyTorch's output length, or None where PyTorch rejects the configuration."""
    try:
        return fn().shape[-1]
    except RuntimeError:
        return None


def ours(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ValueError:
        return None


def test_fast_repro_sizes_equal_pytorch_and_the_guide_figures():
    """The claim (1603.07285): on 1,500 random (i, k, s, p, d, a) per seed, conv, pooling and
    transposed-conv sizes equal PyTorch's real shapes (rejections included), and all 15 worked
    figures of the guide are reproduced."""
    result = repro.get("1603.07285")(scale="fast")
    assert result.verdict == repro.fast_verdict("1603.07285") == "reproduced", result.reason
    for name in ("conv", "pooling", "transposed-conv"):
        assert result[f"{name} sizes unlike PyTorch"] == 0
    assert result["guide figures reproduced"] == 15


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    i=st.integers(1, 12),
    k=st.integers(1, 4),
    s=st.integers(1, 3),
    p=st.integers(0, 3),
    d=st.integers(1, 2),
)
def test_conv2d_shapes_in_both_axes(i, k, s, p, d):
    x, w = torch.empty(1, 2, i, i + 3, device=META), torch.empty(3, 2, k, k + 1, device=META)
    try:
        want = F.conv2d(x, w, stride=s, padding=p, dilation=d).shape[-2:]
    except RuntimeError:
        want = None
    got = ours(lambda: (conv_out(i, k, s, p, d), conv_out(i + 3, k + 1, s, p, d)))
    assert got == (None if want is None else tuple(want))


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    i=st.integers(1, 12),
    k=st.integers(1, 4),
    s=st.integers(1, 3),
    p=st.integers(0, 3),
    d=st.integers(1, 3),
)
def test_transposed_conv_equals_direct_conv_on_stretched_padded_input(i, k, s, p, d):
    k_hat = d * (k - 1) + 1
    if k_hat > i + 2 * p or p > k_hat - 1:
        return  # no direct conv, or an equivalent that would need negative padding
    eq = transposed_equivalent(i, k, s, p, d)
    assert eq.output_size == i
    assert conv_transpose_out(eq.input_size, k, s, p, eq.a, d) == i
    generator = torch.Generator().manual_seed(i * 1000 + k * 100 + s * 10 + p)
    y = torch.randn(1, 2, eq.input_size, dtype=torch.float64, generator=generator)
    w = torch.randn(2, 3, k, dtype=torch.float64, generator=generator)  # [C_in', C_out', k]
    want = F.conv_transpose1d(y, w, stride=s, padding=p, output_padding=eq.a, dilation=d)
    stretched = torch.zeros(1, 2, eq.stretched_size, dtype=torch.float64)
    stretched[..., ::s] = y
    padded = F.pad(stretched, (eq.padding, eq.padding + eq.a))
    direct = F.conv1d(padded, w.transpose(0, 1).flip(-1), stride=eq.stride, dilation=d)
    torch.testing.assert_close(direct, want)


def test_numpy_integers_are_accepted_and_python_ints_returned():
    np = pytest.importorskip("numpy")
    out = conv_out(np.int64(6), np.int32(3), np.int64(2), np.int64(1))
    assert out == 3 and type(out) is int
    eq = transposed_equivalent(np.int64(6), 3, np.int64(2), 1)
    assert (eq.a, type(eq.a)) == (1, int)


# each relationship of the guide as its own formula (k̂ for k in the transposed ones)
GUIDE_FORMULAS = {
    1: lambda i, k, s, p, d, it, a: (i - k) + 1,
    2: lambda i, k, s, p, d, it, a: (i - k) + 2 * p + 1,
    3: lambda i, k, s, p, d, it, a: i,
    4: lambda i, k, s, p, d, it, a: i + (k - 1),
    5: lambda i, k, s, p, d, it, a: (i - k) // s + 1,
    6: lambda i, k, s, p, d, it, a: (i + 2 * p - k) // s + 1,
    15: lambda i, k, s, p, d, it, a: (i + 2 * p - k - (k - 1) * (d - 1)) // s + 1,
    8: lambda i, k, s, p, d, it, a: it + (k - 1),
    9: lambda i, k, s, p, d, it, a: it + (k - 1) - 2 * p,
    10: lambda i, k, s, p, d, it, a: it,
    11: lambda i, k, s, p, d, it, a: it - (k - 1),
    12: lambda i, k, s, p, d, it, a: s * (it - 1) + k,
    13: lambda i, k, s, p, d, it, a: s * (it - 1) + k - 2 * p,
    14: lambda i, k, s, p, d, it, a: s * (it - 1) + a + k - 2 * p,
}


@settings(max_examples=600, deadline=None, derandomize=True)
@given(i=sizes, k=kernels, s=strides, p=paddings, d=dilations)
def test_each_reported_relationship_gives_the_pytorch_size(i, k, s, p, d):
    if ours(conv_out, i, k, s, p, d) is None:
        return
    direct = relationship(i, k, s, p, d)
    assert direct.output == GUIDE_FORMULAS[direct.number](i, k, s, p, d, None, None)
    assert direct.output == conv_out(i, k, s, p, d)
    k_hat = d * (k - 1) + 1
    if p > k_hat - 1:
        return
    transposed = relationship(i, k, s, p, d, transposed=True)
    a = (i + 2 * p - k_hat) % s
    by_formula = GUIDE_FORMULAS[transposed.number](None, k_hat, s, p, 1, direct.output, a)
    assert by_formula == transposed.output == i
    assert conv_transpose_out(direct.output, k, s, p, a, d) == i


def test_pooling_relationship_and_default_stride():
    assert pool_out(5, 3, 1) == 3  # R7
    assert pool_out(6, 2) == 3  # stride defaults to the kernel
    assert pool_out(5, 2, ceil_mode=True) == 3
    assert pool_out(5, 2, ceil_mode=False) == 2


@settings(max_examples=300, deadline=None, derandomize=True)
@given(i=sizes, k=st.integers(1, 9), d=dilations)
def test_same_and_full_padding(i, k, d):
    k_hat = d * (k - 1) + 1
    if k_hat % 2:
        assert conv_out(i, k, 1, same_padding(k, d), d) == i
    else:
        with pytest.raises(ValueError, match="odd effective kernel"):
            same_padding(k, d)
    assert conv_out(i, k, 1, full_padding(k, d), d) == i + k_hat - 1


def test_receptive_field_by_hand():
    assert receptive_field([(3, 1, 1), (3, 1, 1)]) == arith.ReceptiveField(5, 1, 0.0)
    assert receptive_field([(3, 1, 0), (3, 1, 0)]) == arith.ReceptiveField(5, 1, 2.0)
    # conv3 p1, pool2 s2, conv3 p1: size 1 + 2 + 1 + 2·2 = 8, jump 2, start 0.5
    stack = [Layer(3, 1, 1), {"k": 2, "s": 2}, torch.nn.Conv2d(1, 1, 3, padding=1)]
    assert receptive_field(stack) == arith.ReceptiveField(8, 2, 0.5)
    assert receptive_field([torch.nn.MaxPool2d(2), (3, 1, 0, 2)]) == arith.ReceptiveField(
        10, 2, 4.5
    )
    assert receptive_field([]) == arith.ReceptiveField(1, 1, 0.0)


@pytest.mark.parametrize(
    "stack",
    [
        [(3, 1, 1), (3, 2, 1), (3, 1, 0)],
        [(5, 2, 2), (2, 2, 0), (3, 1, 1, 2)],
        [(4, 3, 1), (3, 1, 2, 3), (2, 2, 1)],
    ],
)
def test_receptive_field_matches_autograd_support(stack):
    # with all-one weights the input gradient of one unit is non-zero on its field: the
    # field spans `size` pixels (with holes when a stride exceeds the next kernel)
    specs = [Layer(*spec) for spec in stack]
    layers = [torch.nn.Conv1d(1, 1, c.k, c.s, c.p, c.d, bias=False) for c in specs]
    for layer in layers:
        torch.nn.init.constant_(layer.weight, 1.0)
    net = torch.nn.Sequential(*layers).double()
    x = torch.ones(1, 1, 200, dtype=torch.float64, requires_grad=True)
    out = net(x)
    unit = out.shape[-1] // 2
    out[0, 0, unit].backward()
    support = x.grad[0, 0].nonzero().flatten()
    field = receptive_field(stack)
    assert int(support[-1] - support[0]) + 1 == field.size
    assert (support[0] + support[-1]).item() / 2 == field.start + unit * field.jump


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: conv_out(0, 3), ValueError, "input size i must be positive"),
        (lambda: conv_out(5, 0), ValueError, "kernel size k must be positive"),
        (lambda: conv_out(5, 3, 0), ValueError, "stride s must be positive"),
        (lambda: conv_out(5, 3, 1, -1), ValueError, "padding p must be non-negative"),
        (lambda: conv_out(4, 3, d=2), ValueError, "larger than the padded input"),
        (lambda: conv_out(5.0, 3), TypeError, "input size i must be an int"),
        (lambda: conv_out(True, 3), TypeError, "input size i must be an int"),
        (lambda: pool_out(5, 3, 1, 2), ValueError, "at most half the kernel size"),
        (lambda: conv_transpose_out(3, 3, 2, 0, 2), ValueError, "output_padding"),
        (lambda: conv_transpose_out(1, 3, 1, 2), ValueError, "removes the whole output"),
        (lambda: transposed_equivalent(5, 3, 1, 3), ValueError, "negative padding"),
        (lambda: receptive_field(["conv"]), TypeError, "each layer must be"),
        (lambda: receptive_field([(3, 0)]), ValueError, "layer 0: stride"),
    ],
)
def test_invalid_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()
