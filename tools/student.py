"""The student edition: the site without solutions, and exercise notebooks with stubs for the answers.

Usage (``make student`` and ``make student-notebooks`` run the same)::

    python tools/student.py site        # the site without any solution -> _build/student/html
    python tools/student.py notebooks   # one exercise notebook per chapter -> _build/student-notebooks/

``site`` loads ``_config.yml``, derives from it a configuration that sets sphinx-exercise's
``hide_solutions`` and loads this file as a Sphinx extension, writes it to
``_build/student-build/_config.yml`` and runs ``jupyter-book build . --config <it> --path-output
_build/student-build -W --keep-going``. The extension does what ``hide_solutions`` alone does not:

- sphinx-exercise 1.2 drops a ``{solution-start}`` directive under ``hide_solutions`` but keeps
  everything up to its ``{solution-end}`` (and the build then crashes on the orphaned end node;
  executablebooks/sphinx-exercise#89). The extension removes the whole gated range, explanations and
  code cells included, before Sphinx indexes or writes anything, so neither the pages nor the search
  index contain it.
- the downloadable sources (``_sources/**.ipynb``, behind the download button) are replaced by the
  exercise notebooks below, so a download gives the exercises with stubs, not the answers.

The Colab and Binder buttons are switched off in the student edition: they open the repository's
notebooks, which carry the solutions. The published folder ``_build/student/html`` is a copy of the
built HTML only; the build's caches (doctrees, executed notebooks) stay in ``_build/student-build``.

``notebooks`` writes ``_build/student-notebooks/NN-slug.ipynb`` for each ``book/NN-slug.ipynb``, outputs
cleared: the solutions' explanations and their ``{solution-start}``/``{solution-end}`` directives are
dropped, plain ``{solution}`` blocks too, and each solution code cell becomes a stub that keeps the
signature (and docstring) of every top-level function and class of the reference answer, with the body
``raise NotImplementedError("Exercise <label>: write this function")``, and the answer's top-level
``check_*(...)`` calls. A solution cell that keeps nothing becomes a comment naming the exercise and
``...``. The exercises and the rest of the chapter are unchanged.
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
BUILD_DIR = ROOT / "_build" / "student-build"  # jupyter-book's --path-output: caches and the raw build
SITE = ROOT / "_build" / "student" / "html"  # the published student site (HTML only)
NOTEBOOKS = ROOT / "_build" / "student-notebooks"
STUB_KEY = "exercise_stub"  # cell metadata key naming the exercise a stub cell belongs to

# The opening line of a fenced solution directive: ```{solution-start} ex-1, ::::{solution} ex-1, ...
OPENING = re.compile(r"^\s*(?P<fence>`{3,}|:{3,})\s*\{(?P<name>solution-start|solution-end|solution)\}"
                     r"\s*(?P<arg>\S*)")


# --------------------------------------------------------------------------------------------------
# Where the solutions are in a notebook
# --------------------------------------------------------------------------------------------------


@dataclass
class Piece:
    """A run of a notebook that is either public or part of one exercise's solution.

    ``kind`` is ``"public"``, ``"solution"`` (the answer: explanations, code cells, plain ``{solution}``
    blocks) or ``"directive"`` (a ``{solution-start}`` or ``{solution-end}`` block). ``cell`` is the
    cell the piece comes from; ``text`` is the piece's part of that cell's source.
    """

    kind: str
    label: str | None
    cell: nbformat.NotebookNode
    text: str
    end: bool = False  # a {solution-end} directive


def _closing_line(lines: list[str], start: int, fence: str) -> int:
    """Index of the line that closes the directive opened at ``lines[start]`` with ``fence``."""
    closing = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
    for index in range(start + 1, len(lines)):
        if closing.match(lines[index]):
            return index
    raise ValueError(f"unclosed directive {lines[start].strip()!r}")


def pieces(nb: nbformat.NotebookNode) -> list[Piece]:
    """Split ``nb`` into public and solution pieces, in order (markdown cells may hold several)."""
    result: list[Piece] = []
    label: str | None = None  # the gated solution we are in, if any

    def add(kind: str, piece_label: str | None, cell, text: str, end: bool = False) -> None:
        last = result[-1] if result else None
        if (last and not end and not last.end and last.cell is cell and last.kind == kind
                and last.label == piece_label):
            last.text += "\n" + text
        else:
            result.append(Piece(kind, piece_label, cell, text, end))

    for cell in nb.cells:
        if cell.cell_type != "markdown":
            add("solution" if label else "public", label, cell, cell.source)
            continue
        lines = cell.source.split("\n")
        index = 0
        while index < len(lines):
            match = OPENING.match(lines[index])
            if not match:
                add("solution" if label else "public", label, cell, lines[index])
                index += 1
                continue
            close = _closing_line(lines, index, match["fence"])
            block = "\n".join(lines[index : close + 1])
            name, arg = match["name"], match["arg"]
            if name == "solution-start":
                if label:
                    raise ValueError(f"{{solution-start}} {arg} inside the solution of {label}")
                label = arg
                add("directive", label, cell, block)
            elif name == "solution-end":
                if not label:
                    raise ValueError("{solution-end} without a {solution-start}")
                add("directive", label, cell, block, end=True)
                label = None
            else:
                add("solution", arg, cell, block)
            index = close + 1
    if label:
        raise ValueError(f"the solution of {label} has no {{solution-end}}")
    return result


# --------------------------------------------------------------------------------------------------
# Stubs
# --------------------------------------------------------------------------------------------------


def _python(code: str) -> str:
    """``code`` with IPython syntax (magics, ``!cmd``) turned into plain Python, so ``ast`` can parse it."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(code)


