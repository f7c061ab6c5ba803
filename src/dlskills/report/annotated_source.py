"""A Python module as an annotated implementation: its docstrings and comments in one column,
the code they describe beside them (in the manner of labml's annotated papers).

``annotate(path)`` splits a module into ``Block``s. A block's prose is a docstring or a run of
full-line comments; its code is what follows, up to the next prose. The docstring of a ``def`` or
``class`` takes that statement's header (decorators and signature) into its own block, so the
signature sits beside the text that explains it.

Prose is rendered to HTML here: paragraphs, ````code````, and the indented equation lines that our
docstrings write in Unicode (``m ← β1·m + (1 − β1)·g``) become ``<span class="eq"
data-tex="...">`` elements carrying a LaTeX translation (``unicode_to_tex``) for KaTeX, with the
original text inside as the fallback shown when KaTeX cannot parse it.
"""

from __future__ import annotations

import ast
import builtins
import html
import inspect
import io
import keyword
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

_GREEK_NAMES = (
    "alpha beta gamma delta varepsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma "
    "tau upsilon phi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega"
)
_GREEK = {
    letter: f"\\{name}"
    for letter, name in zip("αβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΥΦΨΩ", _GREEK_NAMES.split(" "))
}
_SYMBOLS = {
    "·": r"\cdot",
    "⊙": r"\odot",
    "⊗": r"\otimes",
    "∘": r"\circ",
    "←": r"\leftarrow",
    "→": r"\to",
    "−": "-",
    "×": r"\times",
    "≤": r"\le",
    "≥": r"\ge",
    "≈": r"\approx",
    "≠": r"\ne",
    "∝": r"\propto",
    "∞": r"\infty",
    "∂": r"\partial",
    "∇": r"\nabla",
    "‖": r"\|",
    "…": r"\dots",
    "∈": r"\in",
    "∑": r"\sum",
    "∏": r"\prod",
    "∫": r"\int",
    "±": r"\pm",
    "⟨": r"\langle",
    "⟩": r"\rangle",
    "⌈": r"\lceil",
    "⌉": r"\rceil",
    "⌊": r"\lfloor",
    "⌋": r"\rfloor",
    "{": r"\{",
    "}": r"\}",
    "%": r"\%",
    "#": r"\#",
    "&": r"\&",
    "$": r"\$",
    "~": r"\sim",
    "\\": r"\backslash",
}
_SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹ᵗᵀⁿᵏⁱʲ⁺⁻", "0123456789tTnki j+-".replace(" ", "")))
_SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉ₜᵢⱼₖₙ", "0123456789tijkn"))
_ACCENTS = {"\u0302": r"\hat", "\u0304": r"\bar", "\u0303": r"\tilde", "\u0307": r"\dot"}
_FUNCTIONS = {"max", "min", "log", "exp", "sin", "cos", "tanh", "sup", "inf", "det", "lim"}
# atoms TeX already spaces or that need no space beside a word
_OPERATORS = {"=", "+", "-", "/", ",", ";", ":", "(", "[", "<", ">", "|", "SQRT"} | {
    _SYMBOLS[s] for s in "·⊙⊗∘←→×≤≥≈≠∝±∈"
}
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _word_tex(word: str) -> tuple[str, bool]:
    """(TeX, is_text_word) of an ASCII word: one letter is a variable, ``x1``/``x_t`` carry a
    subscript, known functions become operators, anything longer is an upright name."""
    if len(word) == 1:
        return word, False
    if m := re.fullmatch(r"([A-Za-z])(\d+)", word):
        return f"{m[1]}_{{{m[2]}}}", False
    if m := re.fullmatch(r"([A-Za-z])_([A-Za-z0-9]+)", word):
        return f"{m[1]}_{{{m[2]}}}", False
    if word in _FUNCTIONS:
        return f"\\{word}", False
    return r"\mathrm{" + word.replace("_", r"\_") + "}", True


