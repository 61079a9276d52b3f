"""Chapter 9's claims, re-checked for five seeds through the code the chapter calls.

Each seed fixes the digits' split, the initial weights, the minibatch order and the dropout masks
(``batchnorm_experiment(order, p, seed=seed, ...)``). Every claim the chapter checks for seed 0 is
checked here for each seed by the same ``*_claims`` functions of ``dropoutlib.experiments.batchnorm``,
so the thresholds are the chapter's.
"""

from __future__ import annotations

import functools

import pytest

from dropoutlib.course.claims import check
from dropoutlib.course.data import load_digits
from dropoutlib.course.train import evaluate
from dropoutlib.experiments.batchnorm import (
    HIDDEN,
    SHALLOW,
    STACK_004_HIDDEN,
    STACK_004_P,
    P,
    batchnorm_experiment,
    deep_cost_claims,
    measure_variance_shift,
    recalibration_claims,
    shallow_cost_claims,
    shallow_shift_claims,
    stack_claims,
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
    fixed = measure_variance_shift(deep.recalibrated, split.x_train, seed=seed)
    fixed_acc = evaluate(deep.recalibrated, split.x_test, split.y_test)[1]
    check(deep_cost_claims(deep, last) + recalibration_claims(fixed, fixed_acc, deep))


@pytest.mark.parametrize("seed", SEEDS)
def test_the_004_stack_shifts_little_and_the_mixing_formula_predicts_it(seed):
    check(stack_claims(run("004", seed), data(seed).x_train))
