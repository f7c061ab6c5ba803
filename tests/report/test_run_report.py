"""Run report: curves and report.md from a run's numbers."""

from dlskills.report.run_report import plot_curves, write_run_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_report_shows_results_curves_and_config(tmp_path, saved_figures):
    history = [
        {"epoch": 1, "step": 10, "train_loss": 1.0, "val_loss": 0.9, "val_accuracy": 0.7},
        {"epoch": 2, "step": 20, "train_loss": 0.5, "val_loss": 0.6, "val_accuracy": 0.8},
    ]
    summary = {
        "test_accuracy": 0.98765,
        "best_val_accuracy": 0.8,
        "epochs": 2,
        "steps": 20,
        "train_seconds": 12.5,
        "parameters": 12345,
        "seed": 3,
        "stop_reason": "completed",
        "model": "cnn",
        "dataset": "digits",
        "optimizer": "adamw",
        "evaluated_checkpoint": "best",
        "environment": {"torch": "2.x"},
    }
    report = write_run_report(
        tmp_path, config={"lr": 0.003}, summary=summary, history=history, lr_history=[(0, [0.1])]
    )
    text = report.read_text()
    assert "| test accuracy (best checkpoint) | 98.77 % |" in text
    assert "| training time | 12.5 s |" in text and "| parameters | 12,345 |" in text
    assert "![loss](loss.png)" in text and "![accuracy](accuracy.png)" in text
    assert "| lr | 0.003 |" in text and "| torch | 2.x |" in text
    assert "| 2 | 20 | 0.5 | 0.6 | 0.8 |" in text
    for name in ("loss.png", "accuracy.png", "lr.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC
    loss, accuracy, lr = saved_figures
    for fig in saved_figures:
        assert saved_figures.readable(fig)
    assert "Loss per epoch: cnn on digits" in loss.axes[0].get_title()
    assert loss.axes[0].get_legend() is not None
    # epochs are whole numbers on the axis: no 1.5 tick between epoch 1 and epoch 2
    assert saved_figures.integer_ticks(loss.axes[0].xaxis) == [1, 2]
    assert saved_figures.integer_ticks(lr.axes[0].xaxis) == [0]
    # the report quotes accuracy in percent, and so does the figure: 0.8 is shown as 80%
    ax = accuracy.axes[0]
    assert ax.get_ylabel() == "accuracy (%)"
    assert float(ax.yaxis.get_major_formatter()(0.8, 0).rstrip("%")) == 80


def test_no_data_no_figure(tmp_path):
    assert (
        plot_curves([{"epoch": 1}], ("val_accuracy",), "accuracy", tmp_path / "a.png", title="t")
        is None
    )
    assert not (tmp_path / "a.png").exists()