def _attach(atoms: list[str], op: str, script: str) -> None:
    """Put ``^{script}`` or ``_{script}`` on the last atom (braced so scripts can stack)."""
    if not atoms or atoms[-1] in (" ", "SQRT"):
        raise ValueError(f"{op}{script} has nothing to attach to")
    atoms.append(f"{{{atoms.pop()}}}{op}{{{script}}}")


def _script(text: str, i: int) -> tuple[str, int]:
    """The argument of an ASCII ``_``/``^`` at ``text[i]``: a braced group or one token."""
    if i < len(text) and text[i] == "{":
        depth, j = 0, i
        while j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                return unicode_to_tex(text[i + 1 : j]), j + 1
            j += 1
        raise ValueError("unbalanced braces")
    m = re.compile(r"[A-Za-z0-9]+|.").match(text, i)
    if m is None:
        raise ValueError("empty script")
    return unicode_to_tex(m[0]), m.end()


def unicode_to_tex(text: str) -> str:
    """LaTeX for a formula written in plain Unicode (Greek letters, ``·``, ``√x``, ``β2ᵗ``,
    ``v̂``, ``final_lr``). Raises ValueError on text it cannot translate (unbalanced groups)."""
    atoms: list[str] = []  # TeX pieces; postfix marks (scripts, accents) apply to the last one
    words: list[bool] = []  # whether each atom is an upright word (spaced from its neighbours)
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            j = i
            while j < len(text) and text[j].isspace():
                j += 1
            # a wide gap separates two formulas; three spaces only align columns, unless they
            # follow a comma
            wide = j - i >= 4 or (j - i == 3 and bool(atoms) and atoms[-1] in (",", ";"))
            atoms.append(r"\quad" if wide else " ")
            words.append(False)
            i = j
            continue
        if ch == "*" and atoms and atoms[-1] not in _OPERATORS | {" ", "SQRT"}:
            _attach(atoms, "^", "*")  # η* is η^*
            i += 1
            continue
        if m := _WORD.match(text, i):
            tex, is_word = _word_tex(m[0])
            atoms.append(tex)
            words.append(is_word)
            i = m.end()
            continue
        if m := _NUMBER.match(text, i):
            atoms.append(m[0])
            words.append(False)
            i = m.end()
            continue
        if ch in _GREEK:
            atoms.append(_GREEK[ch])
            words.append(False)
            i += 1
            if m := re.compile(r"\d+").match(text, i):  # β1 -> β_1
                _attach(atoms, "_", m[0])
                i = m.end()
            continue
        if ch in "_^":
            script, i = _script(text, i + 1)
            _attach(atoms, ch, script)
            continue
        if ch in _SUPERSCRIPTS or ch in _SUBSCRIPTS:
            table, op = (_SUPERSCRIPTS, "^") if ch in _SUPERSCRIPTS else (_SUBSCRIPTS, "_")
            j = i
            while j < len(text) and text[j] in table:
                j += 1
            _attach(atoms, op, "".join(table[c] for c in text[i:j]))
            i = j
            continue
        if ch in _ACCENTS:
            if not atoms or atoms[-1] in (" ", "SQRT"):
                raise ValueError("an accent with nothing under it")
            atoms.append(f"{_ACCENTS[ch]}{{{atoms.pop()}}}")
            i += 1
            continue
        if ch == "√":
            atoms.append("SQRT")
            words.append(False)
            i += 1
            continue
        atoms.append(_SYMBOLS.get(ch, ch))
        words.append(False)
        i += 1
    return _join(_square_roots(atoms, words))


