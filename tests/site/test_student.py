"""The student edition (tools/student.py): no solution reaches it, every exercise does.

The solutions are read from the chapters' notebooks (book/*.ipynb): their explanations, their code, the
code's printed output and images, and the plain ``{solution}`` blocks. Of each, the test keeps the
distinctive pieces (code lines, runs of five or more plain words, output lines) that appear nowhere
outside the solutions, and looks for every one of them in every file of the student site
(_build/student/html: pages, search index, downloads, ...) and of the exercise notebooks. The same check
run on the teacher's site (_build/html, built by `make book`) and notebooks must find them, which proves
that it can fail. The exercise notebooks are then executed up to their first stub.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import sys
from functools import cache
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
TEACHER_SITE = ROOT / "_build" / "html"
sys.path.insert(0, str(ROOT / "tools"))
import student  # noqa: E402  (tools/student.py)

CHAPTERS = sorted(BOOK.glob("[0-9][0-9]-*.ipynb"))
IDS = [c.stem for c in CHAPTERS]
_TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
_IN_TOC = {c["file"] for part in _TOC.get("parts", []) for c in part["chapters"]}
SITE_CHAPTERS = [c for c in CHAPTERS if f"book/{c.stem}" in _IN_TOC]  # the site builds only these
EXERCISE = re.compile(r"^\s*(`{3,}|:{3,})\s*\{exercise(?:-start)?\}\s*(?P<title>.*?)\s*$")
LABEL = re.compile(r"^:label:\s*(\S+)")


TYPOGRAPHIC_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def normalize(text: str) -> str:
    """Collapse whitespace and fold the curly quotes Sphinx typesets back to straight ones."""
    return " ".join(text.translate(TYPOGRAPHIC_QUOTES).split())


def output_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        for kind in ("text/plain", "text/markdown", "text/html", "text/latex"):
            parts.append(output.get("data", {}).get(kind, ""))
    return "\n".join(p if isinstance(p, str) else "".join(p) for p in parts)


# --------------------------------------------------------------------------------------------------
# What the solutions say, and what is public anyway
# --------------------------------------------------------------------------------------------------


@cache
def public_text() -> str:
    """Everything a student may see: the book outside its solutions, the library, the references."""
    parts = []
    for page in sorted(BOOK.rglob("*")):
        if page.suffix == ".ipynb":
            for piece in student.pieces(nbformat.read(page, as_version=4)):
                if piece.kind == "public":
                    parts += [piece.text, output_text(piece.cell) if piece.cell.cell_type == "code" else ""]
        elif page.suffix in {".md", ".bib", ".yml"}:
            parts.append(page.read_text())
    parts += [p.read_text() for p in sorted((ROOT / "dropoutlib").rglob("*.py"))]
    parts += [(ROOT / name).read_text() for name in ("references.bib", "_config.yml", "_toc.yml")]
    return "\n".join(parts)


@cache
def public_normalized() -> tuple[str, str]:
    text = normalize(public_text())
    return text, re.sub(r"[*`_\\]", "", text)  # also without the markup that rendering removes


def is_public(fragment: str) -> bool:
    return any(fragment in text for text in public_normalized())


def prose_runs(markdown: str) -> list[str]:
    """Runs of five or more plain words: they appear verbatim however the markdown is rendered."""
    runs = []
    for paragraph in re.split(r"\n\s*\n", markdown):
        for run in re.split(r"[^A-Za-z0-9 ,.;:\n]|\.{2,}|\s:\S", paragraph):
            run = normalize(run).strip(" ,.;:")
            if len(run.split()) >= 5 and len(run) >= 25:
                runs.append(run)
    return runs


# What an exercise notebook's stub may keep of a solution: signatures, decorators and check calls
KEPT = re.compile(r"^(@|(async )?def \w|class \w)|^([\w.]+\.)?check_\w+\(.*\)$")


def code_lines(code: str) -> list[str]:
    """Lines of code long enough to be distinctive (not ``)``, ``else:`` or ``return x``), except
    those a stub may keep."""
    lines = (normalize(line) for line in code.splitlines())
    return [line for line in lines
            if len(line) >= 16 and re.search(r"[A-Za-z]", line) and not KEPT.match(line)]


def solutions(notebook: Path) -> dict[str, dict]:
    """For each exercise label, the distinctive fragments of its solution and its image hashes."""
    found: dict[str, dict] = {}
    for piece in student.pieces(nbformat.read(notebook, as_version=4)):
        if piece.kind != "solution":
            continue
        entry = found.setdefault(piece.label, {"fragments": set(), "images": set(), "words": set()})
        if piece.cell.cell_type == "code":
            fragments = code_lines(piece.text) + [
                line for line in map(normalize, output_text(piece.cell).splitlines()) if len(line) >= 20
            ]
            for output in piece.cell.outputs:
                for kind, data in output.get("data", {}).items():
                    if kind.startswith("image/") and not kind.endswith("svg+xml"):
                        entry["images"].add(hashlib.sha256(base64.b64decode(data)).hexdigest())
            words = piece.text + "\n" + output_text(piece.cell)
        else:
            fragments = prose_runs(piece.text)
            words = piece.text
        entry["fragments"] |= {f for f in fragments if not is_public(f)}
        entry["words"] |= solution_only_stems(words)
    return found


@cache
def _search_language():
    from sphinx.search.en import SearchEnglish

    return SearchEnglish({})


@cache
def public_stems() -> frozenset[str]:
    lang = _search_language()
    words = lang.split(public_text())
    return frozenset({w.lower() for w in words} | {lang.stem(w).lower() for w in words})


def solution_only_stems(text: str) -> set[str]:
    """Search-index terms (stems, as Sphinx computes them) that only the solutions use."""
    lang = _search_language()
    return {
        lang.stem(w).lower()
        for w in lang.split(text)
        if len(w) >= 4 and w.isalpha()
        and w.lower() not in public_stems() and lang.stem(w).lower() not in public_stems()
    }


def exercises(notebook: Path) -> dict[str, str]:
    """Every exercise of a chapter: label -> title."""
    nb = nbformat.read(notebook, as_version=4)
    found = {}
    for cell in nb.cells:
        lines = cell.source.splitlines() if cell.cell_type == "markdown" else []
        for index, line in enumerate(lines):
            match = EXERCISE.match(line)
            if match:
                label = next(LABEL.match(x)[1] for x in lines[index + 1 :] if LABEL.match(x))
                found[label] = match["title"]
    return found


# --------------------------------------------------------------------------------------------------
# Looking for them in a folder
# --------------------------------------------------------------------------------------------------


def readable_texts(path: Path, data: bytes) -> list[str]:
    """The file's text in the forms a fragment could take in it (raw, tags stripped, cells joined)."""
    text = data.decode("utf-8")
    texts = [normalize(text)]
    if path.suffix in {".html", ".htm", ".xml", ".svg"}:
        texts.append(normalize(html.unescape(re.sub(r"<[^>]*>", "", text))))
    if path.suffix == ".ipynb":
        nb = nbformat.reads(text, as_version=4)
        texts.append(normalize("\n".join(c.source + "\n" + output_text(c) for c in nb.cells)))
    return texts


