"""Every `Example:` in dropoutlib's docstrings runs, and every public module has at least one."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import dropoutlib

MODULES = sorted(
    name for _, name, _ in pkgutil.walk_packages(dropoutlib.__path__, prefix="dropoutlib.")
)
# private helpers of the checks, and the packages that only gather what their modules define
WITHOUT_EXAMPLES = {
    "dropoutlib.exercises._answers",
    "dropoutlib.course",
    "dropoutlib.diagnostics",
    "dropoutlib.experiments",
    "dropoutlib.nn",
}


def test_every_module_is_collected():
    assert {"dropoutlib.functional", "dropoutlib.exercises.from_scratch"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    results = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert results.failed == 0, f"{results.failed} docstring examples of {name} fail"
    if name not in WITHOUT_EXAMPLES:
        assert results.attempted > 0, f"{name} has no docstring example"
