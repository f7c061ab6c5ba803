"""The generated site in a real browser: Playwright driving the system's chromium (Debian's
``chromium`` package; Playwright's own browser download is not used). Opens the pages from
``file://``: every page loads without a console error, a failed request, a broken image or a
link to a missing file; the index's filters and search work; equations are typeset by KaTeX.

Regenerate the README's screenshots (docs/figures/site.png, the index, and site_entry.png,
the annotated AdaBound source) from the real catalog with:

    make site-png        # = python tests/report/test_site_browser.py docs/figures/site.png
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from dlskills import catalog

CHROMIUM = shutil.which("chromium")
VIEWPORT = {"width": 1280, "height": 860}


def open_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])


class PageProblems:
    """Console errors, uncaught exceptions and failed requests of one browser page."""

    def __init__(self, page) -> None:
        self.found: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.found.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.found.append(f"exception: {e}"))
        page.on("requestfailed", lambda r: self.found.append(f"request failed: {r.url}"))

    def take(self) -> list[str]:
        found, self.found = self.found, []
        return found


_PAGE_FACTS = """() => ({
  broken: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))
                .map(i => i.getAttribute('src')),
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  ids: Array.from(document.querySelectorAll('[id]')).map(e => e.id),
  typeset: document.querySelectorAll('.eq-tex .katex').length,
  untypeset: document.querySelectorAll('.eq-plain').length,
  pending: Array.from(document.querySelectorAll('.eq[data-tex]:not(.eq-tex):not(.eq-plain)'))
                .filter(e => !e.closest('details:not([open])')).length,
})"""


def _missing_targets(facts: dict, page_url: str) -> list[str]:
    """Local links whose file does not exist, and same-page #anchors that name no element."""
    missing = []
    for href in facts["links"]:
        url = urlparse(href)
        if url.scheme != "file":
            continue  # paper links leave the site on purpose
        if url.fragment and href.split("#")[0] == page_url.split("#")[0]:
            if url.fragment not in facts["ids"]:
                missing.append(href)
        elif not Path(unquote(url.path)).is_file():
            missing.append(href)
    return missing


def take_screenshot(page, html_page: Path, png: Path, scroll_to: str | None = None) -> Path:
    """Screenshot of a site page (its top, or from the element ``scroll_to``) into ``png``."""
    page.set_viewport_size(VIEWPORT)
    page.goto(html_page.resolve().as_uri())
    if scroll_to:
        page.locator(scroll_to).first.evaluate("el => el.scrollIntoView()")
    png.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(png))
    return png


@pytest.fixture(scope="module")
def browser_page():
    if CHROMIUM is None:
        pytest.skip("no `chromium` executable on PATH (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install '.[dev]')"
    )
    with sync_api.sync_playwright() as playwright:
        browser = open_browser(playwright)
        page = browser.new_page(viewport=VIEWPORT)
        yield page, PageProblems(page)
        browser.close()


def test_every_page_loads_cleanly(browser_page, built_site):
    page, problems = browser_page
    site, _, _ = built_site
    pages = [
        site / "index.html",
        *sorted((site / "entries").glob("*.html")),
        *sorted((site / "runs").glob("*/index.html")),
        *sorted((site / "docs").glob("*.html")),
    ]
    assert len(pages) >= 1 + 75 + 1
    failures = {}
    typeset = 0
    for path in pages:
        url = path.as_uri()
        page.goto(url)  # returns once the page and its images, styles and scripts loaded
        facts = page.evaluate(_PAGE_FACTS)
        found = problems.take()
        found += [f"broken image: {src}" for src in facts["broken"]]
        found += [f"missing link target: {href}" for href in _missing_targets(facts, url)]
        if facts["untypeset"] or facts["pending"]:
            found.append(
                f"formulas KaTeX failed on: {facts['untypeset']}, left: {facts['pending']}"
            )
        if found:
            failures[path.relative_to(site).as_posix()] = found
        typeset += facts["typeset"]
    assert failures == {}
    assert typeset > 50  # the docstrings' update rules, typeset by the shipped KaTeX


