"""The reading list as a static site (``dlskills report --site DIR``).

``build_site(folder, results=..., runs=...)`` writes:

    index.html              the 75 entries grouped by section; filter by section / status /
                            kind and search (static/site.js, no framework)
    entries/<id>.html       one page per entry: summary, the Chinese note of the seed list, links,
                            what it became in dlskills (API objects, CLI commands, docs pages),
                            the implementing source annotated with its docstrings (equations by
                            KaTeX), and, where RESULTS holds <id>/result.json, the claim against
                            the measured numbers, the verdict, the figures and the run record
    runs/<name>/index.html  one page per run folder (dlskills train / doctor): summary, metrics
                            plots and table, configuration, diagnosis
    docs/<page>.html        the checkout's docs/ pages, when the source checkout is present
    static/                 stylesheet, script, KaTeX (shipped in the package)

Everything is local: no CDN, no request at view time, pages open from ``file://``. Results
folders follow docs RESULT_SCHEMA (``result.json`` per entry); one that is missing or malformed
is reported by name and skipped.
"""

from __future__ import annotations

import csv
import html
import importlib
import inspect
import json
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from dlskills import __version__, catalog
from dlskills.report import annotated_source

VERDICTS = ("reproduced", "partial", "not reproduced")

# registry kind -> the `dlskills train` option that selects a component of that kind
_TRAIN_OPTIONS = {
    "optimizer": "--optimizer",
    "schedule": "--schedule",
    "activation": "--activation",
    "normalization": "--norm",
    "initializer": "--init",
    "model": "--model",
    "dataset": "--dataset",
    "strategy": "--strategy",
}


@dataclass
class SiteReport:
    """What ``build_site`` wrote and what it skipped (one line per skipped input)."""

    index: Path
    entries: int
    results: int
    runs: int
    skipped: list[str] = field(default_factory=list)


def slug(text: str) -> str:
    """A file name for an id or run name (letters, digits, ``.``, ``_``, ``-``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


# ---- inputs ------------------------------------------------------------------------------------


def _check_result(data: Any, known_ids: set[str]) -> str | None:
    """Why ``data`` is not a usable result.json, or None."""
    if not isinstance(data, dict):
        return "not a JSON object"
    if not isinstance(data.get("id"), str) or data["id"] not in known_ids:
        return f"unknown catalog id {data.get('id')!r}"
    if data.get("verdict") not in VERDICTS:
        return f"verdict {data.get('verdict')!r} is not one of {', '.join(VERDICTS)}"
    if not isinstance(data.get("claim"), dict):
        return "claim is not an object"
    measured = data.get("measured")
    if not isinstance(measured, list) or not all(
        isinstance(row, dict) and isinstance(row.get("name"), str) for row in measured
    ):
        return "measured is not a list of rows with a name"
    for key in ("thresholds", "figures"):
        if not isinstance(data.get(key, []), list):
            return f"{key} is not a list"
    if not all(isinstance(f, str) for f in data.get("figures", [])):
        return "figures is not a list of paths"
    if not isinstance(data.get("run", {}), dict):
        return "run is not an object"
    return None


def _with_defaults(result: dict[str, Any]) -> dict[str, Any]:
    """The result with every optional field present, so templates need no guards."""
    result = {"scale": "", "reason": "", "wall_time_s": None, "run": {}, **result}
    result["claim"] = {"text": "", "value": "", "source": "", **result["claim"]}
    result["measured"] = [
        {"unit": "", "mean": None, "std": None, "seeds": None, **row} for row in result["measured"]
    ]
    result["thresholds"] = [
        {"quantity": "", "op": "", "value": None, "why": "", **row}
        for row in result.get("thresholds", [])
        if isinstance(row, dict)
    ]
    result.setdefault("figures", [])
    return result


def load_results(folder: str | Path) -> tuple[dict[str, tuple[dict[str, Any], Path]], list[str]]:
    """{id: (result, its folder)} from ``folder`` (one ``dlskills repro --out`` folder, or the
    ``--all`` folder of ``<id>/result.json``) and one line per folder skipped and why."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"--results {root}: no such folder")
    known = {entry.id for entry in catalog.load()}
    candidates = [root] if (root / "result.json").exists() else []
    candidates += sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    found: dict[str, tuple[dict[str, Any], Path]] = {}
    skipped: list[str] = []
    for candidate in candidates:
        path = candidate / "result.json"
        if not path.is_file():
            skipped.append(f"{candidate}: no result.json")
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            skipped.append(f"{path}: malformed ({exc})")
            continue
        problem = _check_result(data, known)
        if problem:
            skipped.append(f"{path}: malformed ({problem})")
            continue
        found[data["id"]] = (_with_defaults(data), candidate)
    return found, skipped


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _check_run_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise FileNotFoundError(f"--runs {folder}: no such folder")
    if not any((folder / name).is_file() for name in ("config.json", "diagnosis.json")):
        raise ValueError(
            f"--runs {folder}: not a run folder (no config.json from `dlskills train` "
            "or diagnosis.json from `dlskills doctor`)"
        )


