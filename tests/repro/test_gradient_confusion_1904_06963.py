"""1904.06963 at fast scale: depth raises gradient confusion at He init; the width claim is not
seen there (declared "partial")."""

import math

import torch
from torch import nn

from dlskills import repro
from dlskills.diagnose.confusion import per_example_gradients
from dlskills.repro.gradient_confusion_1904_06963 import confusion_at_init, probe_data


def test_probe_inputs_are_near_orthogonal_with_norm_sqrt_dim():
    x, y = probe_data()
    torch.testing.assert_close(x.norm(dim=1), torch.full((48,), math.sqrt(128)))
    cosines = nn.functional.normalize(x) @ nn.functional.normalize(x).T
    assert cosines.fill_diagonal_(0).abs().max() < 0.4
    assert set(y.tolist()) <= set(range(10))


def test_q05_is_the_quantile_of_the_pairwise_gradient_cosines():
    from dlskills.repro._support import HE_GAIN, gaussian_init, mlp

    q05, minimum = confusion_at_init(2, 16, seed=0)
    torch.manual_seed(0)
    model = mlp([16, 16], din=128, dout=10)
    gaussian_init(HE_GAIN)(model)
    grads = per_example_gradients(model, nn.CrossEntropyLoss(), *probe_data()).double()
    unit = nn.functional.normalize(grads)
    i, j = torch.triu_indices(48, 48, offset=1)
    cosines = (unit @ unit.T)[i, j]
    assert abs(q05 - torch.quantile(cosines, 0.05).item()) < 1e-5
    assert abs(minimum - cosines.min().item()) < 1e-5


def test_fast_repro_depth_effect_holds_width_effect_does_not():
    result = repro.get("1904.06963")(scale="fast")
    assert result.verdict == repro.fast_verdict("1904.06963") == "partial", result.reason
    # measured (seeds 0-2): 16 layers 3-4x as confused as 1; width 1024 more confused than 16
    assert result["depth ratio of q05"] >= 2.0
    assert result["q05, 16 hidden layers"] < result["q05, 1 hidden layer"] < 0
    assert result["width change of q05"] < 0
