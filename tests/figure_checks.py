"""Checks of the common figure style (dlskills._plot) on matplotlib objects, not pixels."""


class SavedFigures(list):
    """The matplotlib Figures that ``dlskills._plot.save_figure`` wrote (and closed) during a
    test, in order; ``readable(fig)`` asserts the common style on the objects, not on pixels."""

    @staticmethod
    def readable(fig):
        suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
        for ax in fig.axes:
            bar = getattr(ax, "_colorbar", None)
            if bar is not None:
                label = ax.get_ylabel() if bar.orientation == "vertical" else ax.get_xlabel()
                assert label.strip(), "colour bar without a label"
                continue
            if not ax.get_visible() or not ax.has_data():
                continue
            assert suptitle.strip() or ax.get_title().strip(), "panel without a title"
            # an axis that shows values needs its label (a twin's hidden x axis does not)
            if ax.axison and ax.xaxis.get_visible() and len(ax.get_xticks()):
                assert ax.get_xlabel().strip(), f"no x label on {ax.get_title()!r}"
            if ax.axison and ax.yaxis.get_visible() and len(ax.get_yticks()):
                assert ax.get_ylabel().strip(), f"no y label on {ax.get_title()!r}"
            labelled = [h for h in ax.get_legend_handles_labels()[1] if not h.startswith("_")]
            if len(labelled) >= 2:
                assert ax.get_legend() is not None or fig.legends, (
                    f"{len(labelled)} labelled series and no legend on {ax.get_title()!r}"
                )
        return True

    @staticmethod
    def integer_ticks(axis):
        """The tick values shown on ``axis`` (ax.xaxis/yaxis) inside its view, all integers."""
        low, high = sorted(axis.get_view_interval())
        ticks = [t for t in axis.get_ticklocs() if low - 1e-9 <= t <= high + 1e-9]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        return ticks


def record_figures(monkeypatch):
    """A SavedFigures list that fills as figures are saved, until ``monkeypatch`` undoes it."""
    import matplotlib.pyplot as plt

    saved = SavedFigures()
    close = plt.close

    def recording_close(fig=None):
        if fig is not None and hasattr(fig, "axes"):
            saved.append(fig)
        return close(fig)

    monkeypatch.setattr(plt, "close", recording_close)
    return saved