# ---- what an entry became ----------------------------------------------------------------------


def _module_of(dotted_path: str) -> Any:
    """The module that defines ``dotted_path`` (the path itself when it names a module)."""
    obj = catalog.resolve(dotted_path)
    if inspect.ismodule(obj):
        return obj
    module = inspect.getmodule(obj)
    if module is not None and module.__name__.startswith("dlskills"):
        return module
    parts = dotted_path.split(".")  # an instance (a registry, a partial): its longest module
    for end in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:end])
        if name in sys.modules:
            return sys.modules[name]
    return importlib.import_module(parts[0])


def _first_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def _api_item(dotted_path: str) -> dict[str, Any]:
    try:
        obj = catalog.resolve(dotted_path)
        module = _module_of(dotted_path)
    except Exception as exc:  # the catalog validator reports these; the page says so too
        return {
            "path": dotted_path,
            "kind": "does not import",
            "doc": str(exc),
            "module": None,
            "anchor": None,
        }
    kind = (
        "module"
        if inspect.ismodule(obj)
        else "class"
        if inspect.isclass(obj)
        else "function"
        if callable(obj)
        else type(obj).__name__
    )
    return {
        "path": dotted_path,
        "kind": kind,
        "doc": _first_line(obj),
        "module": module,
        "anchor": None,
    }


def _link_definitions(api: list[dict[str, Any]], sources: list[dict[str, Any]]) -> None:
    """Point each API item at its definition in the annotated source, when it is shown there."""
    defined = {
        (source["module"], name)
        for source in sources
        for block in source["blocks"]
        for name in block.anchors
    }
    for item in api:
        if item["module"] is None:
            continue
        key = (item["module"].__name__, item["path"].rsplit(".", 1)[-1])
        if key in defined:
            item["anchor"] = f"src-{key[0]}-{key[1]}"


@cache
def _registered() -> dict[str, list[tuple[str, str]]]:
    """{catalog id: [(registry kind, component name), ...]} over the project's registries."""
    named: dict[str, list[tuple[str, str]]] = {}
    for registry in catalog.registries():
        for item in registry.entries():
            if item.catalog_id:
                named.setdefault(item.catalog_id, []).append((registry.kind, item.name))
    return named


def _cli_commands(entry: catalog.Entry, has_result: bool) -> list[str]:
    commands = [f"dlskills papers show {entry.id}"]
    for kind, name in _registered().get(entry.id, []):
        if kind in _TRAIN_OPTIONS:
            commands.append(f"dlskills train {_TRAIN_OPTIONS[kind]} {name}")
    if entry.check or has_result or catalog.reproduction_of(entry):
        commands.append(f"dlskills repro {entry.id}")
    return list(dict.fromkeys(commands))


def _docs_folder() -> Path | None:
    """The checkout's docs/ (absent from a wheel: the site then names no docs pages)."""
    from dlskills._cli._checkout import checkout_folder

    try:
        folder = checkout_folder("docs")
    except FileNotFoundError:
        return None
    return folder if (folder / "reading_list.md").is_file() else None


def _docs_for(entry: catalog.Entry, docs: dict[str, str]) -> list[str]:
    """Docs pages that name the entry's id or one of its implementing paths."""
    needles = [entry.id, *entry.implemented_by]
    return [name for name, text in docs.items() if any(n in text for n in needles)]


# ---- rendering ---------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("dlskills.report", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = _fmt
    env.filters["op"] = lambda op: _OPERATORS.get(op, op)
    env.filters["cell"] = _cell
    env.globals["version"] = __version__
    env.filters["slug"] = slug
    env.filters["inline"] = lambda text: markupsafe.Markup(annotated_source.inline_html(text))
    return env


_OPERATORS = {">=": "≥", "<=": "≤", "!=": "≠", "==": "="}


