"""What every check does with a student's answer: make sure it is a function, call it, read a number.

A stub (``...``, ``return None``, ``raise NotImplementedError``) and a crash become an
``AssertionError`` that says so; passing something that is not a function is a ``TypeError``.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def require_function(answer: Any, what: str) -> None:
    """Raise ``TypeError`` naming ``what`` unless ``answer`` is a function (not a class)."""
    if not callable(answer) or inspect.isclass(answer):
        raise TypeError(f"pass your {what} (a function), got {answer!r} ({type(answer).__name__})")


def describe(value: Any) -> str:
    """A short description of an argument, for messages: tensors by shape and dtype."""
    if isinstance(value, torch.Tensor | np.ndarray):
        return f"{type(value).__name__} of shape {tuple(value.shape)}, dtype {value.dtype}"
    return repr(value)


def call_answer(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the student's function; turn a stub or a crash into an ``AssertionError`` that says so."""
    try:
        result = fn(*args, **kwargs)
    except NotImplementedError:
        raise AssertionError("your function raises NotImplementedError: write its body first") from None
    except Exception as error:  # the student's bug, reported with the call that triggered it
        shown = ", ".join([*(describe(a) for a in args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        raise AssertionError(
            f"your function raised {type(error).__name__}: {error} (called with {shown})"
        ) from error
    if result is None or result is Ellipsis:
        raise AssertionError(f"your function returned {result!r}: did you forget the `return`?")
    return result


def as_number(value: Any, what: str) -> float | int:
    """``value`` as a Python number (one-element tensors and arrays included), else AssertionError."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    elif isinstance(value, np.ndarray | np.generic) and value.size == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise AssertionError(f"{what} should return a number, got {value!r} ({type(value).__name__})")
    return int(value) if isinstance(value, numbers.Integral) else float(value)
