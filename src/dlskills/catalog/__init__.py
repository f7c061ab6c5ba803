"""The reading list as data (READING_LIST.md, one ``[[paper]]`` table per row in ``papers.toml``).

``load()`` returns every entry in reading-list order; ``get(id)`` one entry; ``sections()`` and
``status_counts()`` summarise; ``validate(entries)`` lists what is inconsistent (unknown kind or
status, duplicate ids, an ``implemented``/``verified`` status without code behind it, dotted paths
that do not import, ``verified`` without a check). ``registry_links()`` walks the project's
component registries so tests can check that every registered component appears in its entry.

Status of an entry:
  planned      nothing in dlskills implements it yet (``implemented_by`` is empty)
  implemented  ``implemented_by`` names the code (dotted paths that import)
  verified     implemented, and ``check`` (or a reproduction registered under the entry's id)
               names the reproduction/test that verifies its claim

``check`` is the id of a registered reproduction (``dlskills.repro``: usually the entry's own id),
a test file of the checkout, or (not verified yet) the entry's own id; an entry has one exactly
when its kind includes ``check``. A ``code`` entry whose paper's claim is also checked has a
reproduction registered under its own id instead (``reproduction_of``). With a reproduction the
status follows from it: ``verified`` exactly when its fast verdict (declared at registration and
asserted by its test) is ``reproduced``, otherwise ``implemented``.

The TOML is read with ``importlib.resources`` so the catalog also works from an installed wheel.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

KINDS = ("code", "check", "doc")
STATUSES = ("planned", "implemented", "verified")

# Packages whose registries (instances of dlskills._registry.Registry) map components to catalog
# ids. Missing packages are skipped: each exists once its part of the library lands.
REGISTRY_PACKAGES = (
    "dlskills.optim",
    "dlskills.nn",
    "dlskills.init",
    "dlskills.models",
    "dlskills.data",
    "dlskills.train",
    "dlskills.train.callbacks",
    "dlskills.diagnose",
    "dlskills.distributed",
    "dlskills.repro",
)


@dataclass(frozen=True)
class Entry:
    """One row of the reading list. Sequences are tuples so entries are immutable and hashable."""

    id: str
    title: str
    section: str
    year: int | None
    kind: tuple[str, ...]
    status: str
    implemented_by: tuple[str, ...] = ()
    check: str = ""
    authors: tuple[str, ...] = ()
    venue: str = ""
    links: tuple[tuple[str, str], ...] = ()
    summary: str = ""
    becomes: str = ""
    note_zh: str = ""
    seed_section: str = ""
    see_also: tuple[str, ...] = ()
    out_of_scope: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (lists for tuples, ``links`` as a label -> URL mapping)."""
        data = asdict(self)
        for name, value in data.items():
            if isinstance(value, tuple):
                data[name] = list(value)
        data["links"] = dict(self.links)
        return data


_REQUIRED = ("id", "title", "section", "kind", "status", "summary")
_TUPLE_FIELDS = ("kind", "implemented_by", "authors", "see_also")
_KNOWN = {f.name for f in fields(Entry)}