def search_terms(folder: Path) -> set[str]:
    index = folder / "searchindex.js"
    if not index.exists():
        return set()
    text = index.read_text()
    data = json.loads(text[text.index("(") + 1 : text.rindex(")")])
    return set(data.get("terms", {})) | set(data.get("titleterms", {}))


def find_leaks(folder: Path, chapters: list[Path]) -> list[tuple[str, str, str]]:
    """Every piece of a solution of ``chapters`` in any file under ``folder``: (file, label, piece)."""
    wanted = {label: entry for chapter in chapters for label, entry in solutions(chapter).items()}
    found = set()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        where = str(path.relative_to(folder))
        digest = hashlib.sha256(data).hexdigest()
        try:
            texts = readable_texts(path, data)
        except (UnicodeDecodeError, nbformat.reader.NotJSONError):
            texts = []
        if any("{solution" in text for text in texts):
            found.add((where, "", "a {solution...} directive"))
        for label, entry in wanted.items():
            if digest in entry["images"]:
                found.add((where, label, "an image of its output"))
            found |= {(where, label, f) for f in entry["fragments"] if any(f in t for t in texts)}
    terms = search_terms(folder)
    for label, entry in wanted.items():
        found |= {("searchindex.js", label, f"the term {t!r}") for t in entry["words"] & terms}
    return sorted(found)


def leaks(folder: Path, chapters: list[Path]) -> list[str]:
    return [f"{where}: {label}: {piece}" for where, label, piece in find_leaks(folder, chapters)]


# --------------------------------------------------------------------------------------------------
# The student site
# --------------------------------------------------------------------------------------------------


def newest_source() -> float:
    sources = [ROOT / name for name in ("_config.yml", "_toc.yml", "references.bib")]
    sources += [p for p in BOOK.rglob("*") if p.is_file()]
    sources += list((ROOT / "tools").glob("*.py")) + list((ROOT / "dropoutlib").rglob("*.py"))
    return max(p.stat().st_mtime for p in sources)


