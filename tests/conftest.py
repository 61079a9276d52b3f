"""Fixtures and scheduling shared by the test files."""

from __future__ import annotations

import os

import pytest
import torch

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
    """Under pytest-xdist (``--dist loadgroup``), run every notebook on one worker, one after the other,
    and the browser tests on one worker: two notebook kernels or two browsers never share the two cores,
    while the unit and claims tests fill the other worker."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.xdist_group("notebooks"))
        elif item.get_closest_marker("site"):
            item.add_marker(pytest.mark.xdist_group("browser"))
