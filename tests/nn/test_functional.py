"""deform_conv2d against an explicit-loop reference of torchvision's rule, regular and shifted
convolutions, and float64 gradcheck for every differentiable argument."""

import math

import pytest
import torch
import torch.nn.functional as F

from dlskills.nn.functional import deform_conv2d


def loop_deform_conv2d(input, offset, weight, bias, stride, padding, dilation, mask):
    """Slow, obviously correct: one bilinear sample per (output, channel, tap), Python floats."""
    batch, channels, height, width = input.shape
    out_channels, group_in, kh, kw = weight.shape
    groups = channels // group_in
    taps = kh * kw
    offset_groups = offset.shape[1] // (2 * taps)
    out_h, out_w = offset.shape[2:]

    def sample(b, c, y, x):
        if y <= -1 or y >= height or x <= -1 or x >= width:
            return 0.0
        y0, x0 = math.floor(y), math.floor(x)
        total = 0.0
        for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
            for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
                if 0 <= yy < height and 0 <= xx < width:
                    total += wy * wx * float(input[b, c, yy, xx])
        return total

    out = torch.zeros(batch, out_channels, out_h, out_w, dtype=torch.float64)
    for b in range(batch):
        for co in range(out_channels):
            group = co // (out_channels // groups)
            for oy in range(out_h):
                for ox in range(out_w):
                    acc = 0.0 if bias is None else float(bias[co])
                    for local in range(group_in):
                        c = group * group_in + local
                        og = c // (channels // offset_groups)
                        for i in range(kh):
                            for j in range(kw):
                                t = i * kw + j
                                dy = float(offset[b, og * 2 * taps + 2 * t, oy, ox])
                                dx = float(offset[b, og * 2 * taps + 2 * t + 1, oy, ox])
                                y = oy * stride[0] - padding[0] + i * dilation[0] + dy
                                x = ox * stride[1] - padding[1] + j * dilation[1] + dx
                                m = 1.0 if mask is None else float(mask[b, og * taps + t, oy, ox])
                                acc += float(weight[co, local, i, j]) * m * sample(b, c, y, x)
                    out[b, co, oy, ox] = acc
    return out


def out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


CASES = [
    # channels, out, kernel, stride, padding, dilation, groups, offset_groups, masked
    (2, 3, (3, 3), (1, 1), (1, 1), (1, 1), 1, 1, False),
    (2, 3, (3, 2), (2, 1), (1, 0), (1, 2), 1, 1, True),
    (4, 4, (3, 3), (1, 2), (2, 1), (2, 1), 2, 2, True),
    (4, 6, (2, 3), (1, 1), (0, 1), (1, 1), 2, 4, True),
    (4, 2, (3, 3), (2, 2), (1, 1), (1, 1), 1, 2, False),
]


@pytest.mark.parametrize("case", CASES)
def test_matches_loop_reference_with_fractional_offsets(case):
    channels, out_ch, kernel, stride, padding, dilation, groups, offset_groups, masked = case
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2, channels, 5, 6, dtype=torch.float64, generator=generator)
    weight = torch.randn(
        out_ch, channels // groups, *kernel, dtype=torch.float64, generator=generator
    )
    bias = torch.randn(out_ch, dtype=torch.float64, generator=generator)
    oh = out_size(5, kernel[0], stride[0], padding[0], dilation[0])
    ow = out_size(6, kernel[1], stride[1], padding[1], dilation[1])
    taps = kernel[0] * kernel[1]
    # offsets up to ±2.5 pixels push many samples partly or wholly outside the image
    offset = 5 * torch.rand(2, 2 * offset_groups * taps, oh, ow, dtype=torch.float64) - 2.5
    mask = torch.rand(2, offset_groups * taps, oh, ow, dtype=torch.float64) if masked else None
    got = deform_conv2d(x, offset, weight, bias, stride, padding, dilation, mask)
    want = loop_deform_conv2d(x, offset, weight, bias, stride, padding, dilation, mask)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"),
    [(1, 0, 1, 1), (1, 1, 1, 1), (2, 1, 1, 2), ((1, 2), (2, 0), (2, 1), 4)],
)
def test_zero_offsets_equal_conv2d(stride, padding, dilation, groups):
    x = torch.randn(2, 8, 9, 7, dtype=torch.float64)
    weight = torch.randn(8, 8 // groups, 3, 3, dtype=torch.float64)
    bias = torch.randn(8, dtype=torch.float64)
    want = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    offset = torch.zeros(2, 2 * 2 * 9, *want.shape[2:], dtype=torch.float64)
    got = deform_conv2d(x, offset, weight, bias, stride, padding, dilation)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("dy", "dx"), [(1, 0), (0, -2), (-1, 3), (4, 4)])
