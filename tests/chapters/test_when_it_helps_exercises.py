"""Chapter 8's exercise checks: reference solutions pass, typical mistakes fail by name.

Stubs and non-functions are covered for every check by tests/test_exercise_checks.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dropoutlib.course.stats import paired_gain
from dropoutlib.exercises.when_it_helps import check_idx_header, check_paired_gain, check_units_for_dropout

# --- units for dropout -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        lambda n, p: math.ceil(n / (1 - p)),
        lambda n, p: int(np.ceil(n / (1 - p))),
        lambda n, p: float(math.ceil(n / (1 - p))),
        lambda n, p: -(-n // (1 - p)),
    ],
)
def test_units_references_pass(answer, capsys):
    check_units_for_dropout(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda n, p: math.ceil(n / p) if p else n, "probability of KEEPING"),
        (lambda n, p: math.ceil(n * (1 - p)), "survive"),
        (lambda n, p: n / (1 - p), "round n/q up"),
        (lambda n, p: round(n / (1 - p)), "round UP"),
        (lambda n, p: math.floor(n / (1 - p)), "round UP"),
        (lambda n, p: math.ceil(n * (1 + p)), "too few"),
        (lambda n, p: 2 * n, "expected"),
        (lambda n, p: "200", "should return a number"),
    ],
)
def test_units_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_units_for_dropout(answer)


# --- paired gain ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        lambda b, d: ((d - b).mean(), (d - b).std(ddof=1) / len(b) ** 0.5),
        lambda b, d: paired_gain(b, d)[::2],
        lambda b, d: np.array([(d - b).mean(), (d - b).std(ddof=1) / math.sqrt(len(b))]),
        lambda b, d: [float(np.mean(d - b)), float(np.std(d - b, ddof=1) / np.sqrt(len(b)))],
    ],
)
def test_paired_gain_references_pass(answer, capsys):
    check_paired_gain(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda b, d: ((b - d).mean(), (d - b).std(ddof=1) / len(b) ** 0.5), "sign is flipped"),
        (lambda b, d: (d.mean() - b.mean(), math.sqrt((b.var(ddof=1) + d.var(ddof=1)) / len(b))), "UNPAIRED"),
        (lambda b, d: ((d - b).mean(), (d - b).std() / len(b) ** 0.5), "ddof=1"),
        (lambda b, d: ((d - b).mean(), (d - b).std(ddof=1)), "divide by sqrt\\(k\\)"),
        (lambda b, d: ((d - b).mean(), (d - b).std(ddof=1) / len(b)), "not by k"),
        (lambda b, d: ((d - b).mean(), (d - b).std()), "not a standard error"),
        (lambda b, d: ((d - b).mean() + 1, 0.0), "mean gain should be"),
        (lambda b, d: ((d - b).mean(), 0.1), "standard error should be"),
        (lambda b, d: (d - b).mean(), "two numbers"),
        (lambda b, d: ("a", 0.1), "should return a number"),
    ],
)
def test_paired_gain_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_paired_gain(answer)


# --- IDX header ----------------------------------------------------------------------------------------


def _header(shape, type_code=0x08, order="big", width=4, magic=None):
    start = bytes([0, 0, type_code, len(shape)]) if magic is None else magic(type_code, len(shape))
    return start + b"".join(n.to_bytes(width, order) for n in shape)


@pytest.mark.parametrize(
    "answer",
    [
        lambda shape, type_code=0x08: _header(shape, type_code),
        lambda shape, type_code=0x08: bytearray(_header(shape, type_code)),
        lambda shape, type_code=8: (
            bytes([0, 0, type_code, len(shape)])
            + b"".join(np.array(shape, dtype=">u4").tobytes() for _ in [0])
        ),
    ],
)
def test_idx_header_references_pass(answer, capsys):
    check_idx_header(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda shape, type_code=8: _header(shape, type_code, order="little"), "big-endian"),
        (
            lambda shape, type_code=8: _header(shape, type_code, magic=lambda c, d: bytes([c, d, 0, 0])),
            "magic number",
        ),
        (
            lambda shape, type_code=8: _header(shape, type_code, magic=lambda c, d: bytes([0, 0, d, c])),
            "magic number",
        ),
        (lambda shape, type_code=8: _header(shape, type_code, width=8), "exactly 4 bytes"),
        (lambda shape, type_code=8: _header(shape, type_code).hex(), "should return bytes"),
        (lambda shape, type_code=8: list(_header(shape, type_code)), "should return bytes"),
        (lambda shape, type_code=8: _header(shape, 0x08), "expected"),
    ],
)
def test_idx_header_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_idx_header(answer)
