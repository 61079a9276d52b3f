"""Chapter 8's claims, re-checked over seeds through the claims functions the chapter calls.

Each seed fixes the digits' split, the initial weights, the minibatch order and the dropout masks; the
chapter runs five seeds (0 to 4) and checks its claims, stated as paired means ± standard errors, on
them. Here the same ``*_claims`` functions of ``dropoutlib.experiments.when_it_helps`` check them on
seeds 0 to 4 again (the thresholds are written there, once), and the comparison with the
early-stopped baseline, the chapter's new and most marginal claim, on five fresh seeds (5 to 9) as
well. One ``Study`` serves all the tests, so a setting shared by two experiments is trained once.
"""

from __future__ import annotations

import dataclasses

import pytest

from dropoutlib.course.batched import DEFAULT_RECIPE, MINIBATCH_RECIPE
from dropoutlib.course.claims import check
from dropoutlib.experiments.when_it_helps import (
    BASELINE,
    INPUT_P,
    STOP_EVERY,
    WIDTH_EVERY,
    WIDTH_RECIPE,
    P,
    Study,
    compare,
    comparison_claims,
    depth_study,
    early_stopping,
    p_claims,
    p_sweep,
    placement_claims,
    placement_study,
    recipe_study,
    size_claims,
    size_stopping_claims,
    size_sweep,
    small_gain_claims,
    stopping_claims,
    width_claims,
    width_sweep,
)

SEEDS = (0, 1, 2, 3, 4)
FRESH = (5, 6, 7, 8, 9)
SIZES = (50, 100, 200, 400, 800, 1257)
PS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8)
WIDTHS = (4, 8, 16, 32, 64, 128)
N_TEST = 540
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def study():
    return Study()


def _main(study, seeds):
    settings = [
        BASELINE,
        dataclasses.replace(BASELINE, p=P),
        dataclasses.replace(BASELINE, p=P, input_p=INPUT_P),
    ]
    return compare(study, seeds, settings, eval_every=STOP_EVERY)


def test_dropout_beats_the_baseline_and_lowers_the_test_loss_for_every_seed(study):
    check(comparison_claims(_main(study, SEEDS), N_TEST))


@pytest.mark.parametrize("seeds", [SEEDS, FRESH], ids=["seeds 0-4", "seeds 5-9"])
def test_early_stopping_ties_dropout_by_loss_not_by_accuracy(study, seeds):
    check(stopping_claims(_main(study, seeds), early_stopping(study, [BASELINE], seeds)))


def test_the_gain_shrinks_with_more_data_but_not_as_a_share_of_the_errors(study):
    stopped = early_stopping(study, [dataclasses.replace(BASELINE, n_train=n) for n in SIZES], SEEDS)
    sizes = size_sweep(study, SIZES, SEEDS)
    check(size_claims(sizes))
    check(size_stopping_claims(sizes, stopped))


def test_drop_probabilities(study):
    check(p_claims(p_sweep(study, PS, SEEDS)))


def test_placement(study):
    check(placement_claims(placement_study(study, SEEDS, activations=("relu", "sigmoid"))))


def test_a_dropout_network_needs_more_units_given_the_steps(study):
    base = dataclasses.replace(BASELINE, recipe=WIDTH_RECIPE)
    check(width_claims(width_sweep(study, WIDTHS, SEEDS, base=base, eval_every=WIDTH_EVERY)))


def test_the_gain_is_small_when_the_baseline_does_not_overfit(study):
    depths = depth_study(study, (1, 2, 3), SEEDS)
    recipes = recipe_study(study, (DEFAULT_RECIPE, MINIBATCH_RECIPE), SEEDS)
    check(small_gain_claims(depths, recipes))