def test_constant_integer_offset_equals_conv_of_shifted_input(dy, dx):
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    weight = torch.randn(5, 3, 3, 3, dtype=torch.float64)
    margin = 8
    # tap (i, j) of output (oy, ox) reads input(oy − 1 + i + dy, ox − 1 + j + dx), zero outside
    padded = F.pad(x, (margin,) * 4)
    top, left = margin - 1 + dy, margin - 1 + dx
    want = F.conv2d(padded[:, :, top : top + 10, left : left + 10], weight)
    offset = torch.zeros(2, 2 * 9, 8, 8, dtype=torch.float64)
    offset[:, 0::2] = dy
    offset[:, 1::2] = dx
    torch.testing.assert_close(deform_conv2d(x, offset, weight, padding=1), want)


def test_per_tap_integer_offsets_turn_a_3x3_conv_into_a_dilated_conv():
    x = torch.randn(1, 4, 10, 10, dtype=torch.float64)
    weight = torch.randn(6, 4, 3, 3, dtype=torch.float64)
    offset = torch.zeros(1, 18, 10, 10, dtype=torch.float64)
    for i in range(3):
        for j in range(3):
            offset[:, 2 * (3 * i + j)] = i - 1  # tap (i, j) moves from i − 1 to 2(i − 1)
            offset[:, 2 * (3 * i + j) + 1] = j - 1
    want = F.conv2d(x, weight, padding=2, dilation=2)
    torch.testing.assert_close(deform_conv2d(x, offset, weight, padding=1), want)


def test_half_pixel_offset_averages_neighbours():
    # a 1x1 kernel of weight 1 with Δx = 0.5 samples the mean of horizontal neighbours
    x = torch.arange(12.0, dtype=torch.float64).view(1, 1, 3, 4)
    offset = torch.zeros(1, 2, 3, 4, dtype=torch.float64)
    offset[:, 1] = 0.5
    out = deform_conv2d(x, offset, torch.ones(1, 1, 1, 1, dtype=torch.float64))
    want = (x + F.pad(x, (0, 1))[..., 1:]) / 2
    want[..., -1] = x[..., -1] / 2  # the right neighbour of the last column is outside: zero
    torch.testing.assert_close(out, want)


def test_gradcheck_input_offset_weight_mask_bias():
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(1, 4, 4, 4, dtype=torch.float64, generator=generator)
    weight = torch.randn(4, 2, 3, 3, dtype=torch.float64, generator=generator)
    bias = torch.randn(4, dtype=torch.float64, generator=generator)
    oh = out_size(4, 3, 2, 1, 1)
    # integer part in {-2..1} plus a fraction kept away from pixel edges, where the
    # bilinear weights (and so the offset gradient) have kinks
    whole = torch.randint(-2, 2, (1, 2 * 2 * 9, oh, oh), generator=generator)
    fraction = 0.2 + 0.6 * torch.rand(whole.shape, dtype=torch.float64, generator=generator)
    offset = whole + fraction
    mask = torch.rand(1, 2 * 9, oh, oh, dtype=torch.float64, generator=generator)
    tensors = [t.requires_grad_() for t in (x, offset, weight, bias, mask)]

    def fn(inp, off, w, b, m):
        return deform_conv2d(inp, off, w, b, stride=2, padding=1, dilation=1, mask=m)

    assert torch.autograd.gradcheck(fn, tensors, eps=1e-6, atol=1e-7)


