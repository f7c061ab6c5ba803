"""The catalog (dlskills.catalog) against its sources: READING_LIST.md and the Chinese seed.

READING_LIST.md lives in the shared folder beside the clone (`<repo>/../shared/`), as in CI; the
tests that need it skip with a clear reason when it is absent.
"""

import dataclasses
import re
import sys
import types
from collections.abc import Sequence
from pathlib import Path

import pytest

from dlskills import catalog
from dlskills._registry import Registry

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
READING_LIST = SHARED / "READING_LIST.md"
SEED = SHARED / "seed" / "dl-foundation-reading-list.zh.md"

needs_reading_list = pytest.mark.skipif(
    not READING_LIST.exists(), reason=f"READING_LIST.md not found at {READING_LIST}"
)
needs_seed = pytest.mark.skipif(not SEED.exists(), reason=f"seed list not found at {SEED}")


def reading_list_rows() -> list[dict]:
    """Rows of READING_LIST.md's tables: id, kinds, 'what it becomes' and the enclosing heading
    (a parenthetical remark after the heading is not part of the section name)."""
    rows, section = [], None
    for line in READING_LIST.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^#{2,3} (.+)$", line)
        if heading:
            section = re.sub(r"\s*\(.*\)$", "", heading.group(1)).strip()
            continue
        if not line.startswith("| ") or line.startswith(("| id ", "|---")):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows.append(
            {
                "id": cells[0],
                "kind": tuple(k.strip() for k in cells[2].split("+")),
                "becomes": cells[3],
                "section": section,
            }
        )
    return rows


@needs_reading_list
def test_catalog_has_exactly_the_reading_list_ids():
    listed = [row["id"] for row in reading_list_rows()]
    assert len(listed) == len(set(listed)), "READING_LIST.md repeats an id"
    ids = [entry.id for entry in catalog.load()]
    assert set(ids) - set(listed) == set(), "catalog ids missing from READING_LIST.md"
    assert set(listed) - set(ids) == set(), "READING_LIST.md ids missing from the catalog"


@needs_reading_list
def test_catalog_rows_agree_with_reading_list_order_section_kind_and_plan():
    rows = reading_list_rows()
    entries = catalog.load()
    assert [e.id for e in entries] == [r["id"] for r in rows]
    for entry, row in zip(entries, rows):
        assert (entry.section, entry.kind, entry.becomes) == (
            row["section"],
            row["kind"],
            row["becomes"],
        ), entry.id


def test_validate_reports_no_problems():
    assert catalog.validate(catalog.load()) == []


def test_every_implemented_by_and_see_also_path_imports():
    for entry in catalog.load():
        for path in (*entry.implemented_by, *entry.see_also):
            assert catalog.resolve(path) is not None, f"{entry.id}: {path}"


def test_status_matches_implemented_by():
    for entry in catalog.load():
        if entry.status == "planned":
            assert not entry.implemented_by, entry.id
        elif set(entry.kind) != {"doc"}:  # a doc-only entry is delivered by its summary
            assert entry.implemented_by, entry.id


def test_entries_with_a_check_kind_name_their_reproduction():
    for entry in catalog.load():
        assert bool(entry.check) == ("check" in entry.kind), entry.id


@needs_seed
def test_chinese_notes_are_verbatim_lines_of_the_seed():
    seed_lines = {line.strip() for line in SEED.read_text(encoding="utf-8").splitlines()}
    with_notes = [e for e in catalog.load() if e.note_zh]
    assert len(with_notes) >= 20  # the seed annotates about a third of its entries
    for entry in with_notes:
        for line in entry.note_zh.splitlines():
            assert line in seed_lines, f"{entry.id}: {line!r} is not in the seed"


def test_arxiv_entries_link_their_abstract_page():
    arxiv = [e for e in catalog.load() if re.fullmatch(r"\d{4}\.\d{4,5}", e.id)]
    assert len(arxiv) > 50
    for entry in arxiv:
        assert dict(entry.links)["paper"] == f"https://arxiv.org/abs/{entry.id}"
    old_style = catalog.get("cond-mat-9901212")
    assert dict(old_style.links)["paper"] == "https://arxiv.org/abs/cond-mat/9901212"


def test_program_synthesis_paper_is_the_only_out_of_scope_entry():
    out = [e.id for e in catalog.load() if e.out_of_scope]
    assert out == ["1905.07457"]
    assert "program synthesis" in catalog.get("1905.07457").out_of_scope


def test_every_entry_has_a_summary_of_two_to_four_sentences():
    for entry in catalog.load():
        sentences = re.findall(r"[.!?](?:\s|$)", entry.summary)
        assert 2 <= len(sentences) <= 4, (entry.id, len(sentences))


