import pytest
import torch
from diagnose_nets import build_mlp
from torch import nn

from dlskills import repro
from dlskills.diagnose.jacobian import JacobianCallback, jacobian_spectrum, log_norm_statistics


def test_spectrum_of_a_linear_map_is_its_singular_values():
    layer = nn.Linear(6, 4)
    spectrum = jacobian_spectrum(layer, torch.randn(3, 6))
    expected = torch.linalg.svdvals(layer.weight.detach())
    for row in spectrum.singular_values:
        torch.testing.assert_close(row, expected)


def test_spectrum_matches_autograd_jacobian_of_an_mlp():
    model = build_mlp([8, 8], din=5, dout=3, activation=nn.Tanh)
    x = torch.randn(2, 5)
    spectrum = jacobian_spectrum(model, x)
    for index in range(2):
        jac = torch.autograd.functional.jacobian(model, x[index : index + 1]).reshape(3, 5)
        torch.testing.assert_close(spectrum.singular_values[index], torch.linalg.svdvals(jac))


def test_log_norm_of_an_orthogonal_map_is_zero():
    layer = nn.Linear(5, 5, bias=False)
    nn.init.orthogonal_(layer.weight)
    stats = log_norm_statistics(layer, torch.randn(8, 5), 3, reinit=False)
    torch.testing.assert_close(stats.log_sq_norms, torch.zeros(3, 8), atol=1e-5, rtol=0)


def test_fast_repro_reproduces_the_variance_law():
    """Hanin & Nica 1812.05994: Var[ln |J u|^2] ≈ 5β, mean ≈ -5β/2, β = Σ 1/width, over He inits
    of five ReLU nets (β 0.125-1; 16x8 and 32x16 share β at different depths), three seeds.
    Measured at fast scale: slope ≈ 6.9 (finite widths sit above the limit 5), mean slope ≈ -2.6,
    equal-β variance ratio ≈ 1.04."""
    result = repro.get("1812.05994")(scale="fast")
    assert result.verdict == repro.fast_verdict("1812.05994") == "reproduced", result.reason
    assert result.quantity("variance slope").seeds == (0, 1, 2)
    assert 4.0 <= result["variance slope"] <= 8.0
    assert -4.0 <= result["mean slope"] <= -1.5
    assert result["equal-β ratio"] == pytest.approx(1.0, abs=0.25)


def test_callback_records_the_spectrum(tmp_path):
    model = build_mlp([8], din=4, dout=2)

    class _Trainer:
        step, run_dir = 0, tmp_path

    trainer = _Trainer()
    trainer.model = model
    callback = JacobianCallback(torch.randn(3, 4), every=2)
    for step in range(1, 6):
        trainer.step = step
        callback.on_batch_end(trainer)
    callback.on_fit_end(trainer)
    assert [row["step"] for row in callback.history] == [2, 4]
    assert callback.figure.exists()
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_callback_validates_probe():
    with pytest.raises(TypeError, match="probe"):
        JacobianCallback([1, 2, 3])
