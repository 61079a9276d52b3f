"""How a chapter reads (DESIGN.md): short code lines, bookkeeping out of the reader's way, real tables.

Each rule is checked on every chapter source; each test names the cells that break it. The rules:

- every code line fits in 79 characters, so that nothing scrolls sideways on the site;
- a cell that calls ``glue(...)`` is tagged ``remove-cell`` (the prose shows the glued numbers);
- a cell that asserts (``assert`` or ``check(...)`` of a chapter's claims) is tagged ``hide-input`` and
  carries a visible label, ``mystnb.code_prompt_show``, that says what it checks;
- a section (``##``) outside the exercises has at most one such check cell;
- no ``print`` aligns a table by hand (a format width such as ``{x:>10}``): tables are DataFrames;
- no cell leaves a bare number, bool or ``None`` as its displayed result.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import chapters  # noqa: E402  (tools/chapters.py)

SOURCES = chapters.chapter_sources()
IDS = [s.stem for s in SOURCES]
MAX_LINE = 79
WIDTH_SPEC = re.compile(r"\{[^{}]*:(?:.?[<>^=])?[+\- ]?#?0?\d+[^{}]*\}")
BARE_VALUE = re.compile(r"-?\d+(\.\d*)?([eE][-+]?\d+)?|True|False|None|np\.float64\(.*\)")


def code_cells(source: Path) -> list[nbformat.NotebookNode]:
    return [c for c in jupytext.read(source).cells if c.cell_type == "code"]


def first_line(cell: nbformat.NotebookNode) -> str:
    return cell.source.strip().splitlines()[0] if cell.source.strip() else "<empty>"


def is_check_cell(cell: nbformat.NotebookNode) -> bool:
    """Does the cell assert something (an ``assert`` statement, or ``check(...)`` of claims)?"""
    try:
        tree = ast.parse(re.sub(r"^[%!].*$", "", cell.source, flags=re.M))
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "check":
            return True
    return False


def long_lines(source: Path) -> list[str]:
    return [f"{len(line)}: {line}" for cell in code_cells(source) for line in cell.source.splitlines()
            if len(line) > MAX_LINE]


def visible_glue(source: Path) -> list[str]:
    return [first_line(c) for c in code_cells(source)
            if re.search(r"\bglue\(", c.source) and "remove-cell" not in c.metadata.get("tags", [])]


def unlabelled_checks(source: Path) -> list[str]:
    problems = []
    for cell in code_cells(source):
        if not is_check_cell(cell):
            continue
        if "hide-input" not in cell.metadata.get("tags", []):
            problems.append(f"not tagged hide-input: {first_line(cell)}")
        elif not cell.metadata.get("mystnb", {}).get("code_prompt_show"):
            problems.append(f"no mystnb.code_prompt_show label: {first_line(cell)}")
    return problems


def sections_with_several_checks(source: Path) -> list[str]:
    nb = jupytext.read(source)
    counts: dict[str, int] = {}
    section = "<before the first section>"
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            headings = re.findall(r"^## +(.+)$", cell.source, flags=re.M)
            section = headings[-1] if headings else section
        elif is_check_cell(cell) and not section.lower().startswith("exercises"):
            counts[section] = counts.get(section, 0) + 1
    return [f"{section}: {n} check cells" for section, n in counts.items() if n > 1]


def hand_aligned_prints(source: Path) -> list[str]:
    return [first_line(c) for c in code_cells(source)
            if any(WIDTH_SPEC.search(line) for line in c.source.splitlines() if "print(" in line
                   or line.lstrip().startswith(('f"', "f'")))]


def stray_outputs(source: Path) -> list[str]:
    nb = nbformat.read(chapters.notebook_for(source), as_version=4)
    return [f"{first_line(c)} -> {o.data['text/plain']}" for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.output_type == "execute_result"
            and set(o.data) == {"text/plain"} and BARE_VALUE.fullmatch(o.data["text/plain"].strip())]


RULES = {
    "code lines longer than 79 characters": long_lines,
    "glue cells shown to the reader": visible_glue,
    "check cells not collapsed behind a labelled toggle": unlabelled_checks,
    "sections with more than one check cell": sections_with_several_checks,
    "tables aligned by hand in print": hand_aligned_prints,
    "bare values displayed": stray_outputs,
}


@pytest.mark.parametrize("rule", RULES, ids=[r.split()[0] + "-" + r.split()[1] for r in RULES])
@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_chapter_reads_as_prose(source, rule):
    problems = RULES[rule](source)
    assert not problems, f"{source.name}: {rule}:\n" + "\n".join(problems[:12])


def test_the_rules_catch_what_they_are_for(tmp_path):
    """Each rule fires on a chapter that breaks it, so none of them passes by construction."""
    bad = tmp_path / "99-bad.md"
    bad.write_text(
        "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n---\n"
        "# Bad\n\n## A section\n\n"
        "```{code-cell} ipython3\n" + "x = 1  # " + "a" * 80 + "\n```\n\n"
        "```{code-cell} ipython3\nglue('x', 1)\n```\n\n"
        "```{code-cell} ipython3\nassert x == 1\n```\n\n"
        "```{code-cell} ipython3\n:tags: [hide-input]\ncheck([])\n```\n\n"
        "```{code-cell} ipython3\nprint(f\"{'a':>10}{x:8.3f}\")\n```\n"
    )
    assert long_lines(bad) and visible_glue(bad) and hand_aligned_prints(bad)
    assert len(unlabelled_checks(bad)) == 2
    assert sections_with_several_checks(bad) == ["A section: 2 check cells"]
