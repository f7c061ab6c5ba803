"""The reproductions table: rows from Results, and README.md's copy against the registry.

README.md's "Reproductions" table is the ``table.md`` of ``dlskills repro --all --scale fast``.
Running every reproduction here would repeat the suite, so its copy is checked against what each
row comes from: the registered ids in reading-list order, each entry's declared fast verdict (the
verdict its own test asserts its fast run gives) and, where the module declares its claim as
``CLAIM``, that claim's number and source. A reproduction added or changed without regenerating
the README fails here."""

import inspect
from pathlib import Path

from dlskills import repro
from dlskills.report.repro_table import HEADER, markdown_table, table_row
from dlskills.repro.result import Claim, Measured, Result

README = Path(__file__).resolve().parents[2] / "README.md"


def _result(entry_id, claim, verdict, scale="fast"):
    return Result(
        id=entry_id,
        title="t",
        scale=scale,
        claim=claim,
        measured=(Measured.exact("x", "", 1.0),),
        thresholds=(),
        verdict=verdict,
        reason="",
        figures=(),
        wall_time_s=0.0,
        run={},
    )


def test_one_row_per_result_in_order_with_pipes_escaped():
    results = [
        _result("b-id", Claim("text", "x | y\n  = 2", "Table 1"), "partial"),
        _result("a-id", Claim("text", "1.5 %", "Fig. 2"), "not reproduced"),
    ]
    assert markdown_table(results).splitlines() == [
        "| id | the paper's claim | where in the paper | verdict (fast) |",
        "|---|---|---|---|",
        "| b-id | x \\| y = 2 | Table 1 | partial |",
        "| a-id | 1.5 % | Fig. 2 | not reproduced |",
    ]


def _readme_rows() -> list[str]:
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index("## Reproductions")
    header = next(i for i in range(start, len(lines)) if lines[i].startswith("| id |"))
    assert lines[header] == HEADER[0].replace("verdict", "verdict (fast)")
    assert lines[header + 1] == HEADER[1]
    rows = []
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_readme_table_is_the_registry_at_fast_scale():
    rows = _readme_rows()
    shown = {row.split(" | ")[0].removeprefix("| "): row for row in rows}
    expected = []
    for entry_id in repro.ids():
        verdict = repro.fast_verdict(entry_id)
        claim = getattr(inspect.getmodule(repro.get(entry_id)), "CLAIM", None)
        if isinstance(claim, Claim):
            expected.append(table_row(entry_id, claim, verdict))
        else:  # a module with several claims: the row of `repro --all`'s table.md, as shown
            row = shown.get(entry_id, f"| {entry_id} | (run repro --all) | (table.md) | ? |")
            expected.append(row.rsplit(" | ", 1)[0] + f" | {verdict} |")
    # on failure the diff shows the rows to paste (or rerun `dlskills repro --all --scale fast`)
    assert rows == expected
