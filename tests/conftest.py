"""Fixtures shared by the test files (the CPU kernels are pinned by the conftest.py at the root)."""

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