def _cell(text: str) -> str:
    """A metrics.csv cell: numbers to 4 significant digits, anything else as written."""
    try:
        return _fmt(float(text)) if "." in text or "e" in text.lower() else text
    except ValueError:
        return text


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _copy_static(folder: Path) -> None:
    static = resources.files("dlskills.report").joinpath("static")
    with resources.as_file(static) as source:
        shutil.copytree(source, folder / "static", dirs_exist_ok=True)


def _copy_figures(
    result: dict[str, Any], source: Path, target: Path, skipped: list[str]
) -> list[str]:
    """Copy the result's figures into ``target``; names of those copied (missing ones and paths
    that leave the result folder are reported and left out, so no page shows a broken image)."""
    copied = []
    for name in result.get("figures", []):
        path = (source / name).resolve()
        if Path(name).is_absolute() or source.resolve() not in path.parents:
            skipped.append(f"{source / 'result.json'}: figure {name!r} is outside its folder")
            continue
        if not path.is_file():
            skipped.append(f"{source / 'result.json'}: figure {name!r} does not exist")
            continue
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        copied.append(name)
    return copied


def _thresholds_by_quantity(result: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    table: dict[str, list[dict[str, Any]]] = {}
    for threshold in result.get("thresholds", []):
        if isinstance(threshold, dict):
            table.setdefault(str(threshold.get("quantity")), []).append(threshold)
    return table


def _sources(modules: list[Any]) -> list[dict[str, Any]]:
    sources = []
    for module in dict.fromkeys(modules):  # each module once, in first-named order
        try:
            path = inspect.getsourcefile(module)
        except TypeError:
            path = None
        if path is None or not Path(path).is_file():
            continue
        sources.append({"module": module.__name__, "blocks": _annotated(path)})
    return sources


@cache
def _annotated(path: str) -> list[annotated_source.Block]:
    return annotated_source.annotate(path)


def _metrics(folder: Path) -> tuple[list[str], list[dict[str, str]]]:
    path = folder / "metrics.csv"
    if not path.is_file():
        return [], []
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return (list(rows[0]) if rows else []), rows


def _diagnosis(data: Any) -> dict[str, Any] | None:
    """A doctor's diagnosis.json with the fields its page shows (None when absent or unusable)."""
    if not isinstance(data, dict):
        return None
    checks = [
        {"name": "", "verdict": "", "value": None, "threshold": None, "message": "", **check}
        for check in data.get("checks", [])
        if isinstance(check, dict)
    ]
    return {"verdict": str(data.get("verdict", "")), "checks": checks}


def _run_page(folder: Path, target: Path) -> dict[str, Any]:
    """Copy a run folder's figures into ``target`` and return what its page shows."""
    from dlskills.report.run_report import plot_curves

    target.mkdir(parents=True, exist_ok=True)
    columns, rows = _metrics(folder)
    figures = []
    for png in sorted(folder.glob("*.png")):
        shutil.copyfile(png, target / png.name)
        figures.append(png.name)
    if not figures and rows:  # an interrupted run has metrics but no plots yet
        history = [
            {k: float(v) if v not in ("", None) else None for k, v in row.items()} for row in rows
        ]
        for name, keys, label, percent in (
            ("loss.png", ("train_loss", "val_loss"), "loss", False),
            ("accuracy.png", ("train_accuracy", "val_accuracy"), "accuracy (%)", True),
        ):
            title = f"{label.split(' ')[0].capitalize()} per epoch: run {folder.name}"
            if plot_curves(history, keys, label, target / name, title=title, percent=percent):
                figures.append(name)
    doctor = folder / "doctor" if (folder / "doctor" / "diagnosis.json").is_file() else folder
    diagnosis = _read_json(doctor / "diagnosis.json")
    doctor_figures = []
    if doctor != folder and diagnosis is not None:
        (target / "doctor").mkdir(exist_ok=True)
        for png in sorted(doctor.glob("*.png")):
            shutil.copyfile(png, target / "doctor" / png.name)
            doctor_figures.append(f"doctor/{png.name}")
    summary = _read_json(folder / "summary.json") or {}
    return {
        "name": folder.name,
        "source": str(folder),
        "config": _read_json(folder / "config.json") or {},
        "summary": {k: v for k, v in summary.items() if k != "environment"},
        "environment": summary.get("environment", {}),
        "columns": columns,
        "rows": rows,
        "figures": figures,
        "diagnosis": _diagnosis(diagnosis),
        "doctor_figures": doctor_figures,
    }


def _render_docs(docs_folder: Path, target: Path, env: jinja2.Environment) -> dict[str, str]:
    """Render the checkout's docs/*.md into ``target``; {page name: markdown text}."""
    from markdown_it import MarkdownIt

    markdown = MarkdownIt("commonmark").enable("table")
    pages = {p.stem: p.read_text(encoding="utf-8") for p in sorted(docs_folder.glob("*.md"))}

    def local_link(match: re.Match[str]) -> str:
        href, text = match[1], match[2]
        if re.match(r"[a-z]+:|#", href):
            return match[0]
        page, _, fragment = href.partition("#")
        if page.endswith(".md") and Path(page).stem in pages and "/" not in page:
            anchor = f"#{fragment}" if fragment else ""
            return f'<a href="{Path(page).stem}.html{anchor}">{text}</a>'
        return text  # a path into the repository: not part of the site

    target.mkdir(parents=True, exist_ok=True)
    template = env.get_template("doc.html")
    for name, text in pages.items():
        body = markdown.render(text)
        body = re.sub(r'<a href="([^"]*)">(.*?)</a>', local_link, body, flags=re.S)
        for image in re.findall(r'<img src="([^":]+)"', body):
            source = docs_folder / html.unescape(image)
            if source.is_file():
                (target / image).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target / image)
        page = template.render(root="../", title=name, body=body, pages=list(pages))
        (target / f"{name}.html").write_text(page, encoding="utf-8")
    return pages