@pytest.fixture(scope="module")
def student_site() -> Path:
    """The student site, built now unless a build newer than every source is there."""
    index = student.SITE / "index.html"
    if not index.exists() or index.stat().st_mtime < newest_source():
        assert student.build_site() == 0, "the student site did not build without warnings"
    return student.SITE


def test_the_solutions_have_distinctive_fragments():
    for chapter in CHAPTERS:
        found = solutions(chapter)
        assert set(found) == set(exercises(chapter)), f"{chapter.name}: an exercise has no solution"
        empty = [label for label, entry in found.items() if not entry["fragments"]]
        assert not empty, f"{chapter.name}: nothing distinctive to look for in the solutions of {empty}"


def test_no_solution_reaches_the_student_site(student_site):
    found = leaks(student_site, SITE_CHAPTERS)
    assert not found, f"{len(found)} pieces of solutions in the student site:\n" + "\n".join(found[:30])


def test_the_leak_check_finds_the_solutions_in_the_teacher_site():
    if not (TEACHER_SITE / "index.html").exists():
        pytest.fail("the site is not built: run `make book` first (it writes _build/html)")
    found = leaks(TEACHER_SITE, SITE_CHAPTERS)
    for chapter in SITE_CHAPTERS:
        for label in exercises(chapter):
            assert any(f": {label}: " in line for line in found), f"no leak of {label} found in _build/html"
    assert any(line.startswith("searchindex.js:") for line in found), "the search index check is blind"
    assert any(line.startswith("_sources/") for line in found), "the download check is blind"


@pytest.mark.parametrize("chapter", SITE_CHAPTERS, ids=[c.stem for c in SITE_CHAPTERS])
def test_every_exercise_is_in_the_student_site(student_site, chapter):
    page = (student_site / "book" / f"{chapter.stem}.html").read_text()
    text = normalize(html.unescape(re.sub(r"<[^>]*>", "", page)))
    assert 'class="solution' not in page, "a solution admonition is left on the page"
    labels = exercises(chapter)
    assert len(labels) >= 4
    for number, (label, title) in enumerate(labels.items(), start=1):
        assert re.search(rf'<div class="exercise[^"]*" id="{re.escape(label)}"', page), f"{label} is missing"
        heading = f"Exercise {int(chapter.name[:2])}.{number} ({normalize(re.sub(r'[`*]', '', title))})"
        assert heading in text, f"{label}: no heading {heading!r} on the page"


def test_the_student_download_is_the_exercise_notebook(student_site):
    for chapter in SITE_CHAPTERS:
        shipped = nbformat.read(student_site / "_sources" / "book" / chapter.name, as_version=4)
        expected = student.student_notebook(nbformat.read(chapter, as_version=4))
        assert [c.source for c in shipped.cells] == [c.source for c in expected.cells], chapter.name


def test_the_student_site_has_no_launch_buttons(student_site):
    page = (student_site / "book" / f"{SITE_CHAPTERS[0].stem}.html").read_text()
    assert "colab.research.google.com/github" not in page and "mybinder.org/v2" not in page


# --------------------------------------------------------------------------------------------------
# The exercise notebooks
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory) -> dict[str, Path]:
    written = student.write_student_notebooks(tmp_path_factory.mktemp("student-notebooks"))
    return {path.stem: path for path in written}


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_the_exercise_notebook_has_no_solution_and_every_exercise(notebooks, chapter):
    path = notebooks[chapter.stem]
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    found = [line for line in leaks(path.parent, [chapter]) if line.startswith(f"{path.name}:")]
    assert not found, "solution pieces in the exercise notebook:\n" + "\n".join(found[:30])
    source = "\n".join(c.source for c in nb.cells)
    assert "{solution" not in source
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in nb.cells if c.cell_type == "code"), "outputs are not cleared"
    stubs = {c.metadata[student.STUB_KEY] for c in nb.cells if student.STUB_KEY in c.metadata}
    for label, title in exercises(chapter).items():
        assert f":label: {label}" in source and title in source, f"exercise {label} is missing"
        code_solution = any(p.kind == "solution" and p.cell.cell_type == "code" and p.label == label
                            for p in student.pieces(nbformat.read(chapter, as_version=4)))
        assert (label in stubs) == code_solution, f"{label}: a stub for each solution with code"


