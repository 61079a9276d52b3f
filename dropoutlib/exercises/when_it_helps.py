"""Checks for the exercises of chapter 8, "When does dropout help, and how much?".

Each ``check_*`` takes the student's function, prints one line when it is right, and otherwise raises
an ``AssertionError`` whose message names the mistake. A stub (returning ``None`` or ``...``, raising
``NotImplementedError``) never passes. Passing something that is not a function raises ``TypeError``.

Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` the probability of keeping it.
The 2014 JMLR paper writes ``p`` for the probability of *keeping* a unit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dropoutlib.exercises._answers import as_number, call_answer, describe, require_function

__all__ = ["check_idx_header", "check_paired_gain", "check_units_for_dropout"]


def check_units_for_dropout(units_for_dropout: Callable[[int, float], Any]) -> None:
    """Check ``units_for_dropout(n, p)``: the width a dropout layer needs to keep ``n`` units on average.

    A layer of :math:`N` units keeps :math:`qN` of them on average, so keeping :math:`n` needs
    :math:`N = n / q`, rounded up to a whole number of units. (The JMLR paper writes the rule as
    :math:`n/p` with :math:`p` the probability of *keeping* a unit.)

    Example:
        >>> import math
        >>> def units_for_dropout(n, p):
        ...     return math.ceil(n / (1 - p))
        >>> check_units_for_dropout(units_for_dropout)
        Correct: a dropout layer needs ceil(n / q) units to keep n of them on average.
    """
    require_function(units_for_dropout, "units_for_dropout")
    # q is a power of two or n / q is far from a whole number: no rounding noise decides the answer
    for n, p in ((100, 0.5), (10, 0.3), (7, 0.75), (50, 0.0), (12, 0.45), (3, 0.875)):
        q = 1.0 - p
        want = math.ceil(n / q - 1e-9)
        got = as_number(call_answer(units_for_dropout, n, p), "units_for_dropout")
        if got == want:
            continue
        where = f"units_for_dropout({n}, {p}) returned {got!r}, expected {want}"
        if math.isclose(got, n / q, rel_tol=1e-9):
            raise AssertionError(f"{where}: a layer has a whole number of units: round n/q up (math.ceil)")
        if got in (math.floor(n / q), round(n / q)):
            raise AssertionError(
                f"{where}: round UP: {got} units keep only {got * q:.3g} on average, fewer than {n}"
            )

        def near(x: float, got: float = got) -> bool:
            return math.isclose(got, x, rel_tol=1e-9) or got in (math.floor(x), math.ceil(x))

        if p > 0 and near(n / p):
            raise AssertionError(
                f"{where}: the paper's n/p divides by the probability of KEEPING a unit; with p the "
                f"drop probability that is n/q = n/(1 - p)"
            )
        if near(n * q):
            raise AssertionError(
                f"{where}: n*q is how many of n units survive; to keep n units the layer needs n/q"
            )
        if near(n * (1 + p)):
            raise AssertionError(f"{where}: n*(1 + p) is too few for large p; the layer needs n/q units")
        raise AssertionError(where)
    print("Correct: a dropout layer needs ceil(n / q) units to keep n of them on average.")


def _pair(value: Any, call: str) -> tuple[float, float]:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise AssertionError(
            f"{call} should return two numbers (mean gain, standard error), got {describe(value)}"
        )
    return float(as_number(value[0], call)), float(as_number(value[1], call))


def check_paired_gain(gain_with_error: Callable[[np.ndarray, np.ndarray], Any]) -> None:
    r"""Check ``gain_with_error(base, drop)``: the mean gain over seeds and its paired standard error.

    ``base[s]`` and ``drop[s]`` are the test accuracies of the network without and with dropout
    trained with seed ``s`` (same data, same initial weights). With :math:`d_s = \text{drop}_s -
    \text{base}_s` over :math:`k` seeds, the answer is :math:`(\bar d, s_d/\sqrt k)`, where
    :math:`s_d` is the sample standard deviation of the :math:`d_s` (``ddof=1``).

    Example:
        >>> def gain_with_error(base, drop):
        ...     d = drop - base
        ...     return d.mean(), d.std(ddof=1) / len(d) ** 0.5
        >>> check_paired_gain(gain_with_error)
        Correct: the mean of the per-seed differences, and s_d / sqrt(k).
    """
    require_function(gain_with_error, "gain_with_error")
    cases = [
        # the seeds move both accuracies together: pairing matters
        (np.array([0.90, 0.94, 0.88, 0.95, 0.92]), np.array([0.92, 0.95, 0.91, 0.96, 0.95])),
        (np.array([0.80, 0.86, 0.83]), np.array([0.81, 0.89, 0.83])),
    ]
    for base, drop in cases:
        got_mean, got_se = _pair(call_answer(gain_with_error, base.copy(), drop.copy()), "gain_with_error")
        d = drop - base
        k = len(d)
        mean, se = d.mean(), d.std(ddof=1) / math.sqrt(k)
        where = f"for base={base.tolist()}, drop={drop.tolist()}"
        if not math.isclose(got_mean, mean, rel_tol=1e-6, abs_tol=1e-12):
            if math.isclose(got_mean, -mean, rel_tol=1e-6):
                raise AssertionError(
                    f"{where}: the sign is flipped: the gain is drop - base, got {got_mean:.6g}"
                )
            raise AssertionError(f"{where}: the mean gain should be {mean:.6g}, got {got_mean:.6g}")
        if math.isclose(got_se, se, rel_tol=1e-6):
            continue
        message = f"{where}: the standard error should be {se:.6g}, got {got_se:.6g}"
        unpaired = math.sqrt(base.var(ddof=1) / k + drop.var(ddof=1) / k)
        wrong = [
            (
                unpaired,
                "that is the UNPAIRED standard error, which treats the two runs of a seed as "
                "independent; they share data and initial weights, so use the differences d_s",
            ),
            (d.std(ddof=0) / math.sqrt(k), "use the sample standard deviation (ddof=1), not ddof=0"),
            (d.std(ddof=1), "that is the standard deviation of the differences; divide by sqrt(k)"),
            (d.std(ddof=1) / k, "divide the standard deviation by sqrt(k), not by k"),
            (d.std(ddof=0), "that is a standard deviation (ddof=0), not a standard error"),
        ]
        for value, hint in wrong:
            if math.isclose(got_se, value, rel_tol=1e-6):
                raise AssertionError(f"{message}: {hint}")
        raise AssertionError(message)
    print("Correct: the mean of the per-seed differences, and s_d / sqrt(k).")


def check_idx_header(idx_header: Callable[..., Any]) -> None:
    """Check ``idx_header(shape, type_code=0x08)``: the header of an IDX file, as ``bytes``.

    The header is the magic number (two zero bytes, the type code, the number of dimensions)
    followed by every size as a big-endian unsigned 32-bit integer. (Reading a file made from the
    checked header back with :func:`dropoutlib.course.data.read_idx` would hold by construction once
    the bytes match; the library's tests cover ``read_idx``.)

    Example:
        >>> def idx_header(shape, type_code=0x08):
        ...     sizes = b"".join(n.to_bytes(4, "big") for n in shape)
        ...     return bytes([0, 0, type_code, len(shape)]) + sizes
        >>> check_idx_header(idx_header)
        Correct: 00 00 <type> <ndim>, then each size as 4 big-endian bytes.
    """
    require_function(idx_header, "idx_header")
    cases = [((2, 3), 0x08), ((60000, 28, 28), 0x08), ((10,), 0x08), ((4, 5), 0x0D)]
    for shape, code in cases:
        call = f"idx_header({shape}, type_code=0x{code:02X})"
        result = call_answer(idx_header, shape, code)
        if isinstance(result, bytearray):
            result = bytes(result)
        if not isinstance(result, bytes):
            raise AssertionError(
                f"{call} should return bytes (e.g. bytes([...]) + ...), got {describe(result)}"
            )
        want = bytes([0, 0, code, len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape)
        if result == want:
            continue
        message = f"{call} returned {result.hex(' ')}, expected {want.hex(' ')}"
        little = bytes([0, 0, code, len(shape)]) + b"".join(n.to_bytes(4, "little") for n in shape)
        if result == little:
            raise AssertionError(f"{message}: the sizes must be big-endian (most significant byte first)")
        if len(result) == len(want) and result[4:] == want[4:]:
            raise AssertionError(
                f"{message}: the magic number is 0x00, 0x00, then the type code, then the number of "
                f"dimensions; got {result[:4].hex(' ')}"
            )
        if result[:4] == want[:4] and len(result) != len(want):
            raise AssertionError(
                f"{message}: each of the {len(shape)} sizes takes exactly 4 bytes, so the header has "
                f"{len(want)} bytes, got {len(result)}"
            )
        raise AssertionError(message)
    print("Correct: 00 00 <type> <ndim>, then each size as 4 big-endian bytes.")
