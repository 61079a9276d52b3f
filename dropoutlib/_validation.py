"""Argument checks shared by the public functions.

Every check raises with a message that names the argument and the value it got, and nothing is
silently clamped: ``dropout(x, p=1.5)`` is an error, not ``dropout(x, p=1.0)``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import torch

__all__ = [
    "check_bool",
    "check_choice",
    "check_floating",
    "check_generator",
    "check_positive_int",
    "check_probability",
    "check_real",
    "check_widths",
]


def check_probability(value: Any, name: str = "p") -> float:
    """Return ``value`` as a float after checking that it is a probability, ``0 <= value <= 1``.

    Accepted: Python ints and floats, NumPy scalars, fractions (anything ``numbers.Real``).
    Refused: ``bool`` (``True`` is not a probability), strings, ``None`` and tensors (TypeError);
    NaN and values outside ``[0, 1]`` (ValueError).

    Example:
        >>> check_probability(0.25)
        0.25
        >>> check_probability(1)
        1.0
        >>> check_probability(1.5)
        Traceback (most recent call last):
        ...
        ValueError: p must be a probability in [0, 1], got p=1.5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a real number, got {name}={value!r} ({type(value).__name__})"
        )
    as_float = float(value)
    if math.isnan(as_float) or not 0.0 <= as_float <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {name}={value!r}")
    return as_float


def check_floating(tensor: Any, name: str = "input") -> None:
    """Check that ``tensor`` is a ``torch.Tensor`` with a floating-point dtype.

    Dropout multiplies by ``1 / q``, which integer tensors cannot hold, so they are refused.

    Example:
        >>> check_floating(torch.zeros(2))
        >>> check_floating(torch.zeros(2, dtype=torch.int64))
        Traceback (most recent call last):
        ...
        TypeError: input must be a floating-point tensor, got dtype torch.int64
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {tensor.dtype}")


def check_positive_int(value: Any, name: str) -> int:
    """Return ``value`` as an int after checking that it is an integer ``>= 1`` (bool refused).

    Example:
        >>> check_positive_int(3, "n")
        3
        >>> check_positive_int(0, "n")
        Traceback (most recent call last):
        ...
        ValueError: n must be a positive integer, got n=0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {name}={value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {name}={value!r}")
    return int(value)


def check_generator(generator: Any, name: str = "generator") -> None:
    """Check that ``generator`` is ``None`` (use the global RNG) or a ``torch.Generator``.

    Example:
        >>> check_generator(torch.Generator().manual_seed(0))
        >>> check_generator(0)
        Traceback (most recent call last):
        ...
        TypeError: generator must be a torch.Generator or None, got generator=0 (int)
    """
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{name} must be a torch.Generator or None, got {name}={generator!r} "
            f"({type(generator).__name__})"
        )


def check_real(value: Any, name: str, *, minimum: float | None = None, positive: bool = False) -> float:
    """Return ``value`` as a float after checking that it is a finite real number (bool refused).

    With ``minimum``, it must also be at least ``minimum``; with ``positive=True``, above zero.

    Example:
        >>> check_real(0.5, "lr", positive=True)
        0.5
        >>> check_real(-1, "noise", minimum=0.0)
        Traceback (most recent call last):
        ...
        ValueError: noise must be a finite number >= 0.0, got noise=-1
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {name}={value!r} ({type(value).__name__})")
    as_float = float(value)
    if not math.isfinite(as_float):
        raise ValueError(f"{name} must be finite, got {name}={value!r}")
    if positive and as_float <= 0:
        raise ValueError(f"{name} must be a finite positive number, got {name}={value!r}")
    if minimum is not None and as_float < minimum:
        raise ValueError(f"{name} must be a finite number >= {minimum}, got {name}={value!r}")
    return as_float


def check_choice(value: Any, name: str, choices: Sequence[Any]) -> Any:
    """Return ``value`` after checking that it is one of ``choices``.

    Example:
        >>> check_choice("mean", "reduction", ("mean", "sum"))
        'mean'
        >>> check_choice("max", "reduction", ("mean", "sum"))
        Traceback (most recent call last):
        ...
        ValueError: reduction must be one of ('mean', 'sum'), got reduction='max'
    """
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {name}={value!r}")
    return value


def check_bool(value: Any, name: str) -> bool:
    """Return ``value`` after checking that it is ``True`` or ``False`` (not 0, 1 or a string).

    Example:
        >>> check_bool("False", "training")
        Traceback (most recent call last):
        ...
        TypeError: training must be True or False, got training='False' (str)
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {name}={value!r} ({type(value).__name__})")
    return value


def check_widths(hidden: Any, name: str = "hidden") -> tuple[int, ...]:
    """Return the hidden-layer widths ``hidden`` as a tuple of positive ints (a non-empty sequence).

    Example:
        >>> check_widths([64, 32])
        (64, 32)
        >>> check_widths(64)
        Traceback (most recent call last):
        ...
        TypeError: hidden must be a non-empty sequence of layer widths such as (128, 128), got hidden=64
    """
    if isinstance(hidden, str | bytes) or not isinstance(hidden, Sequence) or len(hidden) == 0:
        raise TypeError(
            f"{name} must be a non-empty sequence of layer widths such as (128, 128), got {name}={hidden!r}"
        )
    return tuple(check_positive_int(width, f"{name}[{i}]") for i, width in enumerate(hidden))
