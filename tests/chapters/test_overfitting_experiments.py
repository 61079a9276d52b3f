"""Unit tests of experiments.overfitting (the experiments of chapter 1): measures, counts, validation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dropoutlib
from dropoutlib import course
from dropoutlib.experiments.overfitting import (
    bagged_ensemble,
    count_droppable_units,
    fit_toy_regression,
    total_variation,
    tuned_weight_decay_fits,
)


@pytest.mark.parametrize(
    ("values", "expected"),
    [([0.0, 1.0, 0.0], 2.0), ([3.0, 1.0, -2.0], 5.0), ([1.0], 0.0), ([2.0, 2.0, 2.0], 0.0)],
)
def test_total_variation_values(values, expected):
    assert total_variation(values) == pytest.approx(expected)


def test_total_variation_accepts_a_column_and_ignores_the_grid_spacing():
    coarse = torch.linspace(-1, 1, 11).unsqueeze(1) * 1.5
    fine = torch.linspace(-1, 1, 1001) * 1.5
    assert total_variation(coarse) == pytest.approx(3.0, rel=1e-6)
    assert total_variation(fine) == pytest.approx(3.0, rel=1e-6)


def test_total_variation_rejects_a_matrix():
    with pytest.raises(ValueError, match="shape"):
        total_variation(torch.zeros(3, 2))


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (course.mlp(1, [200, 200, 200], 1, p=0.5), 600),
        (course.mlp(1, [200, 200, 200], 1), 0),
        (course.mlp(64, [32, 16], 10, p=0.2, input_p=0.1), 64 + 32 + 16),
        (course.mlp(8, [4], 2, input_p=0.5), 8),
        (course.mlp(8, [4], 2, p=0.5, dropout_layer=dropoutlib.Dropout), 4),
        (nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Dropout(0.0), nn.Linear(5, 1)), 0),
    ],
)
def test_count_droppable_units(model, expected):
    assert count_droppable_units(model) == expected


def test_count_droppable_units_rejects_a_non_module():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        count_droppable_units([nn.Linear(1, 1)])


def test_fit_is_deterministic_and_the_same_start_for_every_p():
    first = fit_toy_regression(0.5, hidden=(16,), epochs=30)
    again = fit_toy_regression(0.5, hidden=(16,), epochs=30)
    assert torch.equal(first.prediction, again.prediction)
    assert first.label == "p = 0.5" and first.n_networks == 1
    none = fit_toy_regression(0.0, hidden=(16,), epochs=1, eval_every=1)
    also_none = fit_toy_regression(0.0, hidden=(16,), epochs=1, eval_every=1)
    assert none.history.train_loss == also_none.history.train_loss
    assert none.label == "no dropout"


def test_fit_summary_matches_its_prediction():
    data = course.toy_regression(seed=3)
    result = fit_toy_regression(0.2, seed=3, data=data, hidden=(16,), epochs=20)
    assert result.prediction.shape == (data.n_test,)
    mse = (result.prediction - data.y_test[:, 0]).pow(2).mean().item()
    assert result.test_loss == pytest.approx(mse, rel=1e-5)
    assert result.roughness == pytest.approx(total_variation(result.prediction))
    assert result.history.test_loss[-1] == pytest.approx(result.test_loss, rel=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"p": 1.0}, ValueError, "p=1"),
        ({"p": 1.5}, ValueError, "p"),
        ({"p": 0.5, "seed": -1}, ValueError, "seed"),
        ({"p": 0.5, "data": "ten points"}, TypeError, "Split"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        fit_toy_regression(**kwargs)


def test_bagged_ensemble_averages_its_members():
    ensemble = bagged_ensemble(3, hidden=(8,), epochs=20)
    assert ensemble.n_networks == 3 and ensemble.history is None
    assert ensemble.n_parameters == 3 * (8 + 8 + 8 + 1)
    assert ensemble.label == "bagging, k = 3"
    same = bagged_ensemble(3, hidden=(8,), epochs=20)
    assert torch.equal(ensemble.prediction, same.prediction)
    without_bootstrap = bagged_ensemble(3, hidden=(8,), epochs=20, bootstrap=False)
    assert not torch.equal(ensemble.prediction, without_bootstrap.prediction)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"k": 0}, ValueError), ({"k": 2, "bootstrap": 1}, TypeError), ({"k": 1.5}, TypeError)],
)
def test_bagged_ensemble_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        bagged_ensemble(**kwargs)


def test_tuned_weight_decay_member_is_the_run_adam_weight_decay_trains():
    """Each batched member follows the run that ``course.fit`` with ``weight_decay`` gives on its own,
    from the same start as ``fit_toy_regression(0.0, seed=seed)``."""
    (fit,) = tuned_weight_decay_fits([2], weight_decays=[0.05], hidden=(16, 16), epochs=60)
    data = course.toy_regression(seed=2)
    torch.manual_seed(2)
    model = course.mlp(1, [16, 16], 1)
    course.fit(model, data, epochs=60, lr=2e-3, weight_decay=0.05, task="regression", progress=False,
               eval_every=60)
    with torch.no_grad():
        alone = model.eval()(data.x_test)[:, 0]
    assert fit.weight_decay == 0.05 and fit.label == "weight decay, tuned"
    torch.testing.assert_close(fit.prediction, alone, atol=1e-5, rtol=1e-4)
    start = fit_toy_regression(0.0, seed=2, hidden=(16, 16), epochs=60)
    assert not torch.allclose(fit.prediction, start.prediction, atol=1e-3)  # the penalty did something


def test_tuned_weight_decay_is_chosen_on_validation_per_seed():
    """A penalty that flattens the fit is never chosen; each seed is tuned on its own."""
    fits = tuned_weight_decay_fits([0, 1, 2], weight_decays=[1e3, 1e-2, 1e4], hidden=(16,), epochs=40)
    assert [fit.weight_decay for fit in fits] == [1e-2] * 3
    assert [fit.seed for fit in fits] == [0, 1, 2]
    (alone,) = tuned_weight_decay_fits([1], weight_decays=[1e-2], hidden=(16,), epochs=40)
    torch.testing.assert_close(fits[1].prediction, alone.prediction)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"seeds": 3}, TypeError, "seeds"),
        ({"seeds": []}, TypeError, "seeds"),
        ({"seeds": [-1]}, ValueError, "seed"),
        ({"seeds": [0], "weight_decays": []}, TypeError, "weight_decays"),
        ({"seeds": [0], "weight_decays": [0.0]}, ValueError, "weight_decays"),
        ({"seeds": [0], "weight_decays": [float("nan")]}, ValueError, "weight_decays"),
        ({"seeds": [0], "epochs": 0}, ValueError, "epochs"),
    ],
)
def test_tuned_weight_decay_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        tuned_weight_decay_fits(**kwargs)
