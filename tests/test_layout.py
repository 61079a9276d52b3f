"""The layout of DESIGN.md: one name per chapter everywhere, and a library that never imports the course.

A chapter ``chapters/NN-slug.md`` has its notebook ``book/NN-slug.ipynb``, its experiments
``dropoutlib/experiments/slug.py`` and exercise checks ``dropoutlib/exercises/slug.py`` (dashes become
underscores), its tests ``tests/chapters/test_slug_claims.py`` and ``test_slug_exercises.py``, and
exercise labels ``ex-slug-N``; no experiments or exercises module is left without a chapter. The
library (everything in ``dropoutlib`` outside ``course``, ``experiments`` and ``exercises``) imports
none of those three, and ``course`` imports neither ``experiments`` nor ``exercises``.

Each rule is a function of the repository's root that returns what breaks it, so the last test can
break every rule once in a small copy and watch it fire.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COURSE_SIDE = ("course", "experiments", "exercises")
NOT_CHAPTERS = {"__init__", "_answers"}  # the packages themselves, and the checks' shared helpers


def chapter_slugs(root: Path) -> dict[str, str]:
    """``{"01-overfitting": "overfitting", ...}``: each chapter's file stem and its module name."""
    return {md.stem: md.stem.split("-", 1)[1].replace("-", "_")
            for md in sorted((root / "chapters").glob("[0-9][0-9]-*.md"))}


def missing_pieces(root: Path) -> list[str]:
    problems = []
    for stem, slug in chapter_slugs(root).items():
        expected = [f"book/{stem}.ipynb", f"dropoutlib/experiments/{slug}.py",
                    f"dropoutlib/exercises/{slug}.py", f"tests/chapters/test_{slug}_claims.py",
                    f"tests/chapters/test_{slug}_exercises.py"]
        problems += [f"{stem}: no {path}" for path in expected if not (root / path).exists()]
    return problems


def orphan_modules(root: Path) -> list[str]:
    slugs = set(chapter_slugs(root).values())
    return [f"{path.relative_to(root)} belongs to no chapter"
            for folder in ("experiments", "exercises")
            for path in sorted((root / "dropoutlib" / folder).glob("*.py"))
            if path.stem not in slugs | NOT_CHAPTERS]


def orphan_tests(root: Path) -> list[str]:
    slugs = sorted(chapter_slugs(root).values(), key=len, reverse=True)
    return [f"{path.relative_to(root)} names no chapter"
            for path in sorted((root / "tests" / "chapters").glob("test_*.py"))
            if path.stem != "test_exercise_checks"
            and not any(path.stem.startswith(f"test_{slug}_") for slug in slugs)]


def wrong_exercise_labels(root: Path) -> list[str]:
    problems = []
    for stem in chapter_slugs(root):
        text = (root / "chapters" / f"{stem}.md").read_text()
        slug = stem.split("-", 1)[1]
        labels = re.findall(r"^:label: (ex-[\w-]+)$", text, flags=re.M)
        problems += [f"{stem}: exercise label {label}" for label in labels
                     if not re.fullmatch(rf"ex-{re.escape(slug)}-\d+", label)]
    return problems


def imported_modules(path: Path) -> set[str]:
    """Every dropoutlib module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("dropoutlib")}


def forbidden_imports(root: Path) -> list[str]:
    problems = []
    package = root / "dropoutlib"
    for path in sorted(package.rglob("*.py")):
        part = path.relative_to(package).parts[0]
        forbidden = COURSE_SIDE if part not in COURSE_SIDE else (
            ("experiments", "exercises") if part == "course" else ())
        for name in sorted(imported_modules(path)):
            if name.split(".")[1:2] and name.split(".")[1] in forbidden:
                problems.append(f"{path.relative_to(root)} imports {name}")
    return problems


RULES = [missing_pieces, orphan_modules, orphan_tests, wrong_exercise_labels, forbidden_imports]


@pytest.mark.parametrize("rule", RULES, ids=[rule.__name__ for rule in RULES])
def test_layout(rule):
    assert rule(ROOT) == []


def test_there_are_fourteen_chapters_under_their_slugs():
    slugs = chapter_slugs(ROOT)
    assert len(slugs) >= 14 and slugs["01-overfitting"] == "overfitting"
    assert slugs["14-fused-dropout"] == "fused_dropout"


def test_each_rule_fires_when_broken(tmp_path):
    root = tmp_path / "repo"
    for folder in ("chapters", "book", "dropoutlib", "tests/chapters"):
        shutil.copytree(ROOT / folder, root / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.ipynb_checkpoints"))
    assert all(rule(root) == [] for rule in RULES)

    (root / "dropoutlib/exercises/overfitting.py").unlink()
    (root / "dropoutlib/experiments/leftover.py").write_text("")
    (root / "tests/chapters/test_leftover_claims.py").write_text("")
    chapter = root / "chapters/02-from-scratch.md"
    chapter.write_text(chapter.read_text().replace(":label: ex-from-scratch-1", ":label: ex-scratch-1"))
    nn_file = root / "dropoutlib/nn/dropout.py"
    nn_file.write_text(nn_file.read_text() + "\n\ndef _f():\n    from dropoutlib.course import plots\n")
    course_file = root / "dropoutlib/course/data.py"
    course_file.write_text(course_file.read_text() + "\nimport dropoutlib.experiments.ensemble\n")

    assert missing_pieces(root) == ["01-overfitting: no dropoutlib/exercises/overfitting.py"]
    assert orphan_modules(root) == ["dropoutlib/experiments/leftover.py belongs to no chapter"]
    assert orphan_tests(root) == ["tests/chapters/test_leftover_claims.py names no chapter"]
    assert wrong_exercise_labels(root) == ["02-from-scratch: exercise label ex-scratch-1"]
    assert forbidden_imports(root) == [
        "dropoutlib/course/data.py imports dropoutlib.experiments.ensemble",
        "dropoutlib/nn/dropout.py imports dropoutlib.course",
        "dropoutlib/nn/dropout.py imports dropoutlib.course.plots",
    ]