def _raise(label: str, what: str) -> ast.stmt:
    return ast.parse(f"raise NotImplementedError({f'Exercise {label}: write this {what}'!r})").body[0]


def _docstring(node: ast.AST) -> list[ast.stmt]:
    body = getattr(node, "body", [])
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return [body[0]]
    return []


def _stub_function(node: ast.FunctionDef | ast.AsyncFunctionDef, label: str, what: str):
    stub = copy.deepcopy(node)
    stub.body = _docstring(node) + [_raise(label, what)]
    return stub


def _is_check_call(node: ast.stmt) -> bool:
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
        return False
    func = node.value.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    return name.startswith("check_")


def stub_statements(code: str, label: str) -> list[ast.stmt]:
    """What a stub keeps of a solution cell: stubbed functions and classes, and ``check_*`` calls."""
    kept: list[ast.stmt] = []
    for node in ast.parse(_python(code)).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            kept.append(_stub_function(node, label, "function"))
        elif isinstance(node, ast.ClassDef):
            stub = copy.deepcopy(node)
            methods = [_stub_function(m, label, "method") for m in node.body
                       if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)]
            stub.body = _docstring(node) + methods or [ast.Expr(ast.Constant(...))]
            kept.append(stub)
        elif _is_check_call(node):
            kept.append(node)
    return kept


def _unparse(node: ast.stmt) -> str:
    """``ast.unparse``, with the stubs' messages in double quotes."""
    raising = re.compile(r"^(\s*raise NotImplementedError\()'(Exercise [^'\"\\]*)'\)$")
    return "\n".join(raising.sub(r'\1"\2")', line) for line in ast.unparse(node).split("\n"))


def stub_source(code: str, label: str) -> str:
    """The stub of one solution code cell, or ``""`` when it keeps nothing."""
    kept = stub_statements(code, label)
    if not kept:
        return ""
    parts = [_unparse(kept[0])]
    for before, node in zip(kept, kept[1:], strict=False):
        definition = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        blank = isinstance(before, definition) or isinstance(node, definition)
        parts.append(("\n\n\n" if blank else "\n") + _unparse(node))
    return f"# Exercise {label}: your answer here\n" + "".join(parts)


