"""Chapter 6's statistical claims, re-checked for five seeds through the claims functions the chapter calls.

The thresholds live in :mod:`dropoutlib.experiments.weight_decay` only; each test builds the seed's
problem with the chapter's settings and checks the same claims. The digits comparison (validation
split, early stopping, tuned weight decay and dropout), which the chapter pairs over seeds 0-4, is
replicated on seeds 5-9.
"""

from __future__ import annotations

import pytest
import torch

from dropoutlib.course.claims import check
from dropoutlib.experiments.weight_decay import (
    controlled_claims,
    controlled_comparison,
    dropout_ridge_penalty,
    dropout_ridge_solution,
    enumeration_claims,
    exact_dropout_loss,
    expected_dropout_loss,
    glm_claims,
    glm_experiment,
    identity_claims,
    ridge_claims,
    sample_dropout_losses,
    small_problem,
    train_linear_unit,
    wide_unit_claims,
    wide_unit_experiment,
)

SEEDS = [0, 1, 2, 3, 4]
pytestmark = pytest.mark.slow


def _small(seed):
    data = small_problem(seed=seed)
    return data.x_train.double(), data.y_train[:, 0].double()


@pytest.mark.parametrize("seed", SEEDS)
def test_average_over_masks_and_enumeration_match_the_formula(seed):
    x, y = _small(seed)
    w_ls = dropout_ridge_solution(x, y, 0.0)
    losses = sample_dropout_losses(x, y, w_ls, 0.5, 40_000, generator=torch.Generator().manual_seed(seed))
    least_squares = float(((y - x @ w_ls) ** 2).sum())
    claims = identity_claims(
        losses, expected_dropout_loss(x, y, w_ls, 0.5), dropout_ridge_penalty(x, w_ls, 0.5), least_squares
    )
    tiny = (x[:4, :3], y[:4], w_ls[:3])
    pairs = [(exact_dropout_loss(*tiny, p), expected_dropout_loss(*tiny, p)) for p in (0.2, 0.5, 0.7)]
    check(claims + enumeration_claims(pairs))


@pytest.mark.parametrize("seed", SEEDS)
def test_sgd_with_dropout_lands_on_the_ridge_solution(seed):
    x, y = _small(seed)
    ps = [0.1, 0.2, 0.35, 0.5, 0.65, 0.8]
    run = train_linear_unit(x, y, ps, steps=3000, copies=8, decay_steps=300, seed=seed)
    check(ridge_claims(run.weight, torch.stack([dropout_ridge_solution(x, y, p) for p in ps])))


@pytest.mark.parametrize("seed", SEEDS)
def test_wide_unit_weight_norms(seed):
    check(wide_unit_claims(wide_unit_experiment(seed=seed, p=0.5, steps=200)))


def test_dropout_weight_decay_and_early_stopping_on_the_digits_replicate():
    check(controlled_claims(controlled_comparison(seeds=range(5, 10))))


@pytest.mark.parametrize("seed", SEEDS)
def test_logistic_quadratic_penalty_tracks_dropout(seed):
    check(glm_claims(glm_experiment(seed=seed)))
