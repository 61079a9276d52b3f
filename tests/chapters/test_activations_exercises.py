"""Chapter 7's exercise checks: reference solutions pass, typical mistakes fail by name, stubs fail."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dropoutlib.exercises.activations import (
    check_active_units,
    check_dead_unit_fraction,
    check_dropout_noise_variance,
)


@pytest.mark.parametrize("check", [check_dead_unit_fraction, check_dropout_noise_variance])
def test_a_non_number_is_named(check):
    with pytest.raises(AssertionError, match="should return a number"):
        check(lambda *args: "0.5")


def test_a_crash_is_reported_with_its_call():
    with pytest.raises(AssertionError, match="raised ZeroDivisionError"):
        check_active_units(lambda A: 1 / 0)


# --- active units ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        lambda A: (A > 0).sum(dim=1),
        lambda A: (A > 0).sum(1).tolist(),
        lambda A: (A.numpy() > 0).sum(axis=1),
        lambda A: (A > 0).float().sum(dim=1),
        lambda A: [int((row > 0).sum()) for row in A],
    ],
)
def test_active_units_references_pass(answer, capsys):
    check_active_units(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda A: (A > 0).sum(dim=0), "counted per unit"),
        (lambda A: (A > 0).float().mean(dim=1), "fraction of active units"),
        (lambda A: (A >= 0).sum(dim=1), "counted zeros as active"),
        (lambda A: (A != 0).sum(dim=1), "non-zero activations"),
        (lambda A: A.sum(dim=1), "summed the activation values"),
        (lambda A: (A > 0).sum(dim=1).float().mean(), "average count"),
        (lambda A: 3, "not a single number"),
        (lambda A: (A > 0).sum(dim=1)[:-1], "shape"),
        (lambda A: (A > 0).sum(dim=1) + 1, "wrong counts"),
    ],
)
def test_active_units_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_active_units(answer)


# --- dead units -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        lambda A: (A <= 0).all(dim=0).float().mean(),
        lambda A: float(np.mean(~(A.numpy() > 0).any(axis=0))),
        lambda A: (~(A > 0).any(dim=0)).sum().item() / A.shape[1],
    ],
)
def test_dead_fraction_references_pass(answer, capsys):
    check_dead_unit_fraction(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda A: (A <= 0).all(dim=0).sum().item(), "number of dead units"),
        (lambda A: (A > 0).any(dim=0).float().mean(), "active at least once"),
        (lambda A: (A <= 0).float().mean(), "share of zero entries"),
        (lambda A: (A <= 0).any(dim=0).float().mean(), "inactive on SOME example"),
        (lambda A: (A <= 0).all(dim=1).float().mean(), "looked at the rows"),
        (lambda A: (A == 0).all(dim=0).float().mean(), "exactly 0 everywhere"),
        (lambda A: 0.123, "wrong fraction"),
    ],
)
def test_dead_fraction_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_dead_unit_fraction(answer)


# --- the variance dropout adds --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        lambda a, p: a**2 * p / (1 - p),
        lambda a, p: a * a / (1 - p) - a * a,
        lambda a, p: np.float64(a) ** 2 * p / (1 - p),
    ],
)
def test_noise_variance_references_pass(answer, capsys):
    check_dropout_noise_variance(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda a, p: a**2 * p * (1 - p), "without the 1/q scaling"),
        (lambda a, p: a**2 * p, "divide by q"),
        (lambda a, p: a**2 * (1 - p) / p, "swapped p and q"),
        (lambda a, p: a**2 / (1 - p), "second moment"),
        (lambda a, p: abs(a) * math.sqrt(p / (1 - p)), "standard deviation"),
        (lambda a, p: a * p / (1 - p), "grows with a\\^2"),
        (lambda a, p: a**2 * p / (1 - p) + 1, "expected a\\^2 p / q"),
    ],
)
def test_noise_variance_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_dropout_noise_variance(answer)
