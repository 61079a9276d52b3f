"""Fixtures and scheduling shared by the test files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from chapters import pin_cpu_kernels  # noqa: E402  (tools/chapters.py)

pin_cpu_kernels()  # before torch is imported here, in pytest-xdist's workers and in nbval's kernels

import torch  # noqa: E402

if not torch.cuda.is_available():
    # Without a GPU, Triton kernels (dropoutlib.fused) run through Triton's interpreter; it must be
    # switched on before Triton is first imported.
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(scope="module")
def one_thread():
    """Train on one thread, as the chapters do: the networks are tiny and two threads are slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    """Schedule the tests for pytest-xdist's ``--dist loadgroup`` on the machine's two cores.

    Every notebook runs on one worker, one after the other, so that two notebook kernels never compete
    for the cores while the other worker runs the Python tests; the browser tests share one browser
    and the student-edition tests one build of the student site. Every other test file is a group of
    its own, so that the results a file caches (``functools.cache`` of a claims test's runs) are
    computed once, by the worker that runs the whole file.
    """
    for item in items:
        if item.path.suffix == ".ipynb":
            group = "notebooks"
        elif item.get_closest_marker("site"):
            group = "browser"
        else:
            group = str(item.path.relative_to(config.rootpath))
        item.add_marker(pytest.mark.xdist_group(group))
