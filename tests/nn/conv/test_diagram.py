"""Guide-style convolution diagrams: one panel per output position, a colour legend."""

import pytest

from dlskills.nn.conv._diagram import draw_convolution


def test_one_panel_per_output_position_and_a_colour_legend(tmp_path, saved_figures):
    # 5×5 input, 3×3 kernel, no padding: a 3×3 output, so 9 panels (the guide's figure 2.1)
    draw_convolution(tmp_path / "c.png", 5, 3)
    [fig] = saved_figures
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [f"output ({r}, {c})" for r in range(3) for c in range(3)]
    assert "o=3" in fig._suptitle.get_text()
    [legend] = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "input",
        "padding",
        "kernel taps",
        "output",
        "this output position",
    ]
    assert saved_figures.readable(fig)


def test_transposed_legend_names_the_inserted_zeros_and_large_outputs_are_cut(
    tmp_path, saved_figures
):
    draw_convolution(tmp_path / "t.png", 2, 3, s=2, transposed=True, max_side=2)  # o' = 5
    [fig] = saved_figures
    assert "inserted zero" in [t.get_text() for t in fig.legends[0].get_texts()]
    # 2×2 of the 5×5 output positions are drawn, and the title says so
    assert [ax.get_title() for ax in fig.axes] == [
        "output (0, 0)",
        "output (0, 1)",
        "output (1, 0)",
        "output (1, 1)",
    ]
    assert "the first 2×2 of 5×5 output positions" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="max_side"):
        draw_convolution(tmp_path / "x.png", 5, 3, max_side=0)