def test_the_leak_check_finds_the_solutions_in_the_teacher_notebooks():
    found = leaks(BOOK, CHAPTERS)
    for chapter in CHAPTERS:
        for label in exercises(chapter):
            assert any(line.startswith(f"{chapter.name}: {label}: ") for line in found), label


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_the_exercise_notebook_runs_up_to_its_first_stub(notebooks, chapter):
    nb = nbformat.read(notebooks[chapter.stem], as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(BOOK)}})
    try:
        client.execute()
        error = None
    except CellExecutionError as raised:
        error = raised
    code = [c for c in nb.cells if c.cell_type == "code"]
    failed = [i for i, c in enumerate(code) if any(o.output_type == "error" for o in c.outputs)]
    if error is None:
        assert not failed and all(c.execution_count for c in code), "a cell did not run"
        return
    assert failed, f"execution stopped without an error output: {error}"
    first = code[failed[0]]
    assert student.STUB_KEY in first.metadata, f"an error before the first stub:\n{first.source}\n{error}"
    assert all(c.execution_count for c in code[: failed[0]]), "a cell before the stub did not run"
    # The checks turn an answer's NotImplementedError into an AssertionError that says so.
    assert error.ename == "NotImplementedError" or (
        error.ename == "AssertionError" and "NotImplementedError" in error.evalue
    ), f"the first stub failed with {error.ename}: {error.evalue}"


# --------------------------------------------------------------------------------------------------
# The stubs themselves
# --------------------------------------------------------------------------------------------------


def test_stub_keeps_signatures_docstrings_and_checks_only():
    code = '''
import numpy as np
LIMIT = 3


@decorated
def answer(x: float, p: float = 0.5) -> float:
    """The answer."""
    return x * secret_formula(p)


class Model(Base):
    """A model."""
    size = 4

    def forward(self, x):
        return x + 1


result = answer(2.0)
check_answer(answer)
dropoutlib.exercises.check_model(Model)
'''
    stub = student.stub_source(code, "ex-test-1")
    namespace: dict = {"decorated": lambda f: f, "Base": object, "check_answer": lambda f: None,
                       "dropoutlib": None}
    compile(stub, "<stub>", "exec")
    assert "secret_formula" not in stub and "x + 1" not in stub and "LIMIT" not in stub
    assert "result" not in stub and "size" not in stub and "import" not in stub
    assert "def answer(x: float, p: float=0.5) -> float:" in stub and '"""The answer."""' in stub
    assert "@decorated" in stub and '"""A model."""' in stub and "def forward(self, x):" in stub
    assert "check_answer(answer)" in stub and "dropoutlib.exercises.check_model(Model)" in stub
    assert 'raise NotImplementedError("Exercise ex-test-1: write this function")' in stub
    assert 'raise NotImplementedError("Exercise ex-test-1: write this method")' in stub
    exec(stub.replace("dropoutlib.exercises.check_model(Model)", ""), namespace)  # noqa: S102
    with pytest.raises(NotImplementedError, match="ex-test-1"):
        namespace["answer"](1.0)
    assert student.stub_source("x = 1\nprint(x)", "ex-test-2") == ""


def test_plain_and_gated_solutions_are_told_apart():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "Intro.\n\n````{exercise} One\n:label: ex-t-1\n\nDo it.\n````\n\n"
            "```{solution-start} ex-t-1\n:class: dropdown\n```\n\nBecause of the secret reason."
        ),
        nbformat.v4.new_code_cell("def f(x):\n    return 42\n\n\nprint(f(1))"),
        nbformat.v4.new_markdown_cell(
            "After the code, more secret text.\n\n```{solution-end}\n```\n\n"
            "::::{exercise} Two\n:label: ex-t-2\n\nSay why.\n::::\n\n"
            ":::::{solution} ex-t-2\n:class: dropdown\n\nA plain secret, with a fence:\n\n"
            "```python\nx = 1\n```\n:::::\n\nOutro."
        ),
        nbformat.v4.new_code_cell("y = 2"),
    ]
    out = student.student_notebook(nb)
    text = "\n".join(c.source for c in out.cells)
    assert "secret" not in text and "42" not in text and "solution" not in text
    assert "Intro." in text and "Outro." in text and ":label: ex-t-1" in text and ":label: ex-t-2" in text
    assert [c.cell_type for c in out.cells] == ["markdown", "code", "markdown", "code"]
    assert out.cells[1].metadata[student.STUB_KEY] == "ex-t-1" and "def f(x):" in out.cells[1].source
    assert out.cells[3].source == "y = 2"
    kinds = [(p.kind, p.label) for p in student.pieces(nb)]
    assert ("solution", "ex-t-2") in kinds and kinds[0] == ("public", None)