def test_gradcheck_without_mask_with_dilation():
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(1, 2, 6, 5, dtype=torch.float64, generator=generator, requires_grad=True)
    weight = torch.randn(3, 2, 2, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    whole = torch.randint(-1, 2, (1, 12, 6, 3), generator=generator)
    offset = (whole + 0.2 + 0.6 * torch.rand(whole.shape, dtype=torch.float64)).requires_grad_()

    def fn(inp, off, w):
        return deform_conv2d(inp, off, w, padding=(1, 0), dilation=(2, 1))

    assert torch.autograd.gradcheck(fn, (x, offset, weight), eps=1e-6, atol=1e-7)


def test_input_gradient_equals_loop_reference_gradient_at_zero_offsets():
    # with zero offsets the input gradient is conv2d's, including the transposed scatter
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    grad_out = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    offset = torch.zeros(2, 18, 3, 3, dtype=torch.float64)
    (got,) = torch.autograd.grad(deform_conv2d(x, offset, weight, stride=2, padding=1), x, grad_out)
    (want,) = torch.autograd.grad(F.conv2d(x, weight, stride=2, padding=1), x, grad_out)
    torch.testing.assert_close(got, want)


def test_float32_matches_float64():
    x = torch.randn(2, 4, 7, 7, dtype=torch.float64)
    weight = torch.randn(5, 4, 3, 3, dtype=torch.float64)
    offset = 3 * torch.rand(2, 18, 7, 7, dtype=torch.float64) - 1.5
    want = deform_conv2d(x, offset, weight, padding=1)
    got = deform_conv2d(x.float(), offset.float(), weight.float(), padding=1)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"offset": torch.zeros(1, 17, 4, 4)}, "offset tensor at dimension 1"),
        ({"offset": torch.zeros(1, 18, 3, 4)}, "offset output dims"),
        ({"offset": torch.zeros(2, 18, 4, 4)}, "batch size of offset"),
        ({"mask": torch.zeros(1, 8, 4, 4)}, "mask.shape"),
        ({"weight": torch.zeros(4, 3, 3, 3)}, "multiple of weight.shape"),
        ({"weight": torch.zeros(3, 2, 3, 3)}, "divisible by the number of weight groups"),
        ({"bias": torch.zeros(3)}, "bias must have shape"),
        ({"stride": 0}, "stride must be >= 1"),
        ({"padding": -1}, "padding must be >= 0"),
        ({"weight": torch.zeros(4, 4, 7, 7)}, "does not fit the padded input"),
    ],
)
def test_invalid_arguments_raise_clear_errors(kwargs, message):
    arguments = {
        "input": torch.zeros(1, 4, 4, 4),
        "offset": torch.zeros(1, 18, 4, 4),
        "weight": torch.zeros(4, 4, 3, 3),
        "padding": 1,
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        deform_conv2d(**arguments)


def test_offset_groups_must_divide_channels_and_dtypes_must_match():
    x = torch.zeros(1, 4, 4, 4)
    with pytest.raises(ValueError, match="offset groups"):
        deform_conv2d(x, torch.zeros(1, 3 * 18, 4, 4), torch.zeros(4, 4, 3, 3), padding=1)
    with pytest.raises(TypeError, match="offset dtype"):
        deform_conv2d(
            x, torch.zeros(1, 18, 4, 4, dtype=torch.float64), torch.zeros(4, 4, 3, 3), padding=1
        )
    with pytest.raises(TypeError, match="stride"):
        deform_conv2d(x, torch.zeros(1, 18, 4, 4), torch.zeros(4, 4, 3, 3), stride=1.5)


def test_non_contiguous_offset_and_mask_give_the_same_result():
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64)
    weight = torch.randn(3, 4, 3, 3, dtype=torch.float64)
    offset = torch.randn(2, 6, 6, 36, dtype=torch.float64).permute(0, 3, 1, 2)
    mask = torch.rand(2, 6, 6, 18, dtype=torch.float64).permute(0, 3, 1, 2)
    assert not offset.is_contiguous() and not mask.is_contiguous()
    got = deform_conv2d(x, offset, weight, padding=1, mask=mask)
    want = deform_conv2d(x, offset.contiguous(), weight, padding=1, mask=mask.contiguous())
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_nan_offset_propagates_to_its_output_position_only():
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    weight = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    offset = torch.zeros(1, 18, 5, 5, dtype=torch.float64)
    offset[0, 4, 2, 3] = float("nan")
    out = deform_conv2d(x, offset, weight, padding=1)
    nan_positions = out.isnan().any(1)[0].nonzero().tolist()
    assert nan_positions == [[2, 3]]
    offset[0, 4, 2, 3] = 0.0
    want = F.conv2d(x, weight, padding=1)
    keep = ~out.isnan()
    torch.testing.assert_close(out[keep], want[keep])


def test_partial_requires_grad_gives_the_same_gradients():
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64)
    weight = torch.randn(4, 4, 3, 3, dtype=torch.float64)
    offset = 3 * torch.rand(2, 18, 5, 5, dtype=torch.float64) - 1.5
    everything = [t.clone().requires_grad_() for t in (x, offset, weight)]
    deform_conv2d(*everything, padding=1).square().sum().backward()
    for index in range(3):
        only = [t.clone().requires_grad_(i == index) for i, t in enumerate((x, offset, weight))]
        deform_conv2d(*only, padding=1).square().sum().backward()
        torch.testing.assert_close(only[index].grad, everything[index].grad)