def test_sections_are_contiguous_and_counts_add_up():
    entries = catalog.load()
    names = catalog.sections()
    assert names[0] == "1 Surveys" and names[-1] == "Appendix"
    # each section's entries form one block, in the order sections() reports
    blocks = [
        e.section for i, e in enumerate(entries) if i == 0 or entries[i - 1].section != e.section
    ]
    assert blocks == names
    counts = catalog.status_counts()
    assert list(counts) == list(catalog.STATUSES)
    assert sum(counts.values()) == len(entries)
    assert catalog.status_counts([]) == {"planned": 0, "implemented": 0, "verified": 0}


def test_load_is_cached_but_returns_a_fresh_list():
    first = catalog.load()
    first.clear()
    second = catalog.load()
    assert second and second[0] is catalog.load()[0]


def test_get_accepts_id_spellings_and_returns_the_entry():
    adabound = catalog.get("1902.09843")
    assert adabound.section == "4.1 Optimizers" and adabound.kind == ("code",)
    assert adabound.year == 2019 and "Dynamic Bound" in adabound.title
    assert catalog.get(" arXiv:1902.09843 ") is adabound
    assert catalog.get("COND-MAT/9901212").id == "cond-mat-9901212"
    assert catalog.get("Rumelhart-1986").id == "rumelhart-1986"


def test_get_unknown_id_suggests_close_ids_and_title_matches():
    with pytest.raises(ValueError, match=r"unknown catalog id '1902\.0984'.*1902\.09843"):
        catalog.get("1902.0984")
    with pytest.raises(ValueError, match=r"did you mean 1902\.09843"):
        catalog.get("adabound")
    with pytest.raises(ValueError, match=r"1412\.6980 \(Adam"):
        catalog.get("adam")
    with pytest.raises(ValueError, match="dlskills papers"):
        catalog.get("no-such-entry-xyz")
    with pytest.raises(TypeError, match="entry_id must be a string"):
        catalog.get(1902.09843)


def test_to_dict_is_json_ready():
    data = catalog.get("1902.09843").to_dict()
    assert data["kind"] == ["code"]
    assert "dlskills.optim.adabound.AdaBound" in data["implemented_by"]
    assert data["links"]["code"] == "https://github.com/Luolc/AdaBound"
    assert set(data) == {f.name for f in dataclasses.fields(catalog.Entry)}


def test_resolve_imports_modules_then_gets_attributes():
    assert catalog.resolve("dlskills.catalog.get") is catalog.get
    assert catalog.resolve("collections.abc.Sequence") is Sequence
    assert catalog.resolve("dlskills.catalog") is catalog
    with pytest.raises(AttributeError):
        catalog.resolve("dlskills.catalog.no_such_function")
    with pytest.raises(ModuleNotFoundError):
        catalog.resolve("no_such_top_level_package_xyz.thing")
    with pytest.raises(ValueError, match="non-empty"):
        catalog.resolve("")


def test_validate_flags_each_kind_of_problem():
    # an id with no reproduction registered under it (the status rule is tested below)
    good = dataclasses.replace(
        catalog.get("1902.09843"), id="x", status="planned", implemented_by=()
    )
    entries = [
        good,
        dataclasses.replace(good),  # duplicate id
        dataclasses.replace(good, id="k", kind=("code", "demo")),
        dataclasses.replace(good, id="e", kind=()),
        dataclasses.replace(good, id="s", status="done"),
        dataclasses.replace(good, id="i", status="implemented", implemented_by=()),
        dataclasses.replace(
            good, id="v", status="verified", implemented_by=("dlskills.catalog.get",)
        ),
        dataclasses.replace(good, id="p", implemented_by=("dlskills.catalog.load",)),
        dataclasses.replace(
            good,
            id="m",
            status="implemented",
            implemented_by=("dlskills.catalog.get", "dlskills.nope.X"),
        ),
        dataclasses.replace(good, id="a", see_also=("dlskills.catalog.missing_name",)),
        dataclasses.replace(
            good,
            id="ok",
            status="verified",
            implemented_by=("dlskills.catalog.validate",),
            check="1812.05994",  # a registered reproduction whose fast verdict is reproduced
        ),
        dataclasses.replace(
            good,
            id="c",
            status="implemented",
            implemented_by=("dlskills.catalog.validate",),
            check="any",
        ),
        dataclasses.replace(
            good,
            id="r",
            status="implemented",
            implemented_by=("dlskills.catalog.validate",),
            check="1812.05994",
        ),
        dataclasses.replace(good, id="t", check="tests/no/test_such_file.py"),
    ]
    problems = catalog.validate(entries)
    by_id = {}
    for problem in problems:
        by_id.setdefault(problem.split(":", 1)[0], []).append(problem)
    assert by_id["x"] == ["x: duplicate id"]
    assert by_id["k"] == ["k: unknown kind 'demo' (known: code, check, doc)"]
    assert by_id["e"] == ["e: kind is empty (use some of code, check, doc)"]
    assert by_id["s"] == ["s: unknown status 'done' (known: planned, implemented, verified)"]
    assert by_id["i"] == ["i: status 'implemented' but implemented_by is empty"]
    assert by_id["v"] == ["v: status 'verified' but no check is named"]
    assert by_id["p"] == ["p: status 'planned' but implemented_by is set"]
    assert len(by_id["m"]) == 1 and "'dlskills.nope.X' does not import" in by_id["m"][0]
    assert len(by_id["a"]) == 1 and "see_also path 'dlskills.catalog.missing_name'" in by_id["a"][0]
    assert by_id["c"] == ["c: check 'any' is neither a registered reproduction nor a test file"]
    assert by_id["r"] == [
        "r: check '1812.05994': its reproduction's fast verdict is 'reproduced', so the status "
        "is 'verified', not 'implemented'"
    ]
    assert by_id["t"] == ["t: check 'tests/no/test_such_file.py': no such test file"]
    assert "ok" not in by_id
    assert len(problems) == 12


