"""Chapter 1's exercise checks: reference solutions pass, typical mistakes fail by name, stubs fail."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from stubs import STUBS

from dropoutlib.exercises.overfitting import (
    check_expected_kept_units,
    check_mask_probability,
    check_subnetwork_count,
    check_total_variation,
)

CHECKS = [check_subnetwork_count, check_mask_probability, check_expected_kept_units,
          check_total_variation]


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("stub", STUBS)
def test_stubs_never_pass(check, stub):
    with pytest.raises(AssertionError, match="NotImplementedError|forget the `return`"):
        check(stub)


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("not_a_function", [3, "2 ** n", None, int])
def test_checks_reject_what_is_not_a_function(check, not_a_function):
    with pytest.raises(TypeError, match="a function"):
        check(not_a_function)


@pytest.mark.parametrize("check", CHECKS)
def test_a_non_number_is_named(check):
    with pytest.raises(AssertionError, match="should return a number"):
        check(lambda *args: "42")


# --- counting sub-networks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [lambda hidden: 2 ** sum(hidden), lambda hidden: math.prod(2**h for h in hidden),
     lambda hidden: 2.0 ** sum(hidden)],
)
def test_subnetwork_count_references_pass(answer, capsys):
    check_subnetwork_count(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda hidden: 2 ** len(hidden), "you counted layers"),
        (lambda hidden: 2 * sum(hidden), "multiply"),
        (lambda hidden: 2 ** (sum(hidden) + 2), "input or output unit"),
        (lambda hidden: sum(hidden), "number of droppable units"),
        (lambda hidden: math.comb(sum(hidden), sum(hidden) // 2), "exactly half"),
        (lambda hidden: sum(hidden) ** 2, "expected 2\\*\\*"),
        (lambda hidden: torch.tensor(2.0) ** sum(hidden), "overflowed"),
    ],
)
def test_subnetwork_count_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_subnetwork_count(answer)


# --- probability of one mask -------------------------------------------------------------------------


def _reference_mask_probability(mask, p):
    kept = int(mask.sum())
    return (1 - p) ** kept * p ** (len(mask) - kept)


def _vectorized_mask_probability(mask, p):
    return torch.where(mask.bool(), 1 - p, p).prod()


@pytest.mark.parametrize("answer", [_reference_mask_probability, _vectorized_mask_probability])
def test_mask_probability_references_pass(answer, capsys):
    check_mask_probability(answer)
    assert "q**k * p**(n - k)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda m, p: (1 - p) ** int(m.sum()), "the .* dropped units must also be dropped"),
        (lambda m, p: p ** int(m.sum()) * (1 - p) ** (len(m) - int(m.sum())), "swapped"),
        (lambda m, p: math.comb(len(m), int(m.sum())) * _reference_mask_probability(m, p),
         "ANY arrangement"),
        (lambda m, p: 0.5 ** len(m), "only at p = 0.5"),
        (lambda m, p: 2.0 * _reference_mask_probability(m, p) + 1.0, "not a probability"),
        (lambda m, p: _reference_mask_probability(m, p) / 2, "expected q\\*\\*k"),
    ],
)
def test_mask_probability_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_mask_probability(answer)


def test_the_published_mistake_is_called_out():
    with pytest.raises(AssertionError, match="published mistake"):
        check_mask_probability(lambda m, p: (1 - p) ** int(m.sum()))


# --- expected number of kept units -------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [lambda hidden, p: sum(hidden) * (1 - p), lambda hidden, p: np.sum(hidden) * (1 - p),
     lambda hidden, p: sum(h * (1 - p) for h in hidden)],
)
def test_expected_kept_references_pass(answer, capsys):
    check_expected_kept_units(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda hidden, p: sum(hidden) * p, "DROPPED"),
        (lambda hidden, p: len(hidden) * (1 - p), "number of layers"),
        (lambda hidden, p: sum(hidden) / (1 - p), "inverted"),
        (lambda hidden, p: (1 - p) ** sum(hidden), "ALL units are kept"),
        (lambda hidden, p: sum(hidden) * (1 - p) + 1, "expected n \\* \\(1 - p\\)"),
    ],
)
def test_expected_kept_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_expected_kept_units(answer)


# --- total variation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        lambda v: (v[1:] - v[:-1]).abs().sum(),
        lambda v: v.diff().abs().sum().item(),
        lambda v: float(np.abs(np.diff(np.asarray(v))).sum()),
        lambda v: sum(abs(float(b) - float(a)) for a, b in zip(v[:-1], v[1:], strict=True)),
    ],
)
def test_total_variation_references_pass(answer, capsys):
    check_total_variation(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda v: v.diff().sum(), "SIGNED differences"),
        (lambda v: v.diff().pow(2).sum(), "SQUARED"),
        (lambda v: v.diff().abs().mean(), "MEAN absolute difference"),
        (lambda v: v.abs().sum(), "size of the curve"),
        (lambda v: v.max() - v.min(), "range"),
        (lambda v: 2 * v.diff().abs().sum(), "expected"),
    ],
)
def test_total_variation_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_total_variation(answer)


def test_total_variation_check_does_not_let_the_answer_change_its_curves():
    def destructive(values):
        result = values.diff().abs().sum()
        values.zero_()
        return result

    check_total_variation(destructive)  # each call gets its own copy: still correct