def _square_roots(atoms: list[str], words: list[bool]) -> list[tuple[str, bool]]:
    """Replace each ``SQRT`` marker and the atom (or parenthesised group) after it by \\sqrt."""
    out: list[tuple[str, bool]] = []
    i = 0
    while i < len(atoms):
        if atoms[i] != "SQRT":
            out.append((atoms[i], words[i] if i < len(words) else False))
            i += 1
            continue
        j = i + 1
        if j < len(atoms) and atoms[j] == "(":
            depth, k = 0, j
            while k < len(atoms):
                depth += {"(": 1, ")": -1}.get(atoms[k], 0)
                if depth == 0:
                    break
                k += 1
            if depth:
                raise ValueError("unbalanced parentheses after √")
            inner = _join(_square_roots(atoms[j + 1 : k], words[j + 1 : k]))
            out.append((rf"\sqrt{{{inner}}}", False))
            i = k + 1
        elif j < len(atoms):
            out.append((rf"\sqrt{{{atoms[j]}}}", False))
            i = j + 1
        else:
            raise ValueError("√ with nothing after it")
    return out


def _join(pieces: list[tuple[str, bool]]) -> str:
    """Concatenate, keeping one visible space beside upright words (TeX drops plain spaces)."""
    parts = []
    for k, (tex, _) in enumerate(pieces):
        if tex == " ":
            beside_word = (k > 0 and pieces[k - 1][1]) or (k + 1 < len(pieces) and pieces[k + 1][1])
            between = 0 < k < len(pieces) - 1 and not (
                pieces[k - 1][0] in _OPERATORS or pieces[k + 1][0] in _OPERATORS
            )
            if beside_word and between:
                parts.append(r"\ ")
        else:
            parts.append(tex.strip())
    # a space after every piece ends control words (\alpha x, not \alphax); TeX ignores it
    return " ".join(parts)


# ---- prose -------------------------------------------------------------------------------------

_RELATIONS = ("=", "←", "≤", "≥", "≈", "∝", "→")
_NOTE = re.compile(r"\s{2,}(\(.*)$")  # an equation line's trailing "   (remark)"


def _looks_like_code(line: str) -> bool:
    if any(s in line for s in (">>>", "import ", "def ", "@")):
        return True
    try:
        ast.parse(line.strip())
    except SyntaxError:
        return False
    return bool(re.search(r"[A-Za-z_]\w*\.[A-Za-z_]|\w\(", line))


_INLINE = re.compile(r":math:`(?P<math>[^`]+)`|``(?P<code>.+?)``|`(?P<quoted>[^`]+)`")


def inline_html(text: str) -> str:
    """Escaped text with ``code`` spans and reST ``:math:`x``` as inline formulas."""
    out, position = [], 0
    for match in _INLINE.finditer(text):
        out.append(html.escape(text[position : match.start()]))
        if match["math"] is not None:
            tex = html.escape(match["math"])
            out.append(f'<span class="eq" data-tex="{tex}">{tex}</span>')
        else:
            out.append(f"<code>{html.escape(match['code'] or match['quoted'])}</code>")
        position = match.end()
    out.append(html.escape(text[position:]))
    return "".join(out)


def _equation_html(formula: str, note: str) -> str:
    try:
        tex = unicode_to_tex(formula)
    except ValueError:
        tex = ""
    attribute = f' data-tex="{html.escape(tex)}"' if tex else ""
    note_html = f'<span class="eq-note">{inline_html(note)}</span>' if note else ""
    return (
        f'<div class="eq-row"><span class="eq"{attribute}>{html.escape(formula)}</span>'
        f"{note_html}</div>"
    )


def _is_prose(formula: str) -> bool:
    """More than two English words: a sentence or a table row, not a formula."""
    words = [w for w in re.findall(r"[A-Za-z]{3,}", formula) if w not in _FUNCTIONS]
    return len(words) > 2 or any(c in formula for c in '`"')


