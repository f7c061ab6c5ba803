"""The static site generator (no browser): pages, results, runs, docs, bad input, annotation."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from dlskills import catalog
from dlskills.cli import VERBS, main
from dlskills.report import annotated_source
from dlskills.report.annotated_source import annotate, highlight_lines, unicode_to_tex
from dlskills.report.site import build_site, load_results, slug

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


# ---- the site ----------------------------------------------------------------------------------


def test_index_lists_every_entry_by_section_with_its_status(built_site):
    site, report, _ = built_site
    entries = catalog.load()
    index = (site / "index.html").read_text(encoding="utf-8")
    rows = re.findall(r'<tr class="entry" data-id="([^"]+)"[^>]*data-status="([^"]+)"', index)
    assert rows == [(e.id, e.status) for e in entries]
    assert report.entries == len(entries) == 75
    headings = [_text(h).split("  ")[0] for h in re.findall(r"<h2>(.*?)</h2>", index)]
    for section in catalog.sections(entries):
        assert any(h.startswith(section) for h in headings), section
    for entry in entries:
        assert (site / "entries" / f"{slug(entry.id)}.html").is_file()


def test_entry_page_shows_summary_note_links_api_and_annotated_source(built_site):
    site, _, _ = built_site
    entry = next(e for e in catalog.load() if e.note_zh and e.implemented_by)
    page = (site / "entries" / f"{slug(entry.id)}.html").read_text(encoding="utf-8")
    text = _text(page)
    assert entry.summary in text and entry.note_zh.splitlines()[0] in text
    for _, url in entry.links:
        assert f'href="{html.escape(url)}"' in page
    for path in entry.implemented_by:
        assert path in page
    assert f"dlskills papers show {entry.id}" in page
    assert 'class="annotated"' in page


def test_adabound_page_renders_its_update_rule_as_equations(built_site):
    site, _, _ = built_site
    page = (site / "entries" / "1902.09843.html").read_text(encoding="utf-8")
    assert "dlskills train --optimizer adabound" in page
    # the docstring's rule m ← β1·m + (1 − β1)·g becomes a KaTeX formula beside the code
    assert 'data-tex="m \\leftarrow {\\beta}_{1} \\cdot m + ( 1 - {\\beta}_{1} ) \\cdot g"' in page
    # the API table links the class to its definition in the annotated source
    assert 'href="#src-dlskills.optim.adabound-AdaBound"' in page
    assert 'id="src-dlskills.optim.adabound-AdaBound"' in page


def test_result_shows_claim_measured_threshold_verdict_figure_and_run(built_site):
    site, report, roles = built_site
    page = (site / "entries" / f"{slug(roles['good'])}.html").read_text(encoding="utf-8")
    text = _text(page)
    assert "Warm-up keeps large-batch accuracy within half a point." in text
    assert "76.3 %" in text and "Table 1" in text
    assert "97.25 ± 0.41 %" in text and "0, 1, 2" in text
    assert "≥ 96.5" in text and "within 0.5 pt of one worker" in text
    assert "the warm-up arm stays within the margin on every seed" in text
    assert "2026-12-05T12:00:00Z" in text and '"batch_size": 512' in text
    copied = site / "results" / slug(roles["good"]) / "figures" / "curve.png"
    assert copied.read_bytes()[:8] == PNG_MAGIC
    assert f'src="../results/{slug(roles["good"])}/figures/curve.png"' in page
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'class="badge verdict-reproduced">reproduced' in index
    assert 'class="badge verdict-not-reproduced">not reproduced' in index
    assert report.results == 2


def test_bad_results_are_named_and_skipped(built_site):
    site, report, roles = built_site
    skipped = "\n".join(report.skipped)
    assert re.search(r"broken/result.json: malformed \(", skipped)
    assert re.search(r"empty: no result.json", skipped)
    assert "figure 'gone.png' does not exist" in skipped
    page = (site / "entries" / f"{slug(roles['not_reproduced'])}.html").read_text("utf-8")
    assert "gone.png" not in page  # no broken image


def test_result_with_unknown_id_or_verdict_is_malformed(tmp_path):
    for name, change in (("unknown", {"id": "9999.99999"}), ("verdict", {"verdict": "yes"})):
        (tmp_path / name).mkdir()
        record = {"id": "1902.09843", "verdict": "reproduced", "claim": {}, "measured": []}
        (tmp_path / name / "result.json").write_text(json.dumps(record | change), "utf-8")
    found, skipped = load_results(tmp_path)
    assert found == {}
    assert "unknown catalog id '9999.99999'" in skipped[0]
    assert "verdict 'yes' is not one of" in skipped[1]


def test_run_page_has_summary_curves_metrics_config_and_diagnosis(built_site):
    site, report, _ = built_site
    assert report.runs == 1
    folder = site / "runs" / "digits-cnn"
    text = _text((folder / "index.html").read_text(encoding="utf-8"))
    assert "test_accuracy" in text and "0.9712" in text
    assert "dead units" in text and "30 % dead" in text and "WARN" in text
    # the run had no plots: the site drew them from metrics.csv
    assert (folder / "loss.png").read_bytes()[:8] == PNG_MAGIC
    assert (folder / "doctor" / "gradient_flow.png").read_bytes()[:8] == PNG_MAGIC
    assert "lr" in text and "0.003" in text
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="runs/digits-cnn/index.html"' in index and "97.12 %" in index


def test_docs_pages_rewrite_links_and_copy_images(tmp_path):
    docs = tmp_path / "docs"
    (docs / "figures").mkdir(parents=True)
    (docs / "figures" / "x.png").write_bytes(b"png")
    (docs / "a.md").write_text(
        "# A\n\nSee [b](b.md#part), [code](../src/dlskills/cli.py) and "
        "[paper](https://example.org/paper).\n\n![plot](figures/x.png)\n",
        encoding="utf-8",
    )
    (docs / "b.md").write_text("# B\n\nAdaBound, 1902.09843.\n", encoding="utf-8")
    site = tmp_path / "site"
    build_site(site, docs=docs)
    page = (site / "docs" / "a.html").read_text(encoding="utf-8")
    assert '<a href="b.html#part">b</a>' in page
    assert "../src/dlskills/cli.py" not in page and "code" in page
    assert 'href="https://example.org/paper"' in page
    assert (site / "docs" / "figures" / "x.png").read_bytes() == b"png"
    entry = (site / "entries" / "1902.09843.html").read_text(encoding="utf-8")
    assert 'href="../docs/b.html"' in entry and 'href="../docs/a.html"' not in entry


def test_no_page_references_the_network_except_paper_links(built_site):
    site, _, _ = built_site
    for page in [site / "index.html", *sorted((site / "entries").glob("*.html"))]:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', text), page
    assert (site / "static" / "katex" / "katex.min.js").is_file()
    css = (site / "static" / "katex" / "katex.min.css").read_text(encoding="utf-8")
    for font in re.findall(r"url\((fonts/[^)]+)\)", css):
        assert (site / "static" / "katex" / font).is_file(), font


# ---- bad input and the CLI ---------------------------------------------------------------------


def test_cli_site_on_a_file_is_a_one_line_error(tmp_path, capsys):
    target = tmp_path / "site.html"
    target.write_text("keep", encoding="utf-8")
    assert main(["report", "--site", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"dlskills report: error: --site {target}: is a file, not a folder"
    assert target.read_text(encoding="utf-8") == "keep"


def test_cli_missing_inputs_are_errors_before_anything_is_written(tmp_path, capsys):
    site = tmp_path / "site"
    assert main(["report", "--site", str(site), "--runs", str(tmp_path / "nope")]) == 2
    assert "--runs" in capsys.readouterr().err and not site.exists()
    (tmp_path / "notrun").mkdir()
    assert main(["report", "--site", str(site), "--runs", str(tmp_path / "notrun")]) == 2
    assert "not a run folder" in capsys.readouterr().err and not site.exists()
    assert main(["report", "--site", str(site), "--results", str(tmp_path / "nope")]) == 2
    assert "--results" in capsys.readouterr().err and not site.exists()


def test_sweep_and_report_are_verbs():
    assert "sweep" in VERBS and "report" in VERBS


# ---- annotation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "tex"),
    [
        ("m ← β1·m + (1 − β1)·g", r"m\leftarrow{\beta}_{1}\cdotm+(1-{\beta}_{1})\cdotg"),
        ("α_t = lr·√(1 − β2ᵗ)", r"{\alpha}_{t}=\mathrm{lr}\cdot\sqrt{1-{{\beta}_{2}}^{t}}"),
        ("θ ← θ − η ∇L(θ)", r"\theta\leftarrow\theta-\eta\nablaL(\theta)"),
        ("v̂ = max(v̂, v)", r"\hat{v}=\max(\hat{v},v)"),
        ("η* = final_lr / base_lr", r"{\eta}^{*}=\mathrm{final\_lr}/\mathrm{base\_lr}"),
        ("x_{t+1} = x_t − ‖g‖²", r"{x}_{t+1}=x_{t}-\|g{\|}^{2}"),
        ("a = 1,   b = 2", r"a=1,\quadb=2"),
    ],
)
def test_unicode_formulas_become_latex(formula, tex):
    assert unicode_to_tex(formula).replace(" ", "") == tex.replace(" ", "")


def test_untranslatable_formula_keeps_its_text(tmp_path):
    with pytest.raises(ValueError):
        unicode_to_tex("√(a + b")
    rendered = annotated_source.prose_html("Rule:\n\n    y = √(a + b\n\nEnd.")
    assert '<span class="eq">y = √(a + b</span>' in rendered  # no data-tex: shown as written


SAMPLE = '''"""Module doc.

    y = a·x + b
