"""Loaded by every pytest run in this repository, of the tests or of the notebooks in book/ alone."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))
from chapters import pin_cpu_kernels  # noqa: E402  (tools/chapters.py)

pin_cpu_kernels()  # before torch is first imported, here, in pytest-xdist's workers and in nbval's kernels