def _indented_html(lines: list[str], latex: bool = False) -> str:
    """An indented run: the LaTeX of a reST ``.. math::`` directive (``latex``), rows of
    Unicode formulas with their remarks, reST prose with ``:math:`` (argument lists), or, for
    code and tables, a pre block as written."""
    text = inspect.cleandoc("\n".join(lines))
    if latex:
        tex = html.escape(" ".join(line.strip() for line in lines))
        return f'<div class="eqs"><span class="eq eq-display" data-tex="{tex}">{tex}</span></div>'
    if ":math:`" in text:
        return f'<div class="indented"><p>{inline_html(text)}</p></div>'
    plain = f"<pre>{html.escape(text)}</pre>"
    if any(_looks_like_code(line) for line in lines) or not any(
        r in line for line in lines for r in _RELATIONS
    ):
        return plain
    rows: list[list[str]] = []
    for line in lines:
        formula, note = line.strip(), ""
        if m := _NOTE.search(line.strip()):
            formula, note = line.strip()[: m.start()].strip(), m[1]
        open_remark = bool(rows) and rows[-1][1].count("(") > rows[-1][1].count(")")
        if rows and (open_remark or not formula or formula.startswith("(")):
            rows[-1][1] = f"{rows[-1][1]} {line.strip()}".strip()  # the remark goes on
            continue
        rows.append([formula, note])
    if any(_is_prose(formula) for formula, _ in rows):
        return plain
    return '<div class="eqs">' + "".join(_equation_html(f, n) for f, n in rows) + "</div>"


def prose_html(text: str) -> str:
    """HTML for a docstring or comment whose paragraphs start at column 0: paragraphs, bullet
    lines, indented blocks (equations, or code as written)."""
    out: list[str] = []
    paragraph: list[str] = []
    indented: list[str] = []

    latex = False  # the indented run follows a `.. math::` directive

    def flush() -> None:
        nonlocal latex
        if paragraph and paragraph != [".. math::"]:  # the directive's block follows it
            out.append(f"<p>{inline_html(' '.join(paragraph))}</p>")
            paragraph.clear()
        if indented:
            out.append(_indented_html(indented, latex))
            indented.clear()
            latex = False

    for line in text.strip("\n").splitlines():
        if not line.strip():
            if indented:
                indented.append("")
            else:
                flush()
            continue
        if line.startswith((" ", "\t")):
            if not indented:
                latex = paragraph[-1:] == [".. math::"]
            if paragraph and paragraph != [".. math::"]:
                out.append(f"<p>{inline_html(' '.join(paragraph))}</p>")
            paragraph.clear()
            indented.append(line)
            continue
        if indented:
            while indented and not indented[-1].strip():
                indented.pop()
            flush()
        if line.lstrip().startswith(("- ", "* ")) and paragraph:
            flush()
        paragraph.append(line.strip())
    while indented and not indented[-1].strip():
        indented.pop()
    flush()
    return "\n".join(out)


# ---- blocks ------------------------------------------------------------------------------------


@dataclass
class Block:
    prose: str  # HTML
    code: str  # highlighted HTML (see highlight_lines), "" for prose-only blocks
    first_line: int  # 1-based line number of the first code line (0 without code)
    anchors: tuple[str, ...] = ()  # names defined on this block's lines (for #links)


_BUILTINS = frozenset(dir(builtins))
_CLASSES = {tokenize.STRING: "s", tokenize.COMMENT: "c", tokenize.NUMBER: "m"} | {
    getattr(tokenize, name): "s"  # Python 3.12 splits f-strings into these
    for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
    if hasattr(tokenize, name)
}


def _token_class(token: tokenize.TokenInfo, previous: str) -> str:
    """The CSS class of a token (site.css colours them): keyword, definition, builtin, ..."""
    kind, text = token.type, token.string
    if kind == tokenize.NAME:
        if previous in ("def", "class"):
            return "nf"
        if keyword.iskeyword(text):
            return "k"
        return "nb" if text in _BUILTINS else ""
    if kind == tokenize.OP:
        return "o" if text == "@" else ""
    return _CLASSES.get(kind, "")