def test_a_code_entry_takes_its_status_from_a_reproduction_registered_under_its_id():
    """A `code` row names no check (its kind has none), yet the claim of its paper may be
    checked by a reproduction registered under the row's own id: the status follows its fast
    verdict as for a `check` row, and `verified` needs it."""
    registered = catalog.get("1812.05994")  # reproduction registered, fast verdict reproduced
    code_row = dataclasses.replace(
        catalog.get("1902.09843"),
        id=registered.id,
        kind=("code",),
        check="",
        implemented_by=("dlskills.catalog.validate",),
    )
    assert catalog.reproduction_of(code_row) == "1812.05994"
    assert catalog.validate([dataclasses.replace(code_row, status="verified")]) == []
    assert catalog.validate([dataclasses.replace(code_row, status="implemented")]) == [
        "1812.05994: reproduction: its reproduction's fast verdict is 'reproduced', so the "
        "status is 'verified', not 'implemented'"
    ]
    unchecked = dataclasses.replace(code_row, id="no-such-reproduction", status="verified")
    assert catalog.reproduction_of(unchecked) is None
    assert catalog.validate([unchecked]) == [
        "no-such-reproduction: status 'verified' but no check is named"
    ]


def test_from_toml_rejects_malformed_entries():
    minimal = (
        'id = "x"\ntitle = "T"\nsection = "S"\nkind = ["code"]\n'
        'status = "planned"\nsummary = "A. B."\n'
    )
    (entry,) = catalog.from_toml("[[paper]]\n" + minimal)
    assert entry.year is None and entry.links == () and entry.implemented_by == ()
    with pytest.raises(ValueError, match=r"unknown field.*implemnted_by"):
        catalog.from_toml("[[paper]]\n" + minimal + "implemnted_by = []\n")
    with pytest.raises(ValueError, match=r"missing field.*summary"):
        catalog.from_toml("[[paper]]\n" + minimal.replace('summary = "A. B."\n', ""))
    with pytest.raises(ValueError, match="year must be an integer"):
        catalog.from_toml("[[paper]]\n" + minimal + 'year = "2019"\n')
    with pytest.raises(ValueError, match="kind must be a list of strings"):
        catalog.from_toml("[[paper]]\n" + minimal.replace('["code"]', "[1]"))
    with pytest.raises(ValueError, match="links must be a table"):
        catalog.from_toml("[[paper]]\n" + minimal + 'links = ["https://x"]\n')
    with pytest.raises(ValueError, match="not valid TOML"):
        catalog.from_toml("[[paper]\n")


def test_registry_links_finds_registries_by_type(monkeypatch):
    fake = types.ModuleType("fake_registry_pkg")
    reg = Registry("widget")
    reg.add("plain", len)  # no catalog id: not a link
    reg.add("linked", catalog.get, catalog_id="1902.09843")
    fake.WIDGETS = reg
    monkeypatch.setitem(sys.modules, "fake_registry_pkg", fake)
    monkeypatch.setattr(catalog, "REGISTRY_PACKAGES", ("fake_registry_pkg", "dlskills.not_there"))
    assert catalog.registry_links() == [("1902.09843", "dlskills.catalog.get")]


def test_every_registered_component_is_listed_in_its_catalog_entry():
    ids = {entry.id for entry in catalog.load()}
    unlisted = []
    for catalog_id, path in catalog.registry_links():
        assert catalog_id in ids, f"{path} is registered under unknown catalog id {catalog_id!r}"
        listed = {id(catalog.resolve(p)) for p in catalog.get(catalog_id).implemented_by}
        if id(catalog.resolve(path)) not in listed:
            unlisted.append((catalog_id, path))
    assert unlisted == []
