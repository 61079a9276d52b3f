"""Unit tests of course.stats: the binomial standard error of a test-set rate, sample sizes for a margin of
z standard errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dropoutlib.course.stats import binomial_standard_error, samples_needed


@pytest.mark.parametrize(
    ("spread", "margin", "z", "expected"),
    [(0.05, 0.01, 2.0, 100), (1.0, 1.0, 2.0, 4), (0.3, 0.1, 1.0, 9), (0.1, 0.03, 2.0, 45),
     (0.0, 0.1, 2.0, 1)],
)
def test_samples_needed_is_the_smallest_n_that_fits(spread, margin, z, expected):
    n = samples_needed(spread, margin, z)
    assert n == expected
    assert z * spread / math.sqrt(n) <= margin * (1 + 1e-12)
    if n > 1:
        assert z * spread / math.sqrt(n - 1) > margin


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"spread": -1.0, "margin": 0.1}, "spread"), ({"spread": 1.0, "margin": 0.0}, "margin"),
     ({"spread": 1.0, "margin": 0.1, "z": 0.0}, "z"), ({"spread": float("nan"), "margin": 0.1}, "spread")],
)
def test_samples_needed_names_a_bad_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        samples_needed(**kwargs)


def test_binomial_standard_error_matches_the_spread_of_simulated_test_sets():
    rng = np.random.default_rng(0)
    rates = rng.binomial(540, 0.06, size=20000) / 540  # 20000 test sets of 540 images
    assert binomial_standard_error(0.06, 540) == pytest.approx(rates.std(), rel=0.03)
    assert binomial_standard_error(0.0, 540) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "name"), [({"error": 1.5, "n": 10}, "error"), ({"error": 0.1, "n": 0}, "n")]
)
def test_binomial_standard_error_names_a_bad_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        binomial_standard_error(**kwargs)