"""

import math

# a comment about the constant
SCALE = 2


@staticmethod
def f(x):
    """Scale x."""
    return SCALE * x  # inline stays in code


class C:
    value = "a # not a comment"
'''


def test_annotate_puts_each_docstring_beside_the_code_it_documents(tmp_path):
    path = tmp_path / "sample.py"
    path.write_text(SAMPLE, encoding="utf-8")
    blocks = annotate(path)
    code = [_text(b.code) for b in blocks]
    prose = [_text(b.prose) for b in blocks]
    assert code[0] == "import math"
    assert 'data-tex="y = a \\cdot x + b"' in blocks[0].prose
    assert prose[1] == "a comment about the constant" and code[1] == "SCALE = 2"
    assert prose[2] == "Scale x."
    assert code[2].splitlines() == [
        "@staticmethod",
        "def f(x):",
        "    return SCALE * x  # inline stays in code",
        "",
        "",
        "class C:",
        '    value = "a # not a comment"',
    ]
    assert blocks[2].first_line == 12 and blocks[2].anchors == ("f", "C")


def test_highlighting_keeps_every_character_of_a_real_module():
    source = Path(annotated_source.__file__).read_text(encoding="utf-8")
    lines = highlight_lines(source)
    assert [_text(line) for line in lines] == source.splitlines()
    assert '<span class="k">def</span> <span class="nf">unicode_to_tex</span>' in "\n".join(lines)
