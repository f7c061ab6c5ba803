"""The reproductions as one Markdown table (README.md's "Reproductions"): a row per entry with its
catalog id, the paper's claim (its number, and where in the paper it is) and the verdict at the
scale it ran. ``dlskills repro --all`` writes it as ``table.md`` beside ``index.json``; the
README's copy is checked against the registered reproductions by tests/report/test_repro_table.py.
"""

from __future__ import annotations

from collections.abc import Iterable

from dlskills.repro.result import Claim, Result

HEADER = ("| id | the paper's claim | where in the paper | verdict |", "|---|---|---|---|")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def table_row(entry_id: str, claim: Claim, verdict: str) -> str:
    """``| 1812.05994 | Var = 5β, mean = -5β/2 | Theorem 1 (Sec. 1) | reproduced |``."""
    cells = (entry_id, claim.value, claim.source, verdict)
    return "| " + " | ".join(_cell(text) for text in cells) + " |"


def markdown_table(results: Iterable[Result]) -> str:
    """The table of ``results``, in their order; the verdict column names their scale."""
    results = list(results)
    scales = sorted({result.scale for result in results})
    header = HEADER[0].replace("verdict", f"verdict ({', '.join(scales)})" if scales else "verdict")
    rows = [table_row(result.id, result.claim, result.verdict) for result in results]
    return "\n".join([header, HEADER[1], *rows]) + "\n"
