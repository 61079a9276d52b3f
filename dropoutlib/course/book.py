"""Helpers for the book's notebooks that must also run where the book's tools are missing (Colab)."""

from __future__ import annotations

import importlib
from typing import TypeVar

__all__ = ["glue"]

T = TypeVar("T")


def _in_ipython_kernel() -> bool:
    """True inside an IPython shell or Jupyter kernel (where a glued value can be recorded)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def glue(name: str, value: T, display: bool = False) -> T:
    """Record ``value`` under ``name`` so that the book's prose can quote it; return ``value``.

    In a Jupyter kernel with MyST-NB installed (the book's build), this is ``myst_nb.glue(name,
    value, display)``: the value's text is stored in the cell's output and the prose shows it with
    ``{glue:text}`name:.3f```. Without MyST-NB (Colab) or outside IPython (a plain script, a test)
    it does nothing and prints nothing. Either way the value is returned, so
    ``acc = glue("acc", round(acc, 4))`` works; end a cell whose last line is a bare ``glue(...)``
    call with ``;`` (or assign the result) so that the notebook does not display the value.

    Glue rounded Python floats and ints (``round(x, 4)``): their text is the same on every run.

    Example:
        >>> glue("test_accuracy", 0.9815)
        0.9815
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got name={name!r}")
    if not isinstance(display, bool):
        raise TypeError(f"display must be True or False, got display={display!r}")
    try:
        myst_nb = importlib.import_module("myst_nb")
    except ImportError:
        return value
    if _in_ipython_kernel():
        myst_nb.glue(name, value, display=display)
    return value
