"""Helpers for the book's notebooks that must also run where the book's tools are missing (Colab)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["glue", "table"]

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

    Glue rounded Python floats and ints (``round(x, 4)``): their text is the same on every run. A
    NumPy scalar is recorded as the Python number it holds (``.item()``): NumPy 2 writes its text as
    ``np.float64(0.25)``, which the book's ``{glue:text}`name:.2f``` cannot format.

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
        myst_nb.glue(name, value.item() if isinstance(value, np.generic) else value, display=display)
    return value


def table(rows: Sequence[Mapping[str, Any]], *, index: str | None = None, digits: int = 4) -> pd.DataFrame:
    """The rows of a results table as a pandas DataFrame, floats rounded to ``digits`` decimals.

    A notebook shows a DataFrame as an HTML table on the site (and as aligned text in a terminal), so
    chapters build their tables with this instead of aligning ``print`` columns by hand. ``index``
    names the column that labels the rows (it replaces the 0, 1, 2, ... index).

    Example:
        >>> frame = table([{"p": 0.0, "test loss": 0.25432}, {"p": 0.5, "test loss": 0.20311}], index="p")
        >>> frame.loc[0.5, "test loss"]
        np.float64(0.2031)
        >>> list(frame.columns), frame.index.name
        (['test loss'], 'p')
    """
    import pandas as pd

    if isinstance(rows, Mapping) or not isinstance(rows, Sequence) or not rows:
        raise TypeError(f"rows must be a non-empty sequence of dicts, got rows={rows!r}")
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 0:
        raise ValueError(f"digits must be a non-negative int, got digits={digits!r}")
    frame = pd.DataFrame(list(rows))
    if index is not None:
        if index not in frame.columns:
            raise ValueError(f"index must name a column of rows, got index={index!r}")
        frame = frame.set_index(index)
    return frame.round(digits)
