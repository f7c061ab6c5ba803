"""`dlskills papers`: the list grouped by section, filters, `show ID`, --json."""

import json
import subprocess
import sys

import pytest

from dlskills import catalog
from dlskills.cli import main


def run_cli(capsys, *argv):
    code = main(["papers", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_json_parses_and_counts_every_entry(capsys):
    code, out, _ = run_cli(capsys, "--json")
    assert code == 0
    document = json.loads(out)
    entries = catalog.load()
    assert document["total"] == len(entries) == len(document["entries"])
    assert document["status_counts"] == catalog.status_counts()
    assert sum(document["status_counts"].values()) == len(entries)
    assert document["sections"] == catalog.sections()
    assert [e["id"] for e in document["entries"]] == [e.id for e in entries]
    assert document["entries"][0] == entries[0].to_dict()


def test_section_filter_by_number_prefix_and_name(capsys):
    expected = [e.id for e in catalog.load() if e.section == "4.1 Optimizers"]
    for query in ("4.1", "4.1 optimizers", "optim"):
        document = json.loads(run_cli(capsys, "--section", query, "--json")[1])
        assert [e["id"] for e in document["entries"]] == expected, query
        assert document["total"] == len(expected) == sum(document["status_counts"].values())
    whole_part = json.loads(run_cli(capsys, "--section", "4", "--json")[1])
    assert whole_part["sections"] == [s for s in catalog.sections() if s.startswith("4.")]


def test_status_and_kind_filters(capsys):
    docs = json.loads(run_cli(capsys, "--kind", "doc", "--json")[1])
    assert {e["id"] for e in docs["entries"]} == {e.id for e in catalog.load() if "doc" in e.kind}
    assert "1905.07457" in {e["id"] for e in docs["entries"]}
    verified = json.loads(run_cli(capsys, "--status", "verified", "--json")[1])
    assert verified["total"] == catalog.status_counts()["verified"]
    assert all(e["status"] == "verified" for e in verified["entries"])


def test_unknown_section_is_a_clean_error(capsys):
    code, out, err = run_cli(capsys, "--section", "9.9")
    assert code == 2 and out == ""
    assert "no section matches '9.9'" in err and "4.1 Optimizers" in err


def test_table_groups_entries_under_their_section_heading(capsys):
    code, out, _ = run_cli(capsys)
    assert code == 0
    entries = catalog.load()
    lines = out.splitlines()
    heading_rows = []
    for section in catalog.sections():
        count = sum(e.section == section for e in entries)
        (row,) = [i for i, line in enumerate(lines) if line.strip() == f"{section} ({count})"]
        heading_rows.append(row)
    assert heading_rows == sorted(heading_rows), "sections out of order"
    bounds = dict(zip(catalog.sections(), [*heading_rows[1:], len(lines)]))
    starts = dict(zip(catalog.sections(), heading_rows))
    for entry in entries:
        rows = [i for i, line in enumerate(lines) if line.split()[:1] == [entry.id]]
        assert len(rows) == 1, entry.id
        assert starts[entry.section] < rows[0] < bounds[entry.section], entry.id
    counts = catalog.status_counts()
    summary = " · ".join(f"{n} {s}" for s, n in counts.items())
    assert lines[-1].strip() == f"{len(entries)} entries: {summary}"


def test_show_json_has_every_field(capsys):
    code, out, _ = run_cli(capsys, "show", "1706.02677", "--json")
    assert code == 0
    data = json.loads(out)
    assert data == catalog.get("1706.02677").to_dict()
    assert data["kind"] == ["code", "check"]
    assert data["check"] == "1706.02677"
    assert "证明了大批次下 SGD 不稳定；" in data["note_zh"]


def test_show_prints_fields_and_how_to_run_the_check(capsys):
    code, out, _ = run_cli(capsys, "show", "1905.07457")
    assert code == 0
    assert "Overfitting in Synthesis" in out and "out of scope" in out
    code, out, _ = run_cli(capsys, "show", "1603.07285")
    assert "dlskills repro 1603.07285" in out and "implemented by" in out


def test_show_errors_are_clean(capsys):
    code, _, err = run_cli(capsys, "show", "adabound")
    assert code == 2 and "did you mean 1902.09843" in err
    code, _, err = run_cli(capsys, "show")
    assert code == 2 and "needs an ID" in err
    with pytest.raises(SystemExit) as exit_info:  # argparse: not `list`/`show`
        run_cli(capsys, "1902.09843")
    assert exit_info.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_verb_module_imports_nothing_heavy():
    probe = (
        "import sys, dlskills._cli.papers; "
        "heavy = {'torch', 'rich', 'dlskills.catalog'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
