"""Chapter 6 exercise checks: references pass, typical mistakes fail by name, stubs fail."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stubs import STUBS

from dropoutlib.exercises.weight_decay import (
    check_dropout_penalty,
    check_dropout_ridge_solution,
    check_equivalent_weight_decay,
    check_standard_dropout_loss,
)
from dropoutlib.experiments.weight_decay import (
    dropout_ridge_penalty,
    dropout_ridge_solution,
    equivalent_weight_decay,
)


def _columns(x):
    return (x**2).sum(dim=0)


# --- the penalty -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        lambda x, w, p: p / (1 - p) * (w**2 * _columns(x)).sum(),
        lambda x, w, p: dropout_ridge_penalty(x, w, p),
        lambda x, w, p: float(p / (1 - p) * (w**2 * _columns(x)).sum()),
        lambda x, w, p: np.float64(p / (1 - p) * (w**2 * _columns(x)).sum().item()),
    ],
)
def test_penalty_references_pass(answer, capsys):
    check_dropout_penalty(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda x, w, p: (1 - p) / p * (w**2 * _columns(x)).sum() if p else 0.0, "not q/p"),
        (lambda x, w, p: p * (w**2 * _columns(x)).sum(), "not p:"),
        (lambda x, w, p: p * (1 - p) * (w**2 * _columns(x)).sum(), "p\\*q"),
        (lambda x, w, p: p / (1 - p) * (w**2).sum(), "left out the inputs"),
        (lambda x, w, p: p / (1 - p) * (w**2).sum() * (x**2).sum(), "whole matrix"),
        (lambda x, w, p: p / (1 - p) * (w**2 * _columns(x).sqrt()).sum(), "SQUARED"),
        (lambda x, w, p: p / (1 - p) * (w**2 * _columns(x)).sum() / x.shape[0], "divided by n"),
        (lambda x, w, p: p / (1 - p) * (w.abs() * _columns(x)).sum(), "square the weights"),
        (lambda x, w, p: p / (1 - p) * w**2 * _columns(x), "add them up"),
        (lambda x, w, p: p / (1 - p) * (w**2 * _columns(x)).sum() + 1, "expected"),
        (lambda x, w, p: "1.0", "should return a number"),
    ],
)
def test_penalty_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_dropout_penalty(answer)


@pytest.mark.parametrize("stub", STUBS)
def test_penalty_stubs_fail(stub):
    with pytest.raises(AssertionError):
        check_dropout_penalty(stub)


@pytest.mark.parametrize("check", [check_dropout_penalty, check_dropout_ridge_solution,
                                   check_equivalent_weight_decay, check_standard_dropout_loss])
def test_checks_want_a_function(check):
    with pytest.raises(TypeError, match="a function"):
        check(0.5)


# --- the closed form ---------------------------------------------------------------------------------


def _solve(matrix_of):
    def answer(x, y, p):
        return torch.linalg.solve(matrix_of(x.T @ x, p), x.T @ y)

    return answer


def _diag(gram):
    return torch.diag(torch.diag(gram))


@pytest.mark.parametrize(
    "answer",
    [
        _solve(lambda g, p: g + p / (1 - p) * _diag(g)),
        lambda x, y, p: dropout_ridge_solution(x, y, p),
        lambda x, y, p: dropout_ridge_solution(x, y, p).numpy(),
        lambda x, y, p: dropout_ridge_solution(x, y, p).unsqueeze(1),
        lambda x, y, p: dropout_ridge_solution(x, y, p).tolist(),
    ],
)
def test_solution_references_pass(answer, capsys):
    check_dropout_ridge_solution(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (_solve(lambda g, p: g + (1 - p) / p * _diag(g)), "swapped"),
        (_solve(lambda g, p: g + p / (1 - p) * torch.eye(g.shape[0], dtype=g.dtype)), "plain ridge"),
        (_solve(lambda g, p: (1 + p / (1 - p)) * g), "only its diagonal"),
        (_solve(lambda g, p: g + p * _diag(g)), "not p"),
        (lambda x, y, p: torch.linalg.lstsq(x, y.unsqueeze(1)).solution[:, 0], "ignores p"),
        (_solve(lambda g, p: g + 2 * _diag(g)), "are not"),
        (lambda x, y, p: dropout_ridge_solution(x, y, p)[:-1], "one per input"),
        (lambda x, y, p: 3.0, "tensor of"),
    ],
)
def test_solution_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_dropout_ridge_solution(answer)


@pytest.mark.parametrize("stub", STUBS)
def test_solution_stubs_fail(stub):
    with pytest.raises(AssertionError):
        check_dropout_ridge_solution(stub)


# --- equivalent weight decay -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        lambda x, p: 2 * p / (1 - p) * (x**2).sum(dim=0) / x.shape[0],
        lambda x, p: equivalent_weight_decay(x, p),
        lambda x, p: (2 * p / (1 - p) * (x**2).mean(dim=0)).numpy(),
    ],
)
def test_weight_decay_references_pass(answer, capsys):
    check_equivalent_weight_decay(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda x, p: p / (1 - p) * (x**2).mean(dim=0), "factor 2 is missing"),
        (lambda x, p: 2 * p / (1 - p) * (x**2).sum(dim=0), "divide by n"),
        (lambda x, p: p / (1 - p) * (x**2).sum(dim=0), "factor 2 and the division"),
        (lambda x, p: 2 * (1 - p) / p * (x**2).mean(dim=0), "swapped"),
        (lambda x, p: 2 * p * (x**2).mean(dim=0), "not 2p"),
        (lambda x, p: 2 * p / (1 - p) * (x**2).mean(dim=0).sqrt(), "squared column norms"),
        (lambda x, p: (2 * p / (1 - p) * (x**2).mean(dim=0)).mean(), "own lambda_j"),
        (lambda x, p: 2 * p / (1 - p), "one coefficient per input"),
        (lambda x, p: 2 * p / (1 - p) * (x**2).mean(dim=0) + 0.1, "are not"),
    ],
)
def test_weight_decay_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_equivalent_weight_decay(answer)


@pytest.mark.parametrize("stub", STUBS)
def test_weight_decay_stubs_fail(stub):
    with pytest.raises(AssertionError):
        check_equivalent_weight_decay(stub)


# --- standard dropout ------------------------------------------------------------------------------


def _standard(mean_scale, variance):
    def answer(x, y, w, p):
        q = 1 - p
        return ((y - mean_scale(p, q) * x @ w) ** 2).sum() + variance(p, q) * (w**2 * _columns(x)).sum()

    return answer


def test_standard_reference_passes(capsys):
    check_standard_dropout_loss(_standard(lambda p, q: q, lambda p, q: p * q))
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (_standard(lambda p, q: 1.0, lambda p, q: p / q), "INVERTED"),
        (_standard(lambda p, q: 1.0, lambda p, q: p * q), "mean prediction is q X w, not X w"),
        (_standard(lambda p, q: q, lambda p, q: 0.0), "left out the variance"),
        (_standard(lambda p, q: p, lambda p, q: p * q), "paper's p is our q"),
        (_standard(lambda p, q: q, lambda p, q: p / q), "pq, not p/q"),
        (_standard(lambda p, q: q, lambda p, q: q * q), "not q\\^2"),
        (_standard(lambda p, q: q, lambda p, q: 2 * p * q), "expected"),
    ],
)
def test_standard_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_standard_dropout_loss(answer)


@pytest.mark.parametrize("stub", STUBS)
def test_standard_stubs_fail(stub):
    with pytest.raises(AssertionError):
        check_standard_dropout_loss(stub)
