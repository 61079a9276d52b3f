"""Unit tests of course.stats: sample sizes for a margin of z standard errors."""

from __future__ import annotations

import math

import pytest

from dropoutlib.course.stats import samples_needed


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
