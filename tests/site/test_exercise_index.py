"""The instructors' exercise index lists every exercise, with estimates, and is up to date."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import exercise_index  # noqa: E402  (tools/exercise_index.py)


def test_every_exercise_has_estimates_and_every_estimate_an_exercise():
    assert exercise_index.problems(exercise_index.all_exercises(), exercise_index.estimates()) == []


def test_problems_are_reported():
    exercises = exercise_index.all_exercises()
    estimated = dict(exercise_index.estimates())
    missing = exercises[0].label
    del estimated[missing]
    estimated["ex-nowhere-1"] = {"difficulty": 4, "minutes": 10}
    found = exercise_index.problems(exercises, estimated)
    assert any(missing in f and "no entry" in f for f in found)
    assert any("ex-nowhere-1" in f and "in no chapter" in f for f in found)
    assert any("ex-nowhere-1" in f and "difficulty 1-3" in f for f in found)


def test_the_instructors_page_shows_the_current_index():
    assert exercise_index.main(["--check"]) == 0, "run `python tools/exercise_index.py`"


def test_index_knows_which_exercises_are_checked():
    by_label = {e.label: e for e in exercise_index.all_exercises()}
    assert by_label["ex-from-scratch-1"].checks == ("check_dropout", "check_dropout_backward")
    assert all(check.startswith("check_") for e in by_label.values() for check in e.checks)
