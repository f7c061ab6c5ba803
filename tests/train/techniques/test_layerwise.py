"""Layer-wise training then fusion (1905.07490): stage by stage only one block and its head
learn, the fused network is blocks → last head, and the comparison with end-to-end training."""

import pytest
import torch

from dlskills.train.techniques.layerwise import digits_blocks, layerwise_check, train_layerwise


def test_each_stage_trains_one_block_and_its_head_on_frozen_features():
    torch.manual_seed(0)
    blocks, heads = digits_blocks(width=16, depth=3)
    data = [(torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))) for _ in range(3)]
    stages, snapshots = [], []

    def make_optimizer(params):
        stages.append({id(p) for p in params})
        snapshots.append([p.detach().clone() for p in blocks[0].parameters()])
        return torch.optim.SGD(params, lr=0.1)

    fused = train_layerwise(blocks, heads, lambda: data, epochs=2, make_optimizer=make_optimizer)
    for k in range(3):
        expected = {id(p) for p in [*blocks[k].parameters(), *heads[k].parameters()]}
        assert stages[k] == expected
    # block 0 moved during its own stage and never after
    assert any(not torch.equal(a, b) for a, b in zip(snapshots[0], snapshots[1]))
    for a, b in zip(snapshots[1], blocks[0].parameters()):
        assert torch.equal(a, b)
    assert list(fused) == [*blocks, heads[-1]]
    assert fused(data[0][0]).shape == (8, 10)


def test_fusion_trains_every_parameter_and_arguments_are_validated():
    blocks, heads = digits_blocks(width=8, depth=2)
    data = [(torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,)))]
    given = []

    def make_optimizer(params):
        given.append(len(params))
        return torch.optim.SGD(params, lr=0.1)

    fused = train_layerwise(
        blocks, heads, lambda: data, epochs=1, make_optimizer=make_optimizer, fusion_epochs=1
    )
    assert given[-1] == len(list(fused.parameters())) == 6
    with pytest.raises(ValueError, match="one head per block"):
        train_layerwise(blocks, heads[:1], lambda: data, epochs=1, make_optimizer=make_optimizer)
    with pytest.raises(ValueError, match="epochs"):
        train_layerwise(blocks, heads, lambda: data, epochs=0, make_optimizer=make_optimizer)


def test_layerwise_trains_a_digits_mlp_as_well_as_end_to_end_with_a_third_of_the_updates():
    """One seed, 5 epochs per stage: layer-wise within 3 points of end-to-end (measured on
    three seeds it is on par: 95.9 vs 94.9 %), each step updating 42 % of the parameters."""
    result = layerwise_check(seeds=(0,), epochs=5)
    assert result.accuracy["layerwise"] > 0.93
    assert abs(result.accuracy["layerwise"] - result.accuracy["end_to_end"]) < 0.03
    per_step = result.parameters_per_step
    assert per_step["layerwise"] / per_step["end_to_end"] < 0.45


@pytest.mark.slow
def test_layerwise_check_as_documented():
    """Seeds 0–2, 10 epochs per stage: end-to-end 96.5 %, layer-wise 97.2 %, layer-wise + 2
    epochs of fusion 96.3 %. The paper's "below end-to-end" does not reproduce on digits."""
    result = layerwise_check()
    assert min(result.accuracy.values()) > 0.95
    assert result.accuracy["layerwise"] > result.accuracy["end_to_end"] - 0.02
