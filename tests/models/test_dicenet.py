"""DiCENet-small (1906.03516): registry, any input size, counts, trains on digits."""

import pytest
import torch

from dlskills.models import MODELS, create
from dlskills.models._quickfit import digits_tensors, quick_fit
from dlskills.models.dicenet import DiCENetSmall, ShuffleDiCEBlock
from dlskills.nn._counting import count_macs
from dlskills.nn.conv.dice import DiCE


def test_registered_with_catalog_id_and_runs_at_other_sizes():
    assert MODELS.entry("dicenet_small").catalog_id == "1906.03516"
    model = create("dicenet_small", input_shape=(1, 8, 8), num_classes=10).eval()
    assert isinstance(model, DiCENetSmall)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert model(torch.randn(2, 1, 13, 11)).shape == (2, 10)


def test_dice_units_hold_the_paper_parameter_count_for_their_size():
    """Each DiCE unit's DimConv has k²(C + H + W) weights for the size it sees on 8×8 input."""
    model = DiCENetSmall(input_shape=(3, 16, 12), num_classes=5, width=8)
    units = [m for m in model.modules() if isinstance(m, DiCE)]
    # level 1 runs at 8×6, level 2 at 4×3 (two units per level: StridedDiCE + ShuffleDiCE)
    sizes = [(8, 6), (8, 6), (4, 3), (4, 3)]
    assert len(units) == 4
    for unit, (h, w) in zip(units, sizes):
        c = unit.in_channels
        assert sum(p.numel() for p in unit.dim_conv.parameters()) == 9 * (c + h + w)


def test_whole_model_macs_equal_the_sum_of_unit_formulas():
    model = DiCENetSmall(input_shape=(1, 8, 8), num_classes=10, width=8, blocks=1)
    counts = count_macs(model, (1, 8, 8))

    def dice_macs(c, c_out, h, w, g):
        return 3 * 9 * c * h * w + 3 * c * h * w + h * w * 9 * c * c_out // g + c * (c // 4) * 2

    def strided_macs(c, h, w):  # output h×w; left dw3×3 + 1×1, right DiCE + 1×1
        return h * w * (9 * c + c * c) + dice_macs(c, c, h, w, c) + h * w * c * c

    def shuffle_block_macs(c, h, w):
        half = c // 2
        return h * w * half * half + dice_macs(half, half, h, w, half)

    expected = 64 * 9 * 8  # stem 3×3, 1 → 8 channels
    expected += strided_macs(8, 4, 4) + shuffle_block_macs(16, 4, 4)
    expected += strided_macs(16, 2, 2) + shuffle_block_macs(32, 2, 2)
    expected += 32 * 64 // 4 + 64 * 10  # grouped 1×1 head (4 groups) + classifier
    assert counts.macs == expected


def test_shuffle_block_keeps_left_half():
    block = ShuffleDiCEBlock(8, (4, 4)).eval()
    x = torch.randn(1, 8, 4, 4)
    out = block(x)
    torch.testing.assert_close(out[:, 0::2], x[:, :4])  # shuffle in 2 interleaves left/right


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_dicenet_small_reaches_95_percent_on_digits():
    """width 16, SGD lr 0.05 momentum 0.9 wd 5e-4, 10 epochs, mean over seeds 0-2 ≥ 0.95."""
    data = digits_tensors(seed=0)
    accuracies = []
    for seed in range(3):
        torch.manual_seed(seed)
        model = DiCENetSmall(input_shape=(1, 8, 8), num_classes=10)
        accuracies.append(quick_fit(model, data, epochs=10, lr=0.05, seed=seed, weight_decay=5e-4))
    print("dicenet_small digits accuracies:", [round(a, 4) for a in accuracies])
    assert sum(accuracies) / 3 >= 0.95
