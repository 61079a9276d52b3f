"""One call that seeds every random number generator a chapter uses.

Dropout is random by design: the masks come from torch's global generator (unless a
``torch.Generator`` is passed explicitly), weight initialisation too, and NumPy or Python's
``random`` may be used for data. A chapter calls :func:`seed_everything` once at the top so that two
executions print the same numbers.
"""

from __future__ import annotations

import numbers
import random
from typing import Any

import numpy as np
import torch

__all__ = ["MAX_SEED", "check_seed", "seed_everything"]

#: Largest seed accepted: NumPy's legacy global generator takes seeds in ``[0, 2**32 - 1]``.
MAX_SEED = 2**32 - 1


def check_seed(seed: Any, name: str = "seed") -> int:
    """Return ``seed`` as an int after checking that it is an integer in ``[0, 2**32 - 1]``.

    Example:
        >>> check_seed(7)
        7
        >>> check_seed(-1)
        Traceback (most recent call last):
        ...
        ValueError: seed must be an integer in [0, 4294967295], got seed=-1
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {name}={seed!r} ({type(seed).__name__})")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{name} must be an integer in [0, {MAX_SEED}], got {name}={seed!r}")
    return int(seed)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's ``random``, NumPy's global generator and torch's global generator with ``seed``.

    After this call, everything drawn from the global generators is a fixed function of ``seed``:
    weight initialisation (``nn.Linear``), dropout masks (``nn.Dropout`` in training mode),
    ``torch.rand``, ``np.random.rand``, ``random.random``.

    Returns:
        A fresh ``torch.Generator`` seeded with ``seed``, for code that takes an explicit generator
        (``dropoutlib.functional.dropout(..., generator=g)``) and so does not disturb the global stream.

    Example:
        >>> g = seed_everything(0)
        >>> a = torch.rand(3)
        >>> _ = seed_everything(0)
        >>> torch.equal(a, torch.rand(3))
        True
        >>> torch.equal(torch.rand(2, generator=g), torch.rand(2, generator=seed_everything(0)))
        True
    """
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (the legacy global generator is what we mean to seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
