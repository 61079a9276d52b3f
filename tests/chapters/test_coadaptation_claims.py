"""Chapter 5's claims, re-checked for five seeds through the claims functions the chapter calls.

Each seed fixes the digits' training/test split, the initial weights, the minibatch order and the
dropout masks (``train_handicapped(p, handicap, seed=seed)``), and, for the four copies and the
gradient sweep, the data, the masks and the random network. The thresholds live in
:mod:`dropoutlib.experiments.coadaptation` only. The one claim about several seeds at once (the
change in correlation has no consistent sign) and the paired differences with their standard errors
are checked over all of them.
"""

from __future__ import annotations

import functools

import pytest

from dropoutlib.course.claims import check
from dropoutlib.course.data import load_digits
from dropoutlib.experiments.coadaptation import (
    ADAM_LR,
    LR_CONTROL,
    adam_claims,
    copies_claims,
    correlation_claims,
    correlation_sign_claims_over_seeds,
    dynamics_claims,
    gradient_norm_claims,
    handicap_claims,
    handicap_runs,
    lr_control_claims,
    seed_claims,
    seed_differences,
    spread_claims,
    synergy_claims,
    train_copies,
    train_handicapped,
    unit_gradient_norms,
)

SEEDS = [0, 1, 2, 3, 4]
SCALES = [1.0, 0.3, 0.1, 0.03, 0.01, 0.001]  # as in the chapter
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@functools.cache
def runs(seed):
    """The chapter's eight runs (four handicaps, with and without dropout) for one seed."""
    return handicap_runs(seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_copies_without_dropout_keep_their_gap_and_with_dropout_meet(seed):
    check(copies_claims(train_copies(0.0, seed=seed), train_copies(0.5, seed=seed), 0.5))


@pytest.mark.parametrize("seed", SEEDS)
def test_gradients_into_and_out_of_a_unit_scale_with_the_other_side(seed):
    base_into, base_out = unit_gradient_norms(seed=seed)
    ratios = {}
    for where in ("in", "out", "both"):
        for s in SCALES:
            into, out_of = unit_gradient_norms(
                scale_in=s if where in ("in", "both") else 1.0,
                scale_out=s if where in ("out", "both") else 1.0,
                seed=seed,
            )
            ratios[where, s] = (into / base_into, out_of / base_out)
    check(gradient_norm_claims(ratios))


@pytest.mark.parametrize("seed", SEEDS)
def test_handicapped_units_with_and_without_dropout(seed):
    check(handicap_claims(runs(seed)))


@pytest.mark.parametrize("seed", SEEDS)
def test_dropout_makes_doubly_handicapped_units_stronger_and_earlier(seed):
    check(dynamics_claims(runs(seed)))


@pytest.mark.parametrize("seed", SEEDS)
def test_dropout_spreads_importance_in_every_condition(seed):
    check(spread_claims(runs(seed)))


@pytest.mark.parametrize("seed", SEEDS)
def test_dropout_changes_correlation_only_a_little(seed):
    check(correlation_claims(runs(seed)))


def test_the_change_in_correlation_has_no_consistent_sign():
    check(correlation_sign_claims_over_seeds([runs(seed) for seed in SEEDS]))


@pytest.mark.parametrize("seed", SEEDS)
def test_adam_erases_the_handicap_without_dropout(seed):
    check(adam_claims(train_handicapped(0.0, "both", seed=seed, optimizer="adam", lr=ADAM_LR)))


@pytest.mark.parametrize("seed", SEEDS)
def test_a_larger_sgd_learning_rate_does_not_erase_the_handicap(seed):
    check(lr_control_claims(train_handicapped(0.0, "both", seed=seed, lr=LR_CONTROL)))


@pytest.mark.parametrize("seed", SEEDS)
def test_dropout_lowers_the_share_of_subadditive_pairs(seed):
    check(synergy_claims(runs(seed), load_digits(seed=seed)))


def test_the_effects_over_five_seeds_are_beyond_two_standard_errors():
    check(seed_claims(seed_differences({seed: runs(seed) for seed in SEEDS})))