def _writable_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".dlskills-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"--site {folder}: cannot write there ({exc.strerror})") from exc


def build_site(
    folder: str | Path,
    *,
    results: str | Path | None = None,
    runs: Sequence[str | Path] = (),
    docs: str | Path | bool | None = True,
) -> SiteReport:
    """Write the site into ``folder``. ``docs``: a docs/ folder to include, True for the source
    checkout's (when there is one), False/None for none. Inputs are checked before anything is
    written: a missing results or run folder is an error; a results subfolder without a valid
    result.json is skipped and named in ``SiteReport.skipped``."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--site {folder}: is a file, not a folder")
    run_folders = [Path(r) for r in runs]
    for run in run_folders:
        _check_run_folder(run)
    found, skipped = load_results(results) if results is not None else ({}, [])
    docs_folder = _docs_folder() if docs is True else Path(docs) if docs else None
    _writable_folder(folder)

    env = _environment()
    _copy_static(folder)
    docs_text = _render_docs(docs_folder, folder / "docs", env) if docs_folder else {}

    run_pages = []
    used_names: set[str] = set()
    for run in run_folders:
        name = slug(run.name)
        while name in used_names:
            name += "-"
        used_names.add(name)
        page = _run_page(run, folder / "runs" / name)
        page["slug"] = name
        run_pages.append(page)

    entries = catalog.load()
    rows = []
    entry_template = env.get_template("entry.html")
    (folder / "entries").mkdir(exist_ok=True)
    for entry in entries:
        result, figures = None, []
        if entry.id in found:
            result, source = found[entry.id]
            figures = _copy_figures(result, source, folder / "results" / slug(entry.id), skipped)
        api = [_api_item(path) for path in entry.implemented_by]
        see_also = [_api_item(path) for path in entry.see_also]
        sources = _sources([item["module"] for item in api if item["module"]])
        _link_definitions(api, sources)
        page = {
            "entry": entry,
            "slug": slug(entry.id),
            "api": api,
            "see_also": see_also,
            "cli": _cli_commands(entry, result is not None),
            "docs": _docs_for(entry, docs_text),
            "sources": sources,
            "result": result,
            "thresholds": _thresholds_by_quantity(result) if result else {},
            "figures": figures,
        }
        (folder / "entries" / f"{page['slug']}.html").write_text(
            entry_template.render(root="../", **page), encoding="utf-8"
        )
        rows.append(page)

    for page in run_pages:
        (folder / "runs" / page["slug"] / "index.html").write_text(
            env.get_template("run.html").render(root="../../", run=page), encoding="utf-8"
        )

    sections = catalog.sections(entries)
    index = folder / "index.html"
    index.write_text(
        env.get_template("index.html").render(
            root="",
            sections=[(s, [r for r in rows if r["entry"].section == s]) for s in sections],
            counts=catalog.status_counts(entries),
            total=len(entries),
            kinds=catalog.KINDS,
            statuses=catalog.STATUSES,
            runs=run_pages,
            docs=list(docs_text),
            results=len(found),
        ),
        encoding="utf-8",
    )
    return SiteReport(index, len(entries), len(found), len(run_pages), skipped)
