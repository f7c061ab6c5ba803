import pytest
import torch
from diagnose_nets import HE, build_mlp, scaled_init
from torch import nn

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


def test_log_norm_variance_grows_linearly_in_sum_of_inverse_widths():
    """Hanin & Nica 1812.05994: for He-init ReLU nets Var[ln |J u|^2] ≈ 5β + const with
    β = Σ 1/width, and the mean falls ≈ -5β/2. Widths/depths chosen so β spans 0.125-1.0, with
    two nets of equal β (16x8 and 32x16) but different depth; the fitted slope must lie within
    [4, 8] (measured ≈ 6) and the two equal-β nets within 25% of each other."""
    x = torch.randn(32, 32)
    nets = {
        "64x8": [64] * 8,
        "32x8": [32] * 8,
        "16x8": [16] * 8,
        "32x16": [32] * 16,
        "16x16": [16] * 16,
    }
    betas, variances, means = [], [], []
    for widths in nets.values():
        stats = log_norm_statistics(
            build_mlp(widths, din=32, dout=32), x, 30, init_fn=scaled_init(HE)
        )
        betas.append(sum(1 / w for w in widths))
        variances.append(stats.variance)
        means.append(stats.mean)
    beta = torch.tensor(betas, dtype=torch.float64)
    variance = torch.tensor(variances, dtype=torch.float64)
    design = torch.stack([beta, torch.ones_like(beta)], dim=1)
    slope, _ = torch.linalg.lstsq(design, variance[:, None]).solution.flatten().tolist()
    assert 4.0 < slope < 8.0
    assert variances[2] == pytest.approx(variances[3], rel=0.25)  # same β, depth 8 vs 16
    mean_slope = torch.linalg.lstsq(design, torch.tensor(means, dtype=torch.float64)[:, None])
    assert -4.0 < mean_slope.solution[0].item() < -1.5


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
