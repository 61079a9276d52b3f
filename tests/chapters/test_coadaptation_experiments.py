"""Unit tests of experiments.coadaptation: gradients, the handicap, the measures, the experiment."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from dropoutlib.course.data import load_digits
from dropoutlib.course.models import mlp
from dropoutlib.experiments.coadaptation import (
    HANDICAPS,
    ablation_importance,
    effective_units,
    gini,
    handicap_units,
    handicapped_mlp,
    hidden_activations,
    linear_unit_gradients,
    mean_abs_correlation,
    top_k_share,
    train_copies,
    train_handicapped,
    unit_gradient_norms,
    unit_strength,
)

# --- gradients -----------------------------------------------------------------------------------


def test_linear_unit_gradient_is_error_times_input_whatever_the_weight():
    auto, formula = linear_unit_gradients([1e-4, 3.0, -2.0], [0.5, 0.5, -1.0], target=0.3)
    assert torch.allclose(auto, formula, rtol=0, atol=1e-12)
    assert auto[0] == auto[1]  # equal inputs, weights 30,000 times apart


@pytest.mark.parametrize(
    ("w", "x", "error"),
    [([1.0, 2.0], [1.0], ValueError), ("ab", [1.0, 2.0], TypeError), ([], [], ValueError),
     ([1.0, math.nan], [1.0, 2.0], ValueError)],
)
def test_linear_unit_gradients_rejects_bad_input(w, x, error):
    with pytest.raises(error):
        linear_unit_gradients(w, x, target=0.0)


@pytest.mark.parametrize("s", [0.5, 0.1, 1e-3])
def test_gradient_into_a_unit_scales_with_its_outgoing_weights(s):
    into, out_of = unit_gradient_norms(seed=3)
    into_out, out_out = unit_gradient_norms(scale_out=s, seed=3)
    into_in, out_in = unit_gradient_norms(scale_in=s, seed=3)
    assert math.isclose(into_out / into, s, rel_tol=1e-9) and math.isclose(out_out, out_of)
    assert math.isclose(into_in, into, rel_tol=1e-9) and math.isclose(out_in / out_of, s, rel_tol=1e-9)


def test_tanh_keeps_only_the_outgoing_proportionality_exact():
    into, out_of = unit_gradient_norms(activation="tanh")
    assert math.isclose(unit_gradient_norms(scale_out=0.1, activation="tanh")[0] / into, 0.1)
    into_in, out_in = unit_gradient_norms(scale_in=0.1, activation="tanh")
    assert into_in > into  # tanh' is largest at 0
    assert not math.isclose(out_in / out_of, 0.1, rel_tol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"scale_in": 0.0}, ValueError), ({"scale_out": -1.0}, ValueError),
     ({"scale_in": "1"}, TypeError), ({"unit": 8}, ValueError), ({"unit": True}, ValueError),
     ({"activation": "sigmoid"}, ValueError)],
)
def test_unit_gradient_norms_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        unit_gradient_norms(**kwargs)


def test_copies_without_dropout_keep_their_differences():
    path = train_copies(0.0, steps=300, seed=1)
    assert path.shape == (301, 4) and path.dtype == torch.float64
    differences = path - path[:, :1]
    assert (differences - differences[0]).abs().max() < 1e-12


def test_copies_with_dropout_meet_at_the_equilibrium():
    path = train_copies(0.5, init=(0.0, 1.0, 2.0), target_slope=1.5, steps=3000, seed=2)
    assert (path[-1000:].mean(dim=0) - 1.5 / (3 + 1)).abs().max() < 0.04


def test_copies_are_deterministic_and_reject_bad_arguments():
    assert torch.equal(train_copies(0.3, steps=20, seed=4), train_copies(0.3, steps=20, seed=4))
    with pytest.raises(ValueError):
        train_copies(1.0)
    with pytest.raises(ValueError):
        train_copies(0.5, steps=0)
    with pytest.raises(ValueError):
        train_copies(0.5, lr=0.0)


# --- the handicap --------------------------------------------------------------------------------


@pytest.mark.parametrize("where", HANDICAPS)
def test_handicap_units_scales_exactly_the_chosen_weights(where):
    torch.manual_seed(0)
    model = mlp(5, [4], 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    handicap_units(model, 2, 0.1, where)
    w1, b1, w2 = model[0].weight, model[0].bias, model[-1].weight
    factor_in = 0.1 if where in ("in", "both") else 1.0
    factor_out = 0.1 if where in ("out", "both") else 1.0
    assert torch.allclose(w1[:2], factor_in * before["0.weight"][:2])
    assert torch.allclose(b1[:2], factor_in * before["0.bias"][:2])
    assert torch.allclose(w2[:, :2], factor_out * before["2.weight"][:, :2])
    assert torch.equal(w1[2:], before["0.weight"][2:]) and torch.equal(w2[:, 2:], before["2.weight"][:, 2:])


def test_handicap_units_rejects_bad_arguments():
    with pytest.raises(TypeError):
        handicap_units(nn.Linear(2, 2), 1, 0.1, "in")
    with pytest.raises(ValueError, match="one hidden layer"):
        handicap_units(mlp(2, [3, 3], 2), 1, 0.1, "in")
    with pytest.raises(ValueError, match="where"):
        handicap_units(mlp(2, [3], 2), 1, 0.1, "sideways")
    with pytest.raises(ValueError, match="n_handicapped"):
        handicap_units(mlp(2, [3], 2), 4, 0.1, "in")
    with pytest.raises(ValueError, match="scale"):
        handicap_units(mlp(2, [3], 2), 1, 0.0, "in")


def test_handicapped_networks_of_one_seed_share_their_other_weights():
    a, b = handicapped_mlp(0.0, "none", seed=3), handicapped_mlp(0.5, "both", seed=3)
    assert torch.equal(a[0].weight[8:], b[0].weight[8:])
    assert torch.equal(a[-1].weight[:, 8:], b[-1].weight[:, 8:])
    assert torch.allclose(b[0].weight[:8], 0.01 * a[0].weight[:8])
    assert isinstance(b[2], nn.Dropout) and b[2].p == 0.5


# --- measurements --------------------------------------------------------------------------------


def test_hidden_activations_are_relu_outputs_in_eval_mode_and_restore_the_mode():
    torch.manual_seed(0)
    model = mlp(4, [5], 2, p=0.9)
    model.train()
    x = torch.randn(7, 4)
    h = hidden_activations(model, x)
    assert torch.equal(h, torch.relu(model[0](x)).detach())
    assert model.training and model[2].training


def test_ablation_importance_matches_a_direct_computation():
    torch.manual_seed(1)
    model = mlp(6, [5], 3, p=0.5)
    x, y = torch.randn(30, 6), torch.randint(3, (30,))
    importance = ablation_importance(model, x, y)
    model.eval()
    base = F.cross_entropy(model(x), y)
    for j in range(5):
        ablated = copy.deepcopy(model)
        with torch.no_grad():
            ablated[-1].weight[:, j] = 0  # zeroing the outgoing weights = zeroing the activation
        increase = F.cross_entropy(ablated(x), y) - base
        assert math.isclose(importance[j].item(), increase.item(), rel_tol=1e-4, abs_tol=1e-6)


def test_ablation_importance_rejects_float_labels():
    with pytest.raises(TypeError, match="int64"):
        ablation_importance(mlp(2, [3], 2), torch.zeros(4, 2), torch.zeros(4))


def test_gini_extremes_and_a_known_value():
    assert gini([2, 2, 2]) == 0.0
    assert math.isclose(gini([0, 0, 0, 0, 3]), 0.8)
    assert math.isclose(gini([4, 1, 3, 2]), 0.25)
    assert math.isclose(gini([-1, 0, 0, 1]), 0.75)  # negatives count as 0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 100), min_size=2, max_size=20).filter(lambda v: sum(v) > 1e-3),
       st.floats(0.01, 100))
def test_gini_is_the_mean_absolute_difference_and_scale_free(values, factor):
    v = np.asarray(values)
    pairwise = np.abs(v[:, None] - v[None, :]).sum() / (2 * len(v) * v.sum())
    assert math.isclose(gini(values), pairwise, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(gini(v * factor), gini(v), rel_tol=1e-9, abs_tol=1e-12)
    assert 0 <= gini(values) <= 1 - 1 / len(values) + 1e-12


def test_top_k_share_and_effective_units():
    assert math.isclose(top_k_share([1, 1, 1, 1], 1), 0.25)
    assert math.isclose(top_k_share(torch.tensor([0.0, 5.0, 1.0]), 1), 5 / 6)
    assert math.isclose(top_k_share([1, 2], 5), 1.0)
    assert math.isclose(effective_units([3, 3, 3]), 3.0)
    assert math.isclose(effective_units([0, 0, 7]), 1.0)
    assert 1.0 < effective_units([1, 2, 3]) < 3.0


@pytest.mark.parametrize("bad", [[0, 0], [-1, -2], [[1, 2]], [1, math.inf]])
def test_concentration_measures_reject_bad_values(bad):
    for measure in (gini, effective_units, lambda v: top_k_share(v, 1)):
        with pytest.raises(ValueError):
            measure(bad)


def test_concentration_measures_reject_non_sequences():
    with pytest.raises(TypeError):
        gini("1 2 3")
    with pytest.raises(ValueError):
        top_k_share([1, 2], 0)


def test_mean_abs_correlation_ignores_constant_units():
    a = torch.tensor([[1.0, -1.0, 3.0], [2.0, -2.0, 3.0], [4.0, -4.0, 3.0]])
    assert math.isclose(mean_abs_correlation(a), 1.0)
    with pytest.raises(ValueError):
        mean_abs_correlation(torch.ones(5, 3))
    with pytest.raises(TypeError):
        mean_abs_correlation(torch.ones(5))


def test_unit_strength_scales_with_the_handicap():
    torch.manual_seed(2)
    model = mlp(3, [4], 2)
    before = unit_strength(model)
    after = unit_strength(handicap_units(model, 1, 0.1, "both"))
    assert torch.allclose(after[0], 0.01 * before[0]) and torch.equal(after[1:], before[1:])


# --- the experiment ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


def test_train_handicapped_records_what_it_measured(digits):
    run = train_handicapped(0.5, "both", epochs=2, data=digits)
    assert run.epochs == [0, 1, 2] and len(run.share_path) == len(run.strength_path) == 3
    assert run.handicapped.tolist() == [True] * 8 + [False] * 8
    assert run.importance.shape == (16,) and run.strength.shape == (16,)
    assert 0 <= run.share <= 1 and 0 <= run.gini < 1 and 1 <= run.effective <= 16
    assert run.history.epoch == [1, 2] and len(run.history.test_acc) == 2
    assert run.share_path[0] < 0.01  # at initialization the handicapped units hardly matter
    assert not run.model.training


def test_train_handicapped_is_deterministic(digits):
    a = train_handicapped(0.5, "out", epochs=1, data=digits, seed=7)
    b = train_handicapped(0.5, "out", epochs=1, data=digits, seed=7)
    assert torch.equal(a.importance, b.importance) and a.share_path == b.share_path


def test_train_handicapped_with_adam_records_no_paths(digits):
    run = train_handicapped(0.0, "both", epochs=1, data=digits, optimizer="adam", lr=3e-3)
    assert run.epochs == [] and run.share_path == [] and run.optimizer == "adam"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"p": 1.0}, ValueError), ({"handicap": "up"}, ValueError), ({"optimizer": "rmsprop"}, ValueError),
     ({"data": "digits"}, TypeError), ({"epochs": 0}, ValueError), ({"seed": -1}, ValueError)],
)
def test_train_handicapped_rejects_bad_arguments(kwargs, error):
    arguments = {"p": 0.5, "handicap": "both"} | kwargs
    with pytest.raises(error):
        train_handicapped(arguments.pop("p"), arguments.pop("handicap"), **arguments)
