"""Unit tests of dropoutlib.experiments.activations: statistics, hooks, the recorder and the experiment."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

import dropoutlib
from dropoutlib import course
from dropoutlib.course.claims import Claim
from dropoutlib.course.data import load_digits
from dropoutlib.experiments.activations import (
    STATISTICS,
    ActivationRecorder,
    ActivationTrace,
    accuracy_claims,
    activation_experiment,
    active_unit_claims,
    active_units,
    dead_counts,
    dead_unit_claims,
    dead_units,
    growth,
    growth_claims,
    hidden_modules,
    histogram_claims,
    layer_activations,
    layer_statistics,
    plot_histograms,
    plot_trace,
    positive_means,
    predicted_train_variance,
    variance_claims,
    variances,
)

A = torch.tensor([[0.0, 1.5, 2.0, -1.0], [0.0, 0.0, 0.3, -2.0], [0.0, 4.0, 0.0, -0.5]])


@pytest.fixture(scope="module")
def tiny_run():
    return activation_experiment(0.5, hidden=(12, 6), epochs=4, eval_every=2, seed=3)


# --- statistics of one layer --------------------------------------------------------------------------


def test_active_units_counts_positive_entries_per_row():
    assert active_units(A).tolist() == [2, 1, 1]
    assert active_units(A).dtype == torch.int64


def test_dead_units_are_columns_without_a_positive_entry():
    assert dead_units(A).tolist() == [True, False, False, True]


def test_layer_statistics_match_numpy():
    stats = layer_statistics(A)
    values = A.double().numpy()
    assert set(stats) == set(STATISTICS)
    assert stats["active"] == pytest.approx(4 / 3)
    assert stats["active_fraction"] == pytest.approx(1 / 3)
    assert stats["mean"] == pytest.approx(values.mean())
    assert stats["std"] == pytest.approx(values.std())
    assert stats["variance"] == pytest.approx(values.var())
    assert stats["dead"] == 2.0
    assert all(isinstance(value, float) for value in stats.values())


@pytest.mark.parametrize("function", [active_units, dead_units, layer_statistics])
def test_statistics_reject_bad_input(function):
    with pytest.raises(TypeError, match="torch.Tensor"):
        function([[1.0, 0.0]])
    with pytest.raises(TypeError, match="floating-point"):
        function(torch.ones(2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="shape \\(n_examples, width\\)"):
        function(torch.ones(3))
    with pytest.raises(ValueError, match="n_examples >= 1"):
        function(torch.ones(0, 3))


# --- hooks --------------------------------------------------------------------------------------------


def test_hidden_modules_of_mlps():
    plain = course.mlp(5, [4, 3], 2)
    assert hidden_modules(plain) == [plain[1], plain[3]]
    assert hidden_modules(plain, after_dropout=True) == [plain[1], plain[3]]
    dropped = course.mlp(5, [4, 3], 2, p=0.5, input_p=0.2, dropout_layer=dropoutlib.Dropout)
    assert [type(m).__name__ for m in hidden_modules(dropped)] == ["ReLU", "ReLU"]
    assert hidden_modules(dropped, after_dropout=True) == [dropped[3], dropped[6]]
    assert hidden_modules(course.mlp(5, [], 2)) == []


def test_hidden_modules_rejects_what_is_not_an_mlp():
    with pytest.raises(TypeError, match="nn.Sequential"):
        hidden_modules(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="no nn.Linear"):
        hidden_modules(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="not followed by an activation"):
        hidden_modules(nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1)))


def test_layer_activations_in_evaluation_mode_match_a_manual_forward():
    torch.manual_seed(0)
    model = course.mlp(4, [6, 5], 3, p=0.5).train()
    x = torch.randn(7, 4)
    first, second = layer_activations(model, x)
    with torch.no_grad():
        h1 = torch.relu(model[0](x))
        h2 = torch.relu(model[3](h1))
    assert torch.equal(first, h1) and torch.equal(second, h2)
    assert model.training and all(m.training for m in model.modules()), "mode must be restored"
    assert not first.requires_grad


def test_layer_activations_in_training_mode_drop_and_scale():
    torch.manual_seed(0)
    model = course.mlp(4, [200], 3, p=0.5).eval()
    x = torch.randn(50, 4)
    (evaluation,) = layer_activations(model, x, after_dropout=True)
    torch.manual_seed(1)
    (training,) = layer_activations(model, x, training=True, after_dropout=True)
    kept = training != 0
    assert torch.allclose(training[kept], 2 * evaluation[kept])
    assert 0.3 < kept.sum().item() / (evaluation != 0).sum().item() < 0.7
    assert not model.training
    torch.manual_seed(1)
    (again,) = layer_activations(model, x, training=True, after_dropout=True)
    assert torch.equal(training, again)


def test_layer_activations_rejects_integer_input():
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        layer_activations(course.mlp(2, [3], 1), torch.ones(2, 2, dtype=torch.int64))


# --- the recorder -------------------------------------------------------------------------------------


def test_recorder_keeps_only_evaluation_passes_on_the_probe():
    torch.manual_seed(0)
    model = course.mlp(4, [8, 6], 2, p=0.5)
    probe, other = torch.randn(10, 4), torch.randn(10, 4)
    with ActivationRecorder(model, probe) as recorder:
        model.train()(probe)
        model.eval()(other)
        model.eval()(probe[:2])  # a view of the probe, but not the probe
        model.eval()(probe)
        recorder.snapshot()
    model(probe)  # after the context: hooks are gone
    assert len(recorder.records) == 2
    assert all(len(record) == 2 for record in recorder.records)
    expected = [layer_statistics(a) for a in layer_activations(model, probe)]
    assert recorder.records[0] == expected


def test_recorder_follows_fit_without_changing_it():
    data = load_digits()
    results = []
    for record in (False, True):
        torch.manual_seed(0)
        model = course.mlp(64, [16], 10, p=0.5)
        if record:
            with ActivationRecorder(model, data.x_test) as recorder:
                history = course.fit(model, data, epochs=5, eval_every=2, progress=False)
        else:
            history = course.fit(model, data, epochs=5, eval_every=2, progress=False)
        results.append((history.test_loss, model[0].weight.detach().clone()))
    assert results[0][0] == results[1][0] and torch.equal(results[0][1], results[1][1])
    trace = recorder.trace(history.epoch)
    assert trace.epoch.tolist() == [2, 4, 5]
    assert trace.widths == (16,)
    assert trace["active"].shape == (3, 1)


def test_recorder_misuse_is_reported():
    model = course.mlp(2, [3], 1)
    recorder = ActivationRecorder(model, torch.zeros(4, 2))
    with pytest.raises(RuntimeError, match="context manager"):
        recorder.snapshot()
    with pytest.raises(ValueError, match="got 2 epochs for 0 records"):
        recorder.trace([0, 1])
    with pytest.raises(TypeError, match="probe must be a torch.Tensor"):
        ActivationRecorder(model, [[0.0, 0.0]])


def test_trace_lookup():
    trace = ActivationTrace(np.array([0, 3, 6]), (2,), {"mean": np.array([[1.0], [2.0], [3.0]])})
    assert trace.at(4, "mean").tolist() == [2.0]
    with pytest.raises(KeyError, match="no statistic 'std'"):
        trace["std"]


# --- the experiment -----------------------------------------------------------------------------------


def test_experiment_records_from_epoch_zero(tiny_run):
    assert tiny_run.trace.epoch.tolist() == [0, 2, 4]
    assert tiny_run.trace.widths == (12, 6)
    for name in STATISTICS:
        assert tiny_run.trace[name].shape == (3, 2)
    assert [tuple(a.shape) for a in tiny_run.activations] == [(540, 12), (540, 6)]
    assert [tuple(a.shape) for a in tiny_run.train_mode_activations] == [(540, 12), (540, 6)]
    assert tiny_run.label == "p = 0.5" and not tiny_run.model.training
    final = [layer_statistics(a)["mean"] for a in tiny_run.activations]
    assert np.allclose(final, tiny_run.trace["mean"][-1])


def test_experiment_is_deterministic_and_shares_the_initialization(tiny_run):
    again = activation_experiment(0.5, hidden=(12, 6), epochs=4, eval_every=2, seed=3)
    for name in STATISTICS:
        assert np.array_equal(again.trace[name], tiny_run.trace[name])
    assert torch.equal(again.train_mode_activations[0], tiny_run.train_mode_activations[0])
    plain = activation_experiment(0.0, hidden=(12, 6), epochs=1, seed=3)
    assert plain.label == "no dropout"
    assert np.array_equal(plain.trace["mean"][0], tiny_run.trace["mean"][0])
    assert all(
        torch.equal(a, b) for a, b in zip(plain.activations, plain.train_mode_activations, strict=True)
    )


def test_experiment_rejects_bad_arguments():
    with pytest.raises(ValueError, match="p must be a probability"):
        activation_experiment(1.5)
    with pytest.raises(TypeError, match="data must be a dropoutlib.course.data.Split"):
        activation_experiment(0.5, data=(1, 2))
    with pytest.raises(ValueError, match="eval_every must be a positive integer"):
        activation_experiment(0.5, eval_every=0)


# --- what the chapter measures, and its claims ------------------------------------------------------


def test_the_measurements_of_two_runs(tiny_run):
    assert np.allclose(variances(tiny_run.activations), tiny_run.trace["variance"][-1])
    assert np.array_equal(dead_counts(tiny_run), tiny_run.trace["dead"][-1])
    mean = tiny_run.trace["mean"]
    assert np.allclose(growth(tiny_run, "mean", mid=2), mean[2] / mean[1] - 1)
    means = positive_means(tiny_run)
    assert means.shape == (2,) and (means > 0).all()
    plain = activation_experiment(0.0, hidden=(12, 6), epochs=1, seed=3)
    assert predicted_train_variance(plain) == pytest.approx(variances(plain.activations)[0])
    assert predicted_train_variance(tiny_run) > variances(tiny_run.activations)[0]


@pytest.mark.parametrize(
    "claims",
    [accuracy_claims, active_unit_claims, growth_claims, histogram_claims, dead_unit_claims, variance_claims],
)
def test_claims_functions_return_claims(tiny_run, claims):
    plain = activation_experiment(0.0, hidden=(12, 6), epochs=4, eval_every=2, seed=3)
    result = claims(plain, tiny_run)
    assert result and all(isinstance(claim, Claim) for claim in result)
    assert all(claim.evidence for claim in result)


def test_claims_see_a_swap_of_the_two_runs(tiny_run):
    plain = activation_experiment(0.0, hidden=(12, 6), epochs=4, eval_every=2, seed=3)
    assert accuracy_claims(plain, tiny_run)[0].holds  # same seed: same initial weights
    fewer = active_unit_claims(plain, tiny_run)[0].holds
    assert active_unit_claims(tiny_run, plain)[0].holds != fewer


def test_plots_draw_one_panel_per_layer(tiny_run):
    fig, axes = plt.subplots(1, 2)
    plot_trace(axes, [tiny_run], "std", colors=["red"])
    assert [ax.get_title() for ax in axes] == ["layer 1 (12 units)", "layer 2 (6 units)"]
    assert axes[0].get_lines()[0].get_label() == "p = 0.5"
    plt.close(fig)
    fig, axes = plt.subplots(1, 2)
    plot_histograms(axes, [tiny_run])
    assert "zeros" in axes[1].get_legend().get_texts()[0].get_text()
    with pytest.raises(ValueError, match="one axes per hidden layer"):
        plot_trace(axes[:1], [tiny_run], "std")
    with pytest.raises(ValueError, match="statistic must be one of"):
        plot_trace(axes, [tiny_run], "median")
    with pytest.raises(ValueError, match="one axes per hidden layer"):
        plot_histograms(axes[:1], [tiny_run])
    plt.close(fig)


def test_early_stopping_comparison_tunes_weight_decay_on_validation_and_rejects_bad_decays():
    from dropoutlib.experiments.activations import early_stopping_claims, early_stopping_comparison

    plain = early_stopping_comparison(seeds=[0], epochs=2, weight_decays=())
    assert "wd tuned" not in plain
    assert len(early_stopping_claims(plain)) == 2
    tuned = early_stopping_comparison(seeds=[0, 1], epochs=2, weight_decays=(1e-3, 1e2))
    assert tuned["wd choice"].tolist() == [1e-3, 1e-3]  # a decay of 100 crushes the validation loss
    assert np.array_equal(tuned["none last"], early_stopping_comparison(seeds=[0, 1], epochs=2)["none last"])
    assert len(early_stopping_claims(tuned)) == 4
    for bad in (0.0, -1e-3, float("nan")):
        with pytest.raises(ValueError, match="weight_decays"):
            early_stopping_comparison(seeds=[0], epochs=1, weight_decays=(bad,))
