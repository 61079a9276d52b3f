"""Chapter 4 exercise checks: references pass, typical mistakes fail by name, stubs fail."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from stubs import STUBS

from dropoutlib.exercises.ensemble import (
    check_exact_average,
    check_normalized_geometric_mean,
    check_renormalized_drop_rate,
)
from dropoutlib.experiments.ensemble import expected_over_masks

# --- normalized geometric mean ----------------------------------------------------------------------


def _geometric_mean(probs, weights):
    return torch.softmax((weights[:, None] * probs.log()).sum(dim=0), dim=0)


def test_geometric_mean_reference_passes(capsys):
    check_normalized_geometric_mean(_geometric_mean)
    assert "Correct" in capsys.readouterr().out


def test_geometric_mean_direct_product_and_numpy_answers_pass(capsys):
    def direct(probs, weights):
        g = (probs ** weights[:, None]).prod(dim=0)
        return g / g.sum()

    def in_numpy(probs, weights):
        g = np.exp(weights.numpy() @ np.log(probs.numpy()))
        return g / g.sum()

    check_normalized_geometric_mean(direct)
    check_normalized_geometric_mean(in_numpy)
    assert capsys.readouterr().out.count("Correct") == 2


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda probs, w: (w[:, None] * probs.log()).sum(0).exp(), "not 1"),
        (lambda probs, w: (w[:, None] * probs).sum(0), "ARITHMETIC"),
        (lambda probs, w: torch.softmax(probs.log().mean(0), 0), "ignores the weights"),
        (lambda probs, w: torch.softmax(probs.log().sum(0), 0), "exponents"),
        (lambda probs, w: (w[:, None] * probs).prod(0), "w_m \\* P_m"),
        (lambda probs, w: probs[0], "expected"),
        (lambda probs, w: probs, "shape"),
        (lambda probs, w: [0.5, 0.5], "tensor"),
        (lambda probs, w: probs[0] * float("nan"), "NaN"),
    ],
)
def test_geometric_mean_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_normalized_geometric_mean(answer)


@pytest.mark.parametrize("stub", STUBS)
def test_geometric_mean_stubs_fail(stub):
    with pytest.raises(AssertionError):
        check_normalized_geometric_mean(stub)


def test_geometric_mean_rejects_a_non_function():
    with pytest.raises(TypeError, match="a function"):
        check_normalized_geometric_mean(torch.ones(3))


# --- exact average ----------------------------------------------------------------------------------


def _masks(n, dtype):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=dtype)


def _average(h, layer, p, weights_of, scale_of=lambda q: 1 / q):
    q = 1 - p
    masks = _masks(h.shape[1], h.dtype)
    kept = masks.sum(dim=1)
    weights = weights_of(kept, h.shape[1], p, q)
    with torch.no_grad():
        probs = torch.softmax(layer(masks[:, None, :] * h[None] * scale_of(q)), dim=-1)
    return (weights[:, None, None] * probs).sum(dim=0)


def _right(kept, n, p, q):
    return q**kept * p ** (n - kept)


def test_exact_average_reference_passes(capsys):
    check_exact_average(lambda h, layer, p: _average(h, layer, p, _right))
    check_exact_average(lambda h, layer, p: expected_over_masks(lambda a: layer(a).softmax(-1), h, p))
    assert capsys.readouterr().out.count("Correct") == 2


def _geometric(h, layer, p):
    q = 1 - p
    masks = _masks(h.shape[1], h.dtype)
    weights = _right(masks.sum(dim=1), h.shape[1], p, q)
    with torch.no_grad():
        log_probs = torch.log_softmax(layer(masks[:, None, :] * h[None] / q), dim=-1)
    return torch.softmax((weights[:, None, None] * log_probs).sum(dim=0), dim=-1)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda h, layer, p: _average(h, layer, p, lambda k, n, p, q: torch.full_like(k, 2.0**-n)),
         "same weight"),
        (lambda h, layer, p: _average(h, layer, p, lambda k, n, p, q: q**k), "leave out the factor"),
        (lambda h, layer, p: _average(h, layer, p, lambda k, n, p, q: q**k / (1 + q) ** n),
         "another rate"),
        (lambda h, layer, p: _average(h, layer, p, _right, lambda q: 1.0), "not scaled by 1/q"),
        (lambda h, layer, p: _average(h, layer, p, _right, lambda q: q), "multiplied by q"),
        (lambda h, layer, p: torch.softmax(layer(h), dim=-1).detach(), "weight-scaling"),
        (_geometric, "GEOMETRIC"),
        (lambda h, layer, p: _average(h, layer, p, lambda k, n, p, q: p**k * q ** (n - k)), "swap"),
        (lambda h, layer, p: _average(h, layer, p, lambda k, n, p, q: 0.5 * _right(k, n, p, q)),
         "add up"),
        (lambda h, layer, p: 0.99 * _average(h, layer, p, _right) + 0.01 / layer.out_features,
         "differs from the exact average"),
        (lambda h, layer, p: _average(h, layer, p, _right)[0], "shape"),
    ],
)
def test_exact_average_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_exact_average(answer)


@pytest.mark.parametrize("stub", STUBS)
def test_exact_average_stubs_fail(stub):
    with pytest.raises(AssertionError):
        check_exact_average(stub)


def test_exact_average_rejects_a_non_function():
    with pytest.raises(TypeError, match="a function"):
        check_exact_average("exact_average")


def test_exact_average_reports_a_crash():
    def crashes(h, layer, p):
        return h @ torch.ones(2)

    with pytest.raises(AssertionError, match="raised RuntimeError"):
        check_exact_average(crashes)


# --- renormalized drop rate -----------------------------------------------------------------------------


def test_renormalized_drop_rate_reference_passes(capsys):
    check_renormalized_drop_rate(lambda p: 1 / (2 - p))
    check_renormalized_drop_rate(lambda p: torch.tensor(1 / (2 - p)))  # one-element tensors are fine
    assert capsys.readouterr().out.count("Correct") == 2


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda p: (1 - p) / (2 - p), "KEEP probability"),
        (lambda p: p, "unchanged"),
        (lambda p: 2 - p, "not a probability"),
        (lambda p: p / 2, "expected"),
        (lambda p: "2/3", "should return a number"),
    ],
)
def test_renormalized_drop_rate_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_renormalized_drop_rate(answer)


@pytest.mark.parametrize("stub", STUBS)
def test_renormalized_drop_rate_stubs_fail(stub):
    with pytest.raises(AssertionError):
        check_renormalized_drop_rate(stub)


def test_renormalized_drop_rate_rejects_a_non_function():
    with pytest.raises(TypeError, match="a function"):
        check_renormalized_drop_rate(2 / 3)