def _entry_from_table(table: dict[str, Any], position: int) -> Entry:
    where = f"papers.toml entry {position} ({table.get('id', 'no id')!r})"
    unknown = sorted(set(table) - _KNOWN)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    missing = [name for name in _REQUIRED if name not in table]
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
    values = dict(table)
    for name in _TUPLE_FIELDS:
        value = values.get(name, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{where}: {name} must be a list of strings")
        values[name] = tuple(value)
    links = values.get("links", {})
    if not isinstance(links, dict) or not all(isinstance(u, str) for u in links.values()):
        raise ValueError(f"{where}: links must be a table of label = URL strings")
    values["links"] = tuple(links.items())
    year = values.get("year")
    if year is not None and (isinstance(year, bool) or not isinstance(year, int)):
        raise ValueError(f"{where}: year must be an integer, got {year!r}")
    values["year"] = year
    for name in _KNOWN - set(_TUPLE_FIELDS) - {"links", "year"}:
        if name in values and not isinstance(values[name], str):
            raise ValueError(f"{where}: {name} must be a string")
    return Entry(**values)


def from_toml(text: str) -> list[Entry]:
    """Parse catalog TOML (``[[paper]]`` tables). Structural errors raise ValueError; semantic
    inconsistencies are reported by :func:`validate`."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"papers.toml is not valid TOML: {exc}") from exc
    tables = document.get("paper", [])
    if not isinstance(tables, list):
        raise ValueError("papers.toml must consist of [[paper]] tables")
    return [_entry_from_table(table, i + 1) for i, table in enumerate(tables)]


@functools.cache
def _load_cached() -> tuple[Entry, ...]:
    text = resources.files(__name__).joinpath("papers.toml").read_text(encoding="utf-8")
    return tuple(from_toml(text))


def load() -> list[Entry]:
    """All entries, in reading-list order (parsed once; a new list each call)."""
    return list(_load_cached())


def _normalise_id(query: str) -> str:
    query = query.strip().lower()
    query = query.removeprefix("arxiv:")
    return query.replace("/", "-")


def get(entry_id: str) -> Entry:
    """The entry with id ``entry_id`` (case-insensitive; ``arXiv:`` prefix and
    ``cond-mat/9901212``-style ids accepted). Unknown ids raise ValueError naming close matches,
    including entries whose title or summary contains the query (``get("adabound")`` suggests
    1902.09843)."""
    if not isinstance(entry_id, str):
        raise TypeError(f"entry_id must be a string, got {type(entry_id).__name__}")
    entries = load()
    by_id = {entry.id.lower(): entry for entry in entries}
    key = _normalise_id(entry_id)
    if key in by_id:
        return by_id[key]
    suggestions = difflib.get_close_matches(key, list(by_id), n=3, cutoff=0.6)
    words = key.replace("-", " ").split()
    # entries naming the query in their title first, then in their summary
    for text_of in (lambda e: e.title, lambda e: e.summary):
        for entry in entries:
            text = text_of(entry).lower()
            if words and all(w in text for w in words) and entry.id.lower() not in suggestions:
                suggestions.append(entry.id.lower())
    hint = ""
    if suggestions:
        named = [f"{by_id[s].id} ({by_id[s].title})" for s in suggestions[:5]]
        hint = f"; did you mean {', '.join(named)}?"
    raise ValueError(
        f"unknown catalog id {entry_id!r}{hint} (`dlskills papers` lists all {len(entries)} ids)"
    )


def sections(entries: Iterable[Entry] | None = None) -> list[str]:
    """Section names in order of first appearance."""
    return list(dict.fromkeys(entry.section for entry in (load() if entries is None else entries)))


def status_counts(entries: Iterable[Entry] | None = None) -> dict[str, int]:
    """Number of entries per status, every status present (zero counts included)."""
    counts = dict.fromkeys(STATUSES, 0)
    for entry in load() if entries is None else entries:
        counts[entry.status] = counts.get(entry.status, 0) + 1
    return counts


def resolve(dotted_path: str) -> Any:
    """The object at ``dotted_path``: import the longest importable module prefix, then getattr
    the rest. Raises ImportError (module fails to import) or AttributeError (name missing)."""
    if not isinstance(dotted_path, str) or not dotted_path.strip():
        raise ValueError(f"dotted path must be a non-empty string, got {dotted_path!r}")
    parts = dotted_path.split(".")
    obj = importlib.import_module(parts[0])
    for i in range(1, len(parts)):
        module_name = ".".join(parts[: i + 1])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise  # the module exists but one of its own imports is missing
            for attribute in parts[i:]:
                obj = getattr(obj, attribute)
            return obj
    return obj


def _path_problem(entry_id: str, field_name: str, path: str) -> str | None:
    try:
        resolve(path)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        return f"{entry_id}: {field_name} path {path!r} does not import ({reason})"
    return None


def _tests_folder() -> Path | None:
    """The checkout's tests/ folder (None when dlskills runs from an installed wheel)."""
    folder = Path(__file__).resolve().parents[3] / "tests"
    return folder if folder.is_dir() else None


def reproduction_of(entry: Entry) -> str | None:
    """The id of the registered reproduction that checks ``entry``: its ``check`` when that is
    registered, else its own id when a reproduction is registered under it (a ``code`` entry
    whose paper's claim is checked too), else None."""
    from dlskills import repro

    for candidate in (entry.check, entry.id):
        if candidate and repro.is_registered(candidate):
            return candidate
    return None


def _status_problems(entry: Entry, reproduction: str, where: str) -> list[str]:
    """The status follows from a registered reproduction: ``verified`` exactly when its declared
    (and tested) fast verdict is ``reproduced``, ``implemented`` otherwise."""
    from dlskills import repro

    verdict = repro.fast_verdict(reproduction)
    expected = "verified" if verdict == "reproduced" else "implemented"
    if entry.status != expected:
        return [
            f"{where}: its reproduction's fast verdict is {verdict!r}, so the status is "
            f"{expected!r}, not {entry.status!r}"
        ]
    return []


def _check_problems(entry: Entry) -> list[str]:
    """A check names a registered reproduction (``dlskills.repro``), a test file of the checkout,
    or, for a planned entry, its own id (the reproduction to come)."""
    from dlskills import repro

    where = f"{entry.id}: check {entry.check!r}"
    if repro.is_registered(entry.check):
        return _status_problems(entry, entry.check, where)
    if entry.check.startswith("tests/") and entry.check.endswith(".py"):
        tests = _tests_folder()
        if tests is not None and not (tests.parent / entry.check).is_file():
            return [f"{where}: no such test file"]
        return []
    if entry.check == entry.id and entry.status != "verified":
        return []  # a reproduction still to come
    return [f"{where} is neither a registered reproduction nor a test file"]


def validate(entries: Sequence[Entry]) -> list[str]:
    """Problems in ``entries`` (an empty list when the catalog is consistent)."""
    problems: list[str] = []
    seen: set[str] = set()
    for entry in entries:
        if entry.id in seen:
            problems.append(f"{entry.id}: duplicate id")
        seen.add(entry.id)
        if not entry.kind:
            problems.append(f"{entry.id}: kind is empty (use some of {', '.join(KINDS)})")
        for kind in entry.kind:
            if kind not in KINDS:
                problems.append(f"{entry.id}: unknown kind {kind!r} (known: {', '.join(KINDS)})")
        if entry.status not in STATUSES:
            problems.append(
                f"{entry.id}: unknown status {entry.status!r} (known: {', '.join(STATUSES)})"
            )
        # a doc-only entry is delivered by its summary (and see_also); others need code
        doc_only = set(entry.kind) == {"doc"}
        delivered = entry.status in ("implemented", "verified")
        if delivered and not doc_only and not entry.implemented_by:
            problems.append(f"{entry.id}: status {entry.status!r} but implemented_by is empty")
        if entry.status != "planned" and doc_only and not entry.summary.strip():
            problems.append(f"{entry.id}: doc entry marked {entry.status!r} has no summary")
        if entry.status == "planned" and entry.implemented_by:
            problems.append(f"{entry.id}: status 'planned' but implemented_by is set")
        reproduction = reproduction_of(entry)
        if entry.status == "verified" and not entry.check and reproduction is None:
            problems.append(f"{entry.id}: status 'verified' but no check is named")
        if entry.check:
            problems += _check_problems(entry)
        elif reproduction is not None:
            problems += _status_problems(entry, reproduction, f"{entry.id}: reproduction")
        for field_name in ("implemented_by", "see_also"):
            for path in getattr(entry, field_name):
                problem = _path_problem(entry.id, field_name, path)
                if problem:
                    problems.append(problem)
    return problems


def registries() -> list[Any]:
    """Every project registry that exists (instances of dlskills._registry.Registry found by
    type in REGISTRY_PACKAGES and their ``_registry`` modules)."""
    from dlskills._registry import Registry

    found: dict[int, Registry] = {}
    for package in REGISTRY_PACKAGES:
        for module_name in (package, f"{package}._registry"):
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name == module_name or module_name.startswith(f"{exc.name}."):
                    continue  # this part of the library does not exist (yet)
                raise
            for value in vars(module).values():
                if isinstance(value, Registry):
                    found[id(value)] = value
    return list(found.values())


def registry_links() -> list[tuple[str, str]]:
    """(catalog_id, dotted_path) for every registered component that names a catalog id, across
    all project registries (``registries()``). The dotted path is the object's defining module
    and qualname."""
    links = {
        (entry.catalog_id, entry.dotted_path)
        for registry in registries()
        # reproductions are linked through an entry's `check`, not its implemented_by
        if registry.kind != "reproduction"
        for entry in registry.entries()
        if entry.catalog_id
    }
    return sorted(links)


__all__ = [
    "KINDS",
    "STATUSES",
    "Entry",
    "from_toml",
    "get",
    "load",
    "registries",
    "registry_links",
    "reproduction_of",
    "resolve",
    "sections",
    "status_counts",
    "validate",
]
