"""The chapters themselves: paired with their sources, executed with outputs, and built to the anatomy.

nbval (run by `make test` on book/*.ipynb) re-executes each notebook and compares its outputs with the
stored ones; these tests make sure that comparison has something to compare, and that every chapter has
what a reader and an instructor expect.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import chapters  # noqa: E402  (tools/chapters.py)

SOURCES = chapters.chapter_sources()
IDS = [s.stem for s in SOURCES]


def test_there_are_chapters():
    assert len(SOURCES) >= 3, f"expected the three chapters of Part I, found {IDS}"


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_source_and_notebook_are_paired(source):
    assert chapters.differences(source) == []


def test_pairing_check_catches_an_edited_source(tmp_path):
    source = SOURCES[0]
    edited = tmp_path / source.name  # same name, so it is compared with the same notebook
    cell = "```{code-cell} ipython3\n"
    edited.write_text(source.read_text().replace(cell, cell + "x = 1  # an edit\n", 1))
    problems = chapters.differences(edited)
    assert problems and "differs" in problems[0]


def test_pairing_check_catches_an_edited_toggle_label(tmp_path):
    label = 'code_prompt_show: "Check: '
    source = next(s for s in SOURCES if label in s.read_text())
    edited = tmp_path / source.name
    edited.write_text(source.read_text().replace(label, 'code_prompt_show: "Edited: ', 1))
    problems = chapters.differences(edited)
    assert problems and "differs" in problems[0]


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_notebook_has_stored_outputs_and_no_errors(source):
    nb = nbformat.read(chapters.notebook_for(source), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    unexecuted = [c.source.splitlines()[0] for c in code if c.execution_count is None]
    assert not unexecuted, f"cells never executed (run `make chapter`): {unexecuted[:3]}"
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), "cells were not executed once, in order"
    assert sum(bool(c.outputs) for c in code) >= len(code) // 3, "too few stored outputs to validate"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"stored error outputs: {[e.ename for e in errors]}"


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_chapter_anatomy(source):
    text = source.read_text()
    nb = jupytext.read(source)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert re.search(r"admonition\}? *What you will learn", text), "no 'What you will learn' box"
    exercises = re.findall(r"\{exercise\}", text)
    assert 4 <= len(exercises) <= 6, f"expected 4-6 exercises, found {len(exercises)}"
    solutions = re.findall(r"\{solution(?:-start)?\} *(\S+)\n:class: dropdown", text)
    assert len(solutions) == len(exercises), "every exercise needs a solution in a dropdown"
    checks = set(re.findall(r"\b(check_\w+)\(", code))
    assert len(checks) >= 2, f"at least two exercises need an automatic check, found {checks}"
    assert "{glue:" in text and "glue(" in code, "numbers in the prose must be glued from cells"
    assert re.search(r"\bcheck\(", code) and re.search(r"\w_claims\(", code), (
        "a chapter checks its claims through the claims functions of its experiments module")
    assert "{cite:p}" in text or "{cite:t}" in text, "a chapter cites its sources"


def test_every_chapter_is_in_the_table_of_contents():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = {c["file"] for part in toc["parts"] for c in part["chapters"]}
    missing = [f"book/{s.stem}" for s in SOURCES if f"book/{s.stem}" not in files]
    assert not missing, f"chapters missing from _toc.yml: {missing}"


def test_tests_and_notebooks_run_on_the_pinned_cpu_kernels():
    """The root conftest.py pins torch's CPU kernels (tools/chapters.py does so for each notebook), so the
    numbers nbval compares do not depend on whether the machine has AVX-512."""
    import platform

    import torch

    for name, value in chapters.PINNED_CPU_KERNELS.items():
        assert os.environ.get(name) == value, f"{name} is not pinned to {value}"
    if platform.machine() in ("x86_64", "AMD64"):
        assert torch.backends.cpu.get_cpu_capability() in ("AVX2", "DEFAULT")


def test_glue_diff_lists_what_a_reader_would_see_change():
    """`tools/chapters.py glue-diff` (how a change is checked to keep every quoted number) finds a
    changed value, and every value of a notebook that did not exist at the compared revision."""
    source = SOURCES[0]
    nb = json.loads(chapters.notebook_for(source).read_text())
    values = chapters.glued_values(nb)
    assert values and all(values.values()), "the first chapter glues values with text"
    name = sorted(values)[0]
    for output in (o for cell in nb["cells"] for o in cell.get("outputs", [])):
        if output.get("metadata", {}).get("scrapbook", {}).get("name") == name:
            output["data"][chapters.GLUE_MIME] = "tampered"
    assert chapters.glued_values(nb)[name] == "tampered"
    first_commit = subprocess.run(["git", "rev-list", "--max-parents=0", "HEAD"], cwd=ROOT,
                                  capture_output=True, text=True, check=True).stdout.split()[0]
    assert len(chapters.glue_differences(source, first_commit)) == len(values)
