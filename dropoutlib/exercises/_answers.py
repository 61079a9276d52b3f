"""What every check does with a student's answer: make sure it is a function, call it, read a number.

A stub (``...``, ``return None``, ``raise NotImplementedError``) and a crash become an
``AssertionError`` that says so; passing something that is not a function is a ``TypeError``.
"""

from __future__ import annotations

import inspect
import math
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


def check_kept_scale(call: str, ratio: torch.Tensor, p: float, what: str) -> None:
    """Raise an ``AssertionError`` naming the mistake unless every kept one of ``what`` ("values",
    "channels", "examples") was multiplied by ``1/(1-p)``; ``ratio`` holds output / input where kept."""
    q = 1 - p
    low, high = float(ratio.min()), float(ratio.max())
    if not math.isclose(low, high, rel_tol=1e-5):
        raise AssertionError(
            f"{call} multiplied kept {what} by factors from {low:.4f} to {high:.4f}; every kept one "
            f"must be multiplied by the same 1/(1-p) = {1 / q:.4f}"
        )
    if math.isclose(low, 1 / q, rel_tol=1e-5):
        return
    for value, mistake in (
        (1.0, f"forgets the 1/(1-p) scaling: kept {what} equal the input, so the mean shrinks"),
        (1 / p, f"scales kept {what} by 1/p = {1 / p:.4f} instead of 1/(1-p) = {1 / q:.4f}"),
        (q, f"multiplies kept {what} by 1-p = {q:.4f}: divide by 1-p instead"),
    ):
        if math.isclose(low, value, rel_tol=1e-5):
            raise AssertionError(f"{call} {mistake}")
    raise AssertionError(f"{call} multiplied kept {what} by {low:.4f}; expected 1/(1-p) = {1 / q:.4f}")


def check_tensor_like(
    result: Any,
    x: torch.Tensor,
    call: str,
    *,
    tensor_hint: str = "",
    shape_hint: str = "the output must have the input's shape",
    dtype_hint: str = "keep the input's dtype",
) -> torch.Tensor:
    """Return ``result`` after checking that it is a tensor of ``x``'s shape and dtype; otherwise raise an
    ``AssertionError`` that says what came back, followed by the matching hint."""
    if not isinstance(result, torch.Tensor):
        kind = f"a value of type {type(result).__name__}"
        what = describe(result) if isinstance(result, np.ndarray) else kind
        raise AssertionError(f"{call} returned {what}; return a torch.Tensor{tensor_hint}")
    if result.shape != x.shape:
        raise AssertionError(
            f"{call} returned shape {tuple(result.shape)} for an input of shape {tuple(x.shape)}: "
            + shape_hint
        )
    if result.dtype != x.dtype:
        raise AssertionError(f"{call} returned dtype {result.dtype} for a {x.dtype} input: {dtype_hint}")
    return result