def highlight_lines(source: str) -> list[str]:
    """HTML of each source line, tokens wrapped in ``<span class>`` (closed on every line, so
    any subset of lines can be shown on its own)."""
    lines = source.splitlines()
    out = [[] for _ in lines]
    column = [0] * len(lines)
    previous = ""

    def plain(row: int, end: int) -> None:
        if end > column[row]:
            out[row].append(html.escape(lines[row][column[row] : end]))
            column[row] = end

    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            continue
        if token.type == tokenize.ENDMARKER:
            break
        css = _token_class(token, previous)
        (row, col), (end_row, end_col) = token.start, token.end
        for r in range(row - 1, end_row):
            if r >= len(lines):
                break
            start = col if r == row - 1 else 0
            stop = end_col if r == end_row - 1 else len(lines[r])
            plain(r, start)
            piece = html.escape(lines[r][start:stop])
            out[r].append(f'<span class="{css}">{piece}</span>' if css else piece)
            column[r] = stop
        if token.type != tokenize.COMMENT:
            previous = token.string
    for r in range(len(lines)):
        plain(r, len(lines[r]))
    return ["".join(parts) for parts in out]


def _dedent(docstring: str, indent: int) -> str:
    """A docstring's text with the indentation of the code around it removed (an indented line
    inside it, such as an equation block, keeps its own indentation)."""
    first, *rest = docstring.expandtabs().splitlines() or [""]
    rest = [line[indent:] if not line[:indent].strip() else line.lstrip() for line in rest]
    return "\n".join([first.strip(), *rest])


def _docstring_spans(tree: ast.Module) -> tuple[dict[int, tuple[int, str]], dict[int, int]]:
    """{docstring first line: (last line, text)} and {header first line: docstring first line}
    for the module and every def/class that has a docstring."""
    spans: dict[int, tuple[int, str]] = {}
    headers: dict[int, int] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        body = node.body
        if not (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            continue
        doc = body[0]
        spans[doc.lineno] = (doc.end_lineno or doc.lineno, _dedent(doc.value.value, doc.col_offset))
        if not isinstance(node, ast.Module):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            headers[start] = doc.lineno
    return spans, headers


def _comment_lines(source: str) -> dict[int, str]:
    """{line: text} for lines that hold nothing but a comment."""
    lines = source.splitlines()
    found = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, col = token.start
            if not lines[row - 1][:col].strip():
                text = token.string.lstrip("#")
                found[row] = (text[1:] if text.startswith(" ") else text).rstrip()
    return found


def _definitions(tree: ast.Module) -> dict[int, str]:
    return {
        node.lineno: node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
    }


def annotate(path: str | Path) -> list[Block]:
    """The module at ``path`` as blocks of (prose, code)."""
    source = Path(path).read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source)
    docstrings, headers = _docstring_spans(tree)
    comments = _comment_lines(source)
    definitions = _definitions(tree)

    raw: list[tuple[list[str], list[int]]] = []  # (prose texts, code line numbers)

    def current(new_prose: bool) -> tuple[list[str], list[int]]:
        if not raw or (new_prose and raw[-1][1]):
            raw.append(([], []))
        return raw[-1]

    n = 1
    while n <= len(lines):
        if n in headers:
            doc_start = headers[n]
            end, text = docstrings[doc_start]
            prose, code = current(new_prose=True)
            prose.append(text)
            code.extend(range(n, doc_start))
            n = end + 1
        elif n in docstrings:
            end, text = docstrings[n]
            current(new_prose=True)[0].append(text)
            n = end + 1
        elif n in comments:
            run = []
            while n in comments:
                run.append(comments[n])
                n += 1
            current(new_prose=True)[0].append("\n".join(run))
        else:
            current(new_prose=False)[1].append(n)
            n += 1

    highlighted = highlight_lines(source)
    blocks = []
    for prose, code in raw:
        while code and not lines[code[-1] - 1].strip():
            code.pop()
        while code and not lines[code[0] - 1].strip():
            code.pop(0)
        blocks.append(
            Block(
                prose="\n".join(prose_html(p) for p in prose),
                code="\n".join(highlighted[k - 1] for k in code),
                first_line=code[0] if code else 0,
                anchors=tuple(definitions[k] for k in code if k in definitions),
            )
        )
    return blocks