def comment_stub(label: str) -> str:
    return f"# Exercise {label}: your answer here\n..."


# --------------------------------------------------------------------------------------------------
# Student notebooks
# --------------------------------------------------------------------------------------------------


def _cell_id(cell: nbformat.NotebookNode, used: set[str], suffix: str = "") -> str:
    base = (cell.get("id") or "cell") + suffix
    candidate, n = base, 1
    while candidate in used:
        n += 1
        candidate = f"{base}-{n}"
    used.add(candidate)
    return candidate


def student_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` without solutions: stubs for solution code cells, outputs cleared."""
    out = nbformat.v4.new_notebook(metadata=copy.deepcopy(nb.metadata))
    out.nbformat, out.nbformat_minor = 4, max(nb.get("nbformat_minor", 5), 5)
    used: set[str] = set()
    markdown: list[str] = []  # public markdown waiting to become a cell
    markdown_source: list[nbformat.NotebookNode] = []
    code_seen: dict[str, nbformat.NotebookNode] = {}  # first solution code cell of each exercise
    stubbed: set[str] = set()

    def flush() -> None:
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(markdown)).strip("\n")
        if text.strip():
            cell = nbformat.v4.new_markdown_cell(text)
            cell.id = _cell_id(markdown_source[0], used)
            cell.metadata = copy.deepcopy(markdown_source[0].metadata)
            out.cells.append(cell)
        markdown.clear()
        markdown_source.clear()

    def add_stub(source: str, like: nbformat.NotebookNode, label: str) -> None:
        flush()
        cell = nbformat.v4.new_code_cell(source)
        cell.id = _cell_id(like, used, "-stub")
        cell.metadata[STUB_KEY] = label
        out.cells.append(cell)
        stubbed.add(label)

    for piece in pieces(nb):
        cell = piece.cell
        if piece.kind == "public":
            if cell.cell_type == "markdown":
                if markdown and markdown_source[-1] is not cell:
                    flush()  # keep the original cell boundaries
                markdown.append(piece.text)
                markdown_source.append(cell)
                continue
            flush()
            kept = copy.deepcopy(cell)
            if kept.cell_type == "code":
                kept.outputs, kept.execution_count = [], None
                kept.metadata.pop("execution", None)
            kept.id = _cell_id(cell, used)
            out.cells.append(kept)
        elif piece.kind == "solution" and cell.cell_type == "code":
            code_seen.setdefault(piece.label, cell)
            source = stub_source(cell.source, piece.label)
            if source:
                add_stub(source, cell, piece.label)
        elif piece.end and piece.label in code_seen and piece.label not in stubbed:
            add_stub(comment_stub(piece.label), code_seen[piece.label], piece.label)
    flush()
    nbformat.validate(out)
    return out


def write_student_notebooks(target: Path = NOTEBOOKS) -> list[Path]:
    """Write the exercise notebook of every chapter into ``target``; return their paths."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted(BOOK.glob("[0-9][0-9]-*.ipynb")):
        path = target / source.name
        nbformat.write(student_notebook(nbformat.read(source, as_version=4)), path)
        written.append(path)
    return written


# --------------------------------------------------------------------------------------------------
# The student site
# --------------------------------------------------------------------------------------------------


def student_config() -> dict:
    """``_config.yml`` with the student edition's changes (see the module docstring)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    sphinx = config.setdefault("sphinx", {})
    # jupyter-book resolves local extensions relative to the config file, which moves to _build
    local = sphinx.get("local_extensions") or {}
    sphinx["local_extensions"] = {name: str((ROOT / path).resolve()) for name, path in local.items()}
    sphinx["local_extensions"]["student"] = str(Path(__file__).resolve().parent)
    sphinx.setdefault("config", {})["hide_solutions"] = True
    config["title"] = f"{config.get('title', '')} (student edition)".strip()
    launch = config.setdefault("launch_buttons", {})
    launch["binderhub_url"] = launch["colab_url"] = launch["jupyterhub_url"] = ""
    return config


def build_site() -> int:
    """Build the student site into _build/student/html; return jupyter-book's exit status."""
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    config_path = BUILD_DIR / "_config.yml"
    text = "# Written by tools/student.py from _config.yml: do not edit.\n" + yaml.safe_dump(
        student_config(), sort_keys=False
    )
    if not config_path.exists() or config_path.read_text() != text:
        config_path.write_text(text)
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book), "build", str(ROOT), "--config", str(config_path),
               "--path-output", str(BUILD_DIR), "-W", "--keep-going"]
    status = subprocess.call(command, cwd=ROOT)
    if status:
        return status
    if SITE.exists():
        shutil.rmtree(SITE)
    shutil.copytree(BUILD_DIR / "_build" / "html", SITE, copy_function=shutil.copy)  # fresh mtimes
    print(f"student site: {SITE.relative_to(ROOT)}/index.html")
    return 0


# --------------------------------------------------------------------------------------------------
# The Sphinx extension (loaded by the student build only)
# --------------------------------------------------------------------------------------------------


def setup(app):
    """Remove gated solutions under ``hide_solutions`` and ship exercise notebooks as downloads."""
    from docutils import nodes
    from sphinx.transforms import SphinxTransform
    from sphinx.util import logging

    app.setup_extension("sphinx_exercise")
    from sphinx_exercise.directive import SolutionStartDirective
    from sphinx_exercise.nodes import solution_end_node

    logger = logging.getLogger(__name__)

    class hidden_solution(nodes.Element):  # noqa: N801 (docutils names nodes in lower case)
        """Where a suppressed gated solution starts; removed, with its content, before writing."""

    class HiddenSolutionStart(SolutionStartDirective):
        def run(self):
            shown = super().run()  # records the gated structure; returns [] under hide_solutions
            if not self.env.app.config.hide_solutions:
                return shown
            return [hidden_solution(label=self.arguments[0])]

    class RemoveHiddenSolutions(SphinxTransform):
        default_priority = 5  # after sphinx-exercise checks the gated structure, before it merges

        def apply(self):
            for marker in list(self.document.findall(hidden_solution)):
                parent = marker.parent
                start = parent.index(marker)
                end = next((i for i in range(start + 1, len(parent.children))
                            if isinstance(parent.children[i], solution_end_node)), None)
                if end is None:
                    logger.warning(f"solution of {marker['label']}: no {{solution-end}} at the same "
                                   "level; its content would leak", location=marker)
                    parent.remove(marker)
                    continue
                for child in parent.children[start : end + 1]:
                    parent.remove(child)

    def skip(self, node):
        raise nodes.SkipNode

    app.add_node(hidden_solution, html=(skip, None), latex=(skip, None), text=(skip, None))
    app.add_directive("solution-start", HiddenSolutionStart, override=True)
    app.add_transform(RemoveHiddenSolutions)
    app.connect("build-finished", _replace_downloads)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def _replace_downloads(app, exception) -> None:
    """Replace the copied sources of pages with solutions by their student versions."""
    if exception or not app.config.hide_solutions or app.builder.format != "html":
        return
    import jupytext

    sources = Path(app.outdir) / "_sources"
    for path in sorted(sources.rglob("*.ipynb")):
        nbformat.write(student_notebook(nbformat.read(path, as_version=4)), path)
    for path in sorted(sources.rglob("*.md")):
        text = path.read_text()
        if any(OPENING.match(line) for line in text.splitlines()):
            nb = student_notebook(jupytext.reads(text, fmt="md:myst"))
            path.write_text(jupytext.writes(nb, fmt="md:myst"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("command", choices=["site", "notebooks"])
    args = parser.parse_args(argv)
    if args.command == "site":
        return build_site()
    for path in write_student_notebooks():
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