def test_adabound_rule_is_typeset_by_katex(browser_page, built_site):
    page, problems = browser_page
    site, _, _ = built_site
    page.goto((site / "entries" / "1902.09843.html").as_uri())
    facts = page.evaluate(_PAGE_FACTS)
    assert facts["typeset"] >= 8 and facts["untypeset"] == 0
    # KaTeX's own fonts (shipped as woff2) are what the formulas are drawn with
    assert page.evaluate("document.fonts.check('16px KaTeX_Main')")
    assert problems.take() == []


_PENDING = ".eq[data-tex]:not(.eq-tex):not(.eq-plain)"


def test_formulas_in_a_closed_module_are_typeset_when_it_opens(browser_page, built_site):
    page, problems = browser_page
    site, _, _ = built_site
    # the entry whose second implementing module has the most formulas
    best = max(
        (site / "entries").glob("*.html"),
        key=lambda p: "".join(p.read_text("utf-8").split('<details class="module">')[2:]).count(
            "data-tex"
        ),
    )
    page.goto(best.as_uri())
    pending = page.eval_on_selector_all(_PENDING, "els => els.length")
    assert pending > 0, best.name
    page.eval_on_selector_all("details", "all => all.forEach(d => { d.open = true; })")
    page.wait_for_function(f"document.querySelectorAll('{_PENDING}').length === 0")
    facts = page.evaluate(_PAGE_FACTS)
    assert facts["typeset"] > 0 and facts["untypeset"] <= facts["typeset"] // 10, best.name
    assert problems.take() == []


def _visible_ids(page) -> list[str]:
    return page.eval_on_selector_all(
        "tr.entry", "rows => rows.filter(r => !r.hidden).map(r => r.dataset.id)"
    )


def test_filters_and_search(browser_page, built_site, tmp_path):
    page, problems = browser_page
    site, _, _ = built_site
    entries = catalog.load()
    page.goto((site / "index.html").as_uri())
    assert _visible_ids(page) == [e.id for e in entries]
    assert page.inner_text("#shown") == f"{len(entries)} of {len(entries)} entries"

    page.select_option("#f-status", "verified")
    verified = [e.id for e in entries if e.status == "verified"]
    assert _visible_ids(page) == verified and verified
    page.select_option("#f-kind", "doc")
    both = [e.id for e in entries if e.status == "verified" and "doc" in e.kind]
    assert _visible_ids(page) == both
    page.select_option("#f-status", "")
    page.select_option("#f-kind", "")

    section = catalog.sections(entries)[1]
    page.select_option("#f-section", section)
    assert _visible_ids(page) == [e.id for e in entries if e.section == section]
    hidden_groups = page.eval_on_selector_all(
        "section.group", "groups => groups.filter(g => g.hidden).length"
    )
    assert hidden_groups == len(catalog.sections(entries)) - 1
    page.select_option("#f-section", "")

    page.fill("#f-search", "AdaBound")
    assert "1902.09843" in _visible_ids(page)
    assert all(
        "adabound" in f"{e.id} {e.title} {e.summary} {e.becomes}".lower()
        for e in entries
        if e.id in _visible_ids(page)
    )
    noted = next(e for e in entries if e.note_zh)
    word = noted.note_zh.strip()[:4]
    page.fill("#f-search", word)
    assert noted.id in _visible_ids(page)
    page.fill("#f-search", "no entry has this zzqx")
    assert _visible_ids(page) == [] and page.is_visible("#no-match")
    assert page.inner_text("#shown") == f"0 of {len(entries)} entries"
    page.fill("#f-search", "")
    assert len(_visible_ids(page)) == len(entries)
    assert problems.take() == []

    png = take_screenshot(page, site / "index.html", tmp_path / "site.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


if __name__ == "__main__":
    # python tests/report/test_site_browser.py OUT.png [RESULTS]: the real site's screenshots
    import tempfile

    from playwright.sync_api import sync_playwright

    from dlskills.report.site import build_site

    if CHROMIUM is None:
        raise SystemExit("no `chromium` executable on PATH (Debian: apt-get install chromium)")
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/figures/site.png")
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        report = build_site(folder, results=sys.argv[2] if len(sys.argv) > 2 else None)
        browser = open_browser(playwright)
        page = browser.new_page()
        print(f"wrote {take_screenshot(page, report.index, out)}")
        entry = Path(folder) / "entries" / "1902.09843.html"
        entry_png = out.with_name(f"{out.stem}_entry.png")
        print(f"wrote {take_screenshot(page, entry, entry_png, scroll_to='section.source')}")
        browser.close()
