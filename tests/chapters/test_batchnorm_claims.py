"""Chapter 9's claims, re-checked for five seeds through the code the chapter calls.

Each seed fixes the digits' split, the initial weights, the minibatch order and the dropout masks
(``batchnorm_experiment(order, p, seed=seed, ...)``). Every claim the chapter checks for seed 0 is
checked here for each seed by the same ``*_claims`` functions of ``dropoutlib.experiments.batchnorm``,
so the thresholds are the chapter's. The chapter's five-seed comparison (``deep_comparison``: the
deep network where it learns, both fixes, Uout, no noise) is re-checked on its own seeds 0-4 and on
five fresh seeds, 5-9.
"""

from __future__ import annotations

import copy
import functools

import pytest
import torch

from dropoutlib.course.claims import check
from dropoutlib.course.data import load_digits
from dropoutlib.experiments.batchnorm import (
    GRID_SEEDS,
    HIDDEN,
    SHALLOW,
    STACK_004_HIDDEN,
    STACK_004_P,
    P,
    batchnorm_experiment,
    deep_comparison,
    deep_cost_claims,
    learning_shift_claims,
    measure_variance_shift,
    recalibration_claims,
    shallow_cost_claims,
    shallow_shift_claims,
    shift_cost_claims,
    stack_claims,
    uout_claims,
)

SEEDS = [0, 1, 2, 3, 4]
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@functools.cache
def data(seed):
    return load_digits(seed=seed)


@functools.cache
def run(kind, seed):
    if kind == "shallow":
        return batchnorm_experiment("dropout-bn", P, seed=seed, hidden=SHALLOW, data=data(seed))
    if kind == "004":
        return batchnorm_experiment(
            "bn-dropout", STACK_004_P, seed=seed, hidden=STACK_004_HIDDEN, data=data(seed)
        )
    return batchnorm_experiment(kind, P, seed=seed, hidden=HIDDEN, data=data(seed))


@pytest.mark.parametrize("seed", SEEDS)
def test_shallow_shift_follows_the_formula_and_costs_no_accuracy(seed):
    shallow = run("shallow", seed)
    check(shallow_shift_claims(shallow) + shallow_cost_claims(shallow))


@pytest.mark.parametrize("seed", SEEDS)
def test_deep_shift_compounds_costs_accuracy_and_both_fixes_work(seed):
    deep, last = run("dropout-bn", seed), run("last", seed)
    split = data(seed)
    before_test = measure_variance_shift(deep.model, split.x_test, seed=seed)
    fixed_test = measure_variance_shift(deep.recalibrated, split.x_test, seed=seed)
    updated = copy.deepcopy(deep.model)
    torch.manual_seed(seed)
    torch.optim.swa_utils.update_bn([split.x_train], updated)
    updated_shift = measure_variance_shift(updated, split.x_train, seed=seed)
    check(deep_cost_claims(deep, last) + recalibration_claims(before_test, fixed_test, updated_shift))


@pytest.mark.parametrize("seed", SEEDS)
def test_the_004_stack_shifts_little_and_the_mixing_formula_predicts_it(seed):
    check(stack_claims(run("004", seed), data(seed).x_train))


@pytest.mark.parametrize("seeds", [GRID_SEEDS, (5, 6, 7, 8, 9)], ids=["chapter-seeds", "fresh-seeds"])
def test_where_the_deep_network_learns_the_shift_costs_nothing_measurable_and_uout_regularizes_less(seeds):
    comparison = deep_comparison(seeds)
    check(learning_shift_claims(comparison) + shift_cost_claims(comparison) + uout_claims(comparison))
