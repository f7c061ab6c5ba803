"""Every figure of the doctor and the diagnostics follows the common style (dlskills._plot):
asserted on the matplotlib Figure/Axes objects that were saved, not on pixels."""

import pytest
import torch
from diagnose_nets import build_mlp
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from figure_checks import record_figures


@pytest.fixture(scope="module")
def tiny_doctor(tmp_path_factory):
    """The doctor's figures for a 2-hidden-layer MLP and 96 random 3-class examples, by file
    name (drawn once for the tests below)."""
    import dlskills._plot  # noqa: F401  (the Agg backend before any figure)
    from dlskills.diagnose.doctor import doctor

    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(96, 16, generator=generator)
    labels = torch.randint(0, 3, (96,), generator=generator)
    loader = DataLoader(TensorDataset(inputs, labels), batch_size=32)
    torch.manual_seed(0)
    model = build_mlp([12, 12], dout=3)
    diagnosis = doctor(
        model,
        loader,
        nn.CrossEntropyLoss(),
        val_loader=loader,
        fit_steps=12,
        n_inits=2,
        confusion_examples=8,
        jacobian_examples=4,
    )
    with pytest.MonkeyPatch.context() as patch:
        saved = record_figures(patch)
        diagnosis.write_report(tmp_path_factory.mktemp("doctor"))
    return diagnosis, dict(zip(diagnosis.plotters, saved))


def test_doctor_figures_are_readable(tiny_doctor, saved_figures):
    diagnosis, figures = tiny_doctor
    assert set(figures) >= {
        "gradient_flow.png",
        "init_check.png",
        "activations.png",
        "fitting.png",
        "gradient_confusion.png",
        "jacobian.png",
    }
    for fig in figures.values():
        assert saved_figures.readable(fig)
    # threshold lines say what they are: a legend entry per level
    [flow_ax] = figures["gradient_flow.png"].axes
    legend = [t.get_text() for t in flow_ax.get_legend().get_texts()]
    assert any(text.startswith("exploding FAIL") for text in legend)
    assert any(text.startswith("no-learning floor") for text in legend)
    # layer names on the axis, not positions
    layers = diagnosis.details["gradient_flow"]["layers"]
    assert [t.get_text() for t in flow_ax.get_xticklabels()] == layers
    confusion = figures["gradient_confusion.png"].axes[0].get_legend().get_texts()
    assert {"WARN below -0.4", "FAIL below -0.7"} <= {t.get_text() for t in confusion}


def test_activation_panels_are_titled_by_layer_name_with_labelled_colour_bars(
    tiny_doctor, saved_figures
):
    fig = tiny_doctor[1]["activations.png"]
    heat_maps = [ax for ax in fig.axes if ax.images]
    bars = [ax for ax in fig.axes if hasattr(ax, "_colorbar")]
    # the probed activations of Sequential(Linear, ReLU, Linear, ReLU, Linear) are "1" and "3":
    # the panels say which module that is
    assert [ax.get_title().splitlines()[0] for ax in heat_maps] == ["1 (ReLU)", "3 (ReLU)"]
    assert [ax.get_ylabel() for ax in bars] == ["mean activation per class"] * 2
    for ax in heat_maps:  # classes and units are counted: integer ticks
        saved_figures.integer_ticks(ax.yaxis)
    information = fig.axes[len(heat_maps)]
    assert [t.get_text() for t in information.get_xticklabels()] == ["1 (ReLU)", "3 (ReLU)"]


def test_short_fit_is_plotted_against_steps_and_init_check_against_layer_names(
    tiny_doctor, saved_figures
):
    fitting, init = tiny_doctor[1]["fitting.png"], tiny_doctor[1]["init_check.png"]
    loss_ax, accuracy_ax = fitting.axes
    # short_fit rows have no epochs: the x axis is the optimizer step, ticked at whole steps
    assert loss_ax.get_xlabel() == "optimizer step" and "short fit" in fitting._suptitle.get_text()
    saved_figures.integer_ticks(loss_ax.xaxis)
    assert "constant-predictor loss" in [t.get_text() for t in loss_ax.get_legend().get_texts()]
    assert accuracy_ax.get_ylabel() == "accuracy (%)"
    assert [t.get_text() for t in init.axes[0].get_xticklabels()] == ["1", "3"]


def test_fitting_of_a_run_history_is_plotted_against_whole_epochs(saved_figures, tmp_path):
    from dlskills.diagnose.fitting import analyse_fit

    rows = [
        {
            "epoch": e,
            "train_loss": 1 / e,
            "val_loss": 1.2 / e,
            "train_accuracy": 0.5 + e / 20,
            "val_accuracy": 0.5 + e / 25,
        }
        for e in (1, 2, 3)
    ]
    analyse_fit(rows, baseline_loss=2.3).plot(tmp_path / "fit.png")
    [fig] = saved_figures
    assert saved_figures.readable(fig)
    assert fig.axes[0].get_xlabel() == "epoch"
    assert saved_figures.integer_ticks(fig.axes[0].xaxis) == [1, 2, 3]
    # 0.65 - 0.62 at epoch 3, in points as the accuracy axis is in %
    assert fig.axes[0].get_title() == "loss; train - val accuracy gap 3.0 points"


