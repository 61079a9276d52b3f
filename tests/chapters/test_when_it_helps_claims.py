"""Chapter 8's claims, re-checked for five seeds through the claims functions the chapter calls.

Each seed fixes the digits' split, the initial weights, the minibatch order and the dropout masks; the
chapter prints three seeds (0, 1, 2) and checks its claims on their means. Here the same ``*_claims``
functions of ``dropoutlib.experiments.when_it_helps`` check them on the means over seeds 0 to 4 (and
the per-seed claims for each of the five seeds); the thresholds are written there, once. One
``Study`` serves all the tests, so a setting shared by two experiments is trained once.
"""

from __future__ import annotations

import dataclasses

import pytest

from dropoutlib.course.batched import DEFAULT_RECIPE, MINIBATCH_RECIPE
from dropoutlib.course.claims import check
from dropoutlib.experiments.when_it_helps import (
    BASELINE,
    INPUT_P,
    P,
    Study,
    compare,
    comparison_claims,
    depth_study,
    p_claims,
    p_sweep,
    placement_claims,
    placement_study,
    recipe_study,
    size_claims,
    size_sweep,
    small_gain_claims,
    width_claims,
    width_sweep,
)

SEEDS = (0, 1, 2, 3, 4)
SIZES = (50, 100, 200, 400, 800, 1257)
PS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8)
WIDTHS = (4, 8, 16, 32, 64, 128)
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def study():
    return Study()


def test_dropout_beats_the_baseline_and_lowers_the_test_loss_for_every_seed(study):
    settings = [
        BASELINE,
        dataclasses.replace(BASELINE, p=P),
        dataclasses.replace(BASELINE, p=P, input_p=INPUT_P),
    ]
    check(comparison_claims(compare(study, SEEDS, settings, eval_every=2)))


def test_the_gain_shrinks_with_more_data_but_not_as_a_share_of_the_errors(study):
    check(size_claims(size_sweep(study, SIZES, SEEDS)))


def test_drop_probabilities(study):
    check(p_claims(p_sweep(study, PS, SEEDS)))


def test_placement(study):
    check(placement_claims(placement_study(study, SEEDS, activations=("relu", "sigmoid"))))


def test_a_dropout_network_needs_more_units(study):
    check(width_claims(width_sweep(study, WIDTHS, SEEDS)))


def test_the_gain_is_small_when_the_baseline_does_not_overfit(study):
    depths = depth_study(study, (1, 2, 3), SEEDS)
    recipes = recipe_study(study, (DEFAULT_RECIPE, MINIBATCH_RECIPE), SEEDS)
    check(small_gain_claims(depths, recipes))
