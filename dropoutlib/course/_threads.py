"""One helper for the functions that run many small tensor operations on a fixed number of threads.

Example:
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(count: int | None = 1) -> Iterator[None]:
    """Run torch on ``count`` intra-op threads (``None``: leave the setting alone), restored on exit.

    The networks and tensors of this course are small: a second thread buys little, and threads that
    spin-wait on a busy machine slow the work down many times over.
    """
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
