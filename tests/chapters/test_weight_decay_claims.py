"""Chapter 6's statistical claims, re-checked for five seeds through the code the chapter calls.

Each test states a claim as the chapter does and uses the chapter's settings and tolerances. The
digits comparison, which the chapter already averages over seeds 0-4, is replicated on seeds 5-9.
"""

from __future__ import annotations

import pytest
import torch

from dropoutlib.experiments.weight_decay import (
    compare_regularizers,
    dropout_ridge_penalty,
    dropout_ridge_solution,
    expected_dropout_loss,
    sample_dropout_losses,
    small_problem,
    train_linear_unit,
    wide_unit_experiment,
)

SEEDS = [0, 1, 2, 3, 4]
pytestmark = pytest.mark.slow


def _small(seed):
    data = small_problem(seed=seed)
    return data.x_train.double(), data.y_train[:, 0].double()


@pytest.mark.parametrize("seed", SEEDS)
def test_average_over_masks_matches_the_formula(seed):
    """The squared error averaged over 40,000 masks is within 4 standard errors of LS + penalty."""
    x, y = _small(seed)
    w_ls = dropout_ridge_solution(x, y, 0.0)
    losses = sample_dropout_losses(x, y, w_ls, 0.5, 40_000, generator=torch.Generator().manual_seed(seed))
    formula = expected_dropout_loss(x, y, w_ls, 0.5)
    standard_error = losses.std().item() / len(losses) ** 0.5
    assert abs(losses.mean().item() - formula) < 4 * standard_error
    least_squares = float(((y - x @ w_ls) ** 2).sum())
    assert dropout_ridge_penalty(x, w_ls, 0.5) > 0.5 * least_squares


@pytest.mark.parametrize("seed", SEEDS)
def test_sgd_with_dropout_lands_on_the_ridge_solution(seed):
    """Within 3% of w* for every p, and |w*| falls as p grows."""
    x, y = _small(seed)
    ps = [0.1, 0.2, 0.35, 0.5, 0.65, 0.8]
    run = train_linear_unit(x, y, ps, steps=3000, copies=8, decay_steps=300, seed=seed)
    closed = torch.stack([dropout_ridge_solution(x, y, p) for p in ps])
    errors = (run.weight - closed).norm(dim=1) / closed.norm(dim=1)
    assert errors.max() < 0.03, errors
    norms = closed.norm(dim=1)
    assert bool((norms[1:] < norms[:-1]).all())


@pytest.mark.parametrize("seed", SEEDS)
def test_wide_unit_weight_norms(seed):
    wide = wide_unit_experiment(seed=seed, p=0.5, steps=200)
    final = {name: run.norms[-1].item() for name, run in wide.runs.items()}
    limit = wide.limit_without_dropout.norm().item()
    ridge = wide.ridge.norm().item()
    assert abs(final["no dropout"] / limit - 1) < 1e-3
    assert final["dropout"] < 0.7 * final["no dropout"]
    assert final["adaptive weight decay"] < final["dropout"]
    assert ridge < 0.3 * limit
    # from zero: the ridge solution and the minimum-norm solution have almost the same norm
    x, y = wide.data.x_train, wide.data.y_train[:, 0]
    w_min = dropout_ridge_solution(x, y, 0.0)
    assert abs(ridge / w_min.norm().item() - 1) < 0.01
    variance = float((x.double() ** 2 @ wide.ridge**2).mean())
    assert variance < 0.05 * y.var().item()


def test_dropout_and_weight_decay_on_the_digits_replicate():
    comparison = compare_regularizers(seeds=range(5, 10))
    acc, loss = comparison.summary("test_acc"), comparison.summary("test_loss")
    norm = comparison.summary("weight_norm")
    for name in ("dropout", "weight decay", "both"):
        assert acc[name][0] > acc["none"][0], name
        assert loss[name][0] < loss["none"][0], name
    assert norm["weight decay"][0] < 0.5 * norm["none"][0]
    assert norm["dropout"][0] > 2 * norm["weight decay"][0]
    assert all((v == 1.0).all() for v in comparison.train_acc.values())  # every model fits its 200 images
    best_single = max(acc["dropout"][0], acc["weight decay"][0])
    spread = max(acc["dropout"][1], acc["weight decay"][1], acc["both"][1])
    assert abs(acc["both"][0] - best_single) < spread
    for seed in range(5):  # per seed too: each regularizer lowers the test loss
        for name in ("dropout", "weight decay", "both"):
            assert comparison.test_loss[name][seed] < comparison.test_loss["none"][seed]
