"""Chapter 7's claims, re-checked for five seeds through the claims functions the chapter calls.

Each test calls one of the chapter's ``*_claims`` functions for a seed and asserts that every claim
holds; the thresholds are written once, in ``dropoutlib.experiments.activations``. All statistics are
in evaluation mode on the test set unless a claim says otherwise; "the second half" is from epoch
``MID = EPOCHS // 2`` to the end.
"""

from __future__ import annotations

import functools

import pytest

from dropoutlib.course.claims import check
from dropoutlib.experiments.activations import (
    ActivationRun,
    P,
    accuracy_claims,
    activation_experiment,
    active_unit_claims,
    dead_unit_claims,
    early_stopping_claims,
    early_stopping_comparison,
    growth_claims,
    histogram_claims,
    seed_claims,
    seed_differences,
    variance_claims,
)

SEEDS = [0, 1, 2, 3, 4]
CLAIMS = [
    accuracy_claims,
    active_unit_claims,
    growth_claims,
    histogram_claims,
    dead_unit_claims,
    variance_claims,
]
pytestmark = pytest.mark.slow


@functools.cache
def runs(seed: int) -> tuple[ActivationRun, ActivationRun]:
    return activation_experiment(0.0, seed=seed), activation_experiment(P, seed=seed)


@pytest.mark.parametrize("claims", CLAIMS, ids=[c.__name__ for c in CLAIMS])
@pytest.mark.parametrize("seed", SEEDS)
def test_the_chapters_claims_hold_for_every_seed(seed, claims):
    check(claims(*runs(seed)))


def test_the_differences_over_five_seeds():
    check(seed_claims(seed_differences({seed: runs(seed) for seed in SEEDS})))


def test_dropout_beats_an_early_stopped_baseline_over_five_seeds():
    check(early_stopping_claims(early_stopping_comparison(seeds=SEEDS)))
