"""Chapter 11's claims, re-checked for five seeds through the code the chapter calls.

Each seed fixes the digits' training/test split, the initial weights, the minibatch order and every
dropout mask of the experiments in ``dropoutlib.experiments.bugs``. Every claim the chapter checks for
seed 0 about what a bug costs is checked here for each seed by the same ``*_claims`` functions, so the
thresholds are the chapter's.
"""

from __future__ import annotations

import functools

import pytest

from dropoutlib.course.claims import check
from dropoutlib.experiments.bugs import (
    functional_claims,
    keep_prob_claims,
    keep_prob_effect,
    layers_claims,
    mc_batchnorm_claims,
    mc_batchnorm_effect,
    mode_bug_effect,
    mode_claims,
    output_dropout_claims,
    output_dropout_effect,
    reused_mask_effect,
    steps_claims,
    transformer_claims,
    transformer_diagnosis,
)

SEEDS = [0, 1, 2, 3, 4]
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@functools.cache
def reused(seed):
    return reused_mask_effect(seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_dropout_left_on_costs_accuracy_and_makes_predictions_random(seed):
    r = mode_bug_effect(seed)
    check(mode_claims(r) + functional_claims(r))


@pytest.mark.parametrize("seed", SEEDS)
def test_masks_reused_across_steps_are_memorized_and_cost_test_accuracy(seed):
    check(steps_claims(reused(seed)))


@pytest.mark.parametrize("seed", SEEDS)
def test_a_key_shared_by_layers_costs_little_accuracy_but_robustness(seed):
    check(layers_claims(reused(seed)))


@pytest.mark.parametrize("seed", SEEDS)
def test_keep_probability_passed_as_p_costs_more_than_a_point(seed):
    check(keep_prob_claims(keep_prob_effect(seed)))


@pytest.mark.parametrize("seed", SEEDS)
def test_output_dropout_shrinks_regression_predictions_by_q(seed):
    check(output_dropout_claims(output_dropout_effect(seed)))


@pytest.mark.parametrize("seed", SEEDS)
def test_naive_mc_dropout_depends_on_the_batch_and_corrupts_batchnorm(seed):
    check(mc_batchnorm_claims(mc_batchnorm_effect(seed)))


@pytest.mark.parametrize("seed", SEEDS)
def test_diagnose_on_transformers_names_attention_dropout_and_catches_the_bug(seed):
    pytest.importorskip("transformers")
    check(transformer_claims(transformer_diagnosis(seed)))