def test_through_time_figure_has_labelled_fail_levels(saved_figures, tmp_path):
    from dlskills.diagnose import through_time_demo

    through_time_demo(steps=6).plot(tmp_path / "tt.png")
    [fig] = saved_figures
    assert saved_figures.readable(fig)
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sum("FAIL" in text for text in legend) == 2
    saved_figures.integer_ticks(ax.xaxis)


def test_attribution_figure_has_titles_and_colour_bars(saved_figures, tmp_path):
    from dlskills.diagnose.attribution import plot_attributions

    images = torch.rand(2, 1, 6, 6)
    plot_attributions(
        images,
        {"saliency": torch.rand(2, 1, 6, 6), "gradcam": torch.rand(2, 6, 6)},
        tmp_path / "a.png",
    )
    [fig] = saved_figures
    assert saved_figures.readable(fig)
    assert fig._suptitle.get_text()
    bars = [ax for ax in fig.axes if hasattr(ax, "_colorbar")]
    assert len(bars) == 2 * 2  # one per heat map (2 samples x 2 methods), none on the inputs
    assert {ax.get_ylabel() for ax in bars} == {"|attribution|"}
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["input", "saliency", "gradcam"]


def test_landscape_pmv_filter_and_latent_figures_are_readable(saved_figures, tmp_path):
    from dlskills.diagnose.filter_recovery import FilterRecovery, plot_filter_recovery
    from dlskills.diagnose.landscape import LossSlice, plot_contour
    from dlskills.diagnose.latent_recovery import LatentRecoveryResult, plot_latent_recovery
    from dlskills.diagnose.pmv import PMVResult, plot_pmv

    grid = torch.linspace(-1, 1, 5)
    plot_contour(
        LossSlice(grid, grid.clone(), grid[:, None] ** 2 + grid**2 + 0.1), tmp_path / "l.png"
    )
    plot_pmv(
        [
            PMVResult("a", (0.0, 0.5), (0.9, 0.6), (0.9, 0.8), -0.6, 0.9),
            PMVResult("b", (0.0, 0.5), (1.0, 0.95), (0.9, 0.7), -0.1, 1.0),
        ],
        tmp_path / "p.png",
    )
    filters = torch.randn(2, 3, 3)
    recovery = FilterRecovery(
        filters, [0, 5], [torch.randn(3, 3, 3), filters.repeat(2, 1, 1)[:3]], [1.0] * 5
    )
    plot_filter_recovery(recovery, tmp_path / "f.png", at_steps=(0,))
    errors = torch.rand(10) + 0.01
    plot_latent_recovery(
        {5: LatentRecoveryResult(errors, errors * 2), 50: LatentRecoveryResult(errors, errors)},
        tmp_path / "r.png",
    )
    landscape, _, filter_fig, latent = saved_figures
    for fig in saved_figures:
        assert saved_figures.readable(fig)
    assert [ax.get_ylabel() for ax in landscape.axes if hasattr(ax, "_colorbar")] == ["loss"]
    [bar] = [ax for ax in filter_fig.axes if hasattr(ax, "_colorbar")]
    assert "max |weight|" in bar.get_ylabel()
    curve_ax = next(ax for ax in filter_fig.axes if ax.get_legend() is not None)
    saved_figures.integer_ticks(curve_ax.xaxis)
    assert "training loss (right axis)" in [t.get_text() for t in curve_ax.get_legend().get_texts()]
    assert [ax.get_ylabel() for ax in latent.axes] == ["images", "images"]


def test_training_callbacks_figures_are_readable(tmp_path, classification_batch, saved_figures):
    from dlskills.diagnose.activations import ActivationStatsCallback
    from dlskills.diagnose.gradient_flow import GradientFlowCallback
    from dlskills.diagnose.jacobian import JacobianCallback
    from dlskills.train import Trainer

    model = build_mlp([8, 8])
    callbacks = [
        GradientFlowCallback(every=2),
        ActivationStatsCallback(every=2),
        JacobianCallback(classification_batch[0][0][:2], every=2),
    ]
    Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        nn.CrossEntropyLoss(),
        classification_batch,
        callbacks=callbacks,
        max_steps=5,
        run_dir=tmp_path,
    ).fit()
    flow, activations, jacobian = saved_figures
    for fig in saved_figures:
        assert saved_figures.readable(fig)
    assert saved_figures.integer_ticks(flow.axes[0].xaxis)
    assert saved_figures.integer_ticks(jacobian.axes[0].xaxis)
    heat_std = activations.axes[0]
    # probe layers by name on the heat map's rows, colour bars labelled with their units
    assert [t.get_text() for t in heat_std.get_yticklabels()] == ["1", "3"]
    bars = [ax.get_ylabel() for ax in activations.axes if hasattr(ax, "_colorbar")]
    assert bars == ["log10 activation std", "dead units (%)"]
