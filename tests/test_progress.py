"""dlskills._progress: a rich bar on a terminal, one plain line per unit otherwise."""

import io

from dlskills._progress import Progress


def test_plain_lines_one_per_unit_or_capped():
    stream = io.StringIO()  # not a terminal
    with Progress("demo", 3, unit="trial", stream=stream) as progress:
        for trial in range(3):
            progress.advance(f"seed {trial}")
    lines = [line.rsplit(" (", 1)[0] for line in stream.getvalue().splitlines()]
    assert lines == ["demo: trial 1/3 seed 0", "demo: trial 2/3 seed 1", "demo: trial 3/3 seed 2"]
    assert all(line.endswith(" s)") for line in stream.getvalue().splitlines())

    stream = io.StringIO()
    progress = Progress("steps", None, stream=stream, lines=4)
    for step in range(1, 11):  # the total is first known from the loop's own calls
        progress(step, 10, "")
    counts = [line.split(" (")[0] for line in stream.getvalue().splitlines()]
    # every 3rd of 10 steps (10 / 4 lines, rounded up), and always the last
    assert counts == [
        "steps: step 3/10",
        "steps: step 6/10",
        "steps: step 9/10",
        "steps: step 10/10",
    ]


def test_a_terminal_gets_a_rich_bar_and_no_plain_lines():
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100, color_system=None)
    with Progress("demo", 4, unit="fit", console=console) as progress:
        for _ in range(4):
            progress.advance("model a")
    text = buffer.getvalue()
    assert "4/4" in text and "model a" in text and "demo: fit" not in text
