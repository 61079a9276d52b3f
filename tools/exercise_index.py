"""Write the exercise index of the instructors' page (book/instructors.md) from the chapter sources.

For every ``{exercise}`` in ``chapters/NN-slug.md``: its number and title, the chapter, whether its
solution calls an automatic check from ``dropoutlib.exercises`` (and which), and the difficulty and
time estimate recorded in ``chapters/exercises.yml``. Usage::

    python tools/exercise_index.py           # rewrite the table in book/instructors.md
    python tools/exercise_index.py --check   # exit 1 if the table is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
ESTIMATES = CHAPTERS / "exercises.yml"
PAGE = ROOT / "book" / "instructors.md"
START, END = "<!-- exercise-index:start -->", "<!-- exercise-index:end -->"
DIFFICULTY = {1: "easy", 2: "medium", 3: "hard"}

EXERCISE = re.compile(r"^`{3,}\{exercise\} *(?P<title>.*)\n:label: *(?P<label>\S+)", re.MULTILINE)
SOLUTION = re.compile(
    r"\{solution-start\} *(?P<label>\S+)\n(?P<body>.*?)\{solution-end\}"
    r"|^`{3,}\{solution\} *(?P<plain>\S+)\n(?P<plain_body>.*?)^`{3,}$",
    re.MULTILINE | re.DOTALL,
)
CHECK_CALL = re.compile(r"\b(check_\w+)\(")


@dataclass(frozen=True)
class Exercise:
    chapter: int
    number: int
    label: str
    title: str
    checks: tuple[str, ...]


def chapter_exercises(source: Path) -> list[Exercise]:
    """The exercises of one chapter source, in order, with the checks their solutions call."""
    text = source.read_text()
    chapter = int(source.name[:2])
    solutions = {}
    for match in SOLUTION.finditer(text):
        label = match["label"] or match["plain"]
        body = match["body"] or match["plain_body"] or ""
        solutions[label] = tuple(dict.fromkeys(CHECK_CALL.findall(body)))
    return [
        Exercise(chapter, n, m["label"], m["title"].strip(), solutions.get(m["label"], ()))
        for n, m in enumerate(EXERCISE.finditer(text), start=1)
    ]


def all_exercises() -> list[Exercise]:
    return [e for source in sorted(CHAPTERS.glob("[0-9][0-9]-*.md")) for e in chapter_exercises(source)]


def estimates() -> dict[str, dict[str, int]]:
    return yaml.safe_load(ESTIMATES.read_text())


def table(exercises: list[Exercise], estimated: dict[str, dict[str, int]]) -> str:
    """The exercise index as a Markdown table, with a line of totals."""
    rows = [
        "| exercise (chapter.number) | difficulty | time | automatic check |",
        "| --- | --- | --- | --- |",
    ]
    for e in exercises:
        est = estimated[e.label]
        check = ", ".join(f"`{c}`" for c in e.checks) or "no (written or open answer)"
        rows.append(
            f"| {e.chapter}.{e.number} {{ref}}`{e.title} <{e.label}>` "
            f"| {DIFFICULTY[est['difficulty']]} | {est['minutes']}\u00a0min | {check} |"
        )
    checked = sum(bool(e.checks) for e in exercises)
    minutes = sum(estimated[e.label]["minutes"] for e in exercises)
    rows.append(
        f"\n{len(exercises)} exercises, {checked} with an automatic check; about {minutes} minutes in all."
    )
    return "\n".join(rows)


def problems(exercises: list[Exercise], estimated: dict[str, dict[str, int]]) -> list[str]:
    """What is wrong with the index data: exercises without estimates, estimates without exercises."""
    labels = [e.label for e in exercises]
    found = [f"{label}: no entry in chapters/exercises.yml" for label in labels if label not in estimated]
    found += [
        f"{label}: in chapters/exercises.yml but in no chapter" for label in estimated if label not in labels
    ]
    for label, est in estimated.items():
        if (
            est.get("difficulty") not in DIFFICULTY
            or not isinstance(est.get("minutes"), int)
            or est["minutes"] <= 0
        ):
            found.append(f"{label}: needs difficulty 1-3 and a positive whole number of minutes, got {est}")
    return found


def rendered_page(page_text: str, exercises: list[Exercise], estimated: dict[str, dict[str, int]]) -> str:
    before, rest = page_text.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{table(exercises, estimated)}\n{END}{after}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if book/instructors.md is out of date")
    args = parser.parse_args(argv)
    exercises, estimated = all_exercises(), estimates()
    found = problems(exercises, estimated)
    if found:
        print("\n".join(found), file=sys.stderr)
        return 1
    current = PAGE.read_text()
    wanted = rendered_page(current, exercises, estimated)
    if args.check:
        if current != wanted:
            print("book/instructors.md is out of date: run `python tools/exercise_index.py`", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(wanted)
    print(f"wrote the index of {len(exercises)} exercises to {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
