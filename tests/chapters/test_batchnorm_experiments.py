"""experiments.batchnorm: the variance-shift formula, the networks, the measurement and the recalibration."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from dropoutlib.experiments.batchnorm import (
    ORDERS,
    VarianceShift,
    batchnorm_experiment,
    batchnorm_layers,
    batchnorm_mlp,
    measure_variance_shift,
    mixed_train_variance,
    recalibrate_batchnorm,
    shift_versus_p,
    train_mode_variance,
    variance_shift_ratio,
)

# --- the formula --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mean", "var", "p"), [(0.0, 1.0, 0.5), (1.5, 0.3, 0.2), (-2.0, 4.0, 0.7), (3.0, 1.0, 0.0)]
)
def test_train_mode_variance_matches_simulation(mean, var, p):
    generator = torch.Generator().manual_seed(0)
    x = mean + var**0.5 * torch.randn(400_000, generator=generator, dtype=torch.float64)
    dropout = nn.Dropout(p).train()
    torch.manual_seed(1)
    y = dropout(x)
    assert y.mean().item() == pytest.approx(mean, abs=0.02)
    assert y.var().item() == pytest.approx(train_mode_variance(mean, var, p), rel=0.02)
    assert dropout.eval()(x).var().item() == pytest.approx(var, rel=0.01)


def test_ratio_is_one_over_q_for_a_zero_mean_and_grows_with_the_mean():
    assert variance_shift_ratio(0.0, 2.0, 0.25) == pytest.approx(1 / 0.75)
    ratios = [variance_shift_ratio(mean, 1.0, 0.4) for mean in (0.0, 0.5, 1.0, 2.0)]
    assert ratios == sorted(ratios) and ratios[0] == pytest.approx(1 / 0.6)


def test_formula_works_elementwise_on_tensors_and_arrays():
    mean, var = torch.tensor([0.0, 1.0]), torch.tensor([1.0, 1.0])
    assert torch.allclose(train_mode_variance(mean, var, 0.5), torch.tensor([2.0, 3.0]))
    assert np.allclose(variance_shift_ratio(np.array([0.0, 1.0]), np.array([1.0, 1.0]), 0.5), [2.0, 3.0])


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((0.0, 1.0, 1.0), ValueError, "p must be below 1"),
        ((0.0, 1.0, 1.5), ValueError, "p=1.5"),
        ((0.0, -1.0, 0.5), ValueError, "var must be non-negative"),
        (("0", 1.0, 0.5), TypeError, "mean must be a number"),
        ((0.0, None, 0.5), TypeError, "var must be a number"),
        ((0.0, 1.0, True), TypeError, "p must be a real number"),
    ],
)
def test_formula_rejects_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        train_mode_variance(*args)


def test_ratio_rejects_a_constant_feature():
    with pytest.raises(ValueError, match="var must be positive"):
        variance_shift_ratio(1.0, 0.0, 0.5)


# --- the networks --------------------------------------------------------------------------------------


def _names(model):
    return [type(m).__name__ for m in model]


def test_the_three_orders():
    block = ["Linear", "Dropout", "BatchNorm1d", "ReLU"]
    assert _names(batchnorm_mlp(4, [8, 8], 3, 0.5, "dropout-bn")) == block * 2 + ["Linear"]
    block = ["Linear", "BatchNorm1d", "ReLU", "Dropout"]
    assert _names(batchnorm_mlp(4, [8, 8], 3, 0.5, "bn-dropout")) == block * 2 + ["Linear"]
    block = ["Linear", "BatchNorm1d", "ReLU"]
    assert _names(batchnorm_mlp(4, [8, 8], 3, 0.5, "last")) == block * 2 + ["Dropout", "Linear"]


def test_without_dropout_the_orders_are_one_network_with_the_same_weights():
    models = []
    for order in ORDERS:
        torch.manual_seed(0)
        models.append(batchnorm_mlp(4, [8, 8], 3, 0.0, order))
    assert len({tuple(_names(m)) for m in models}) == 1
    for other in models[1:]:
        assert all(torch.equal(a, b) for a, b in zip(models[0].parameters(), other.parameters(), strict=True))


def test_probabilities_per_block():
    model = batchnorm_mlp(4, [8, 6, 5], 3, p=[0.4, 0.0, 0.2], order="bn-dropout")
    assert [m.p for m in model if isinstance(m, nn.Dropout)] == [0.4, 0.2]
    last = batchnorm_mlp(4, [8, 6], 3, p=[0.4, 0.1], order="last")
    assert [m.p for m in last if isinstance(m, nn.Dropout)] == [0.1]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"order": "bn-first"}, ValueError, "order must be one of"),
        ({"p": 1.2}, ValueError, "p=1.2"),
        ({"p": [0.1]}, ValueError, "one probability per hidden block"),
        ({"p": [0.1, 2.0]}, ValueError, "p\\[1\\]"),
        ({"hidden": []}, TypeError, "non-empty sequence"),
        ({"hidden": 8}, TypeError, "hidden=8"),
        ({"hidden": [8, 0]}, ValueError, "hidden\\[1\\]"),
        ({"in_features": 0}, ValueError, "in_features"),
    ],
)
def test_builder_rejects_bad_arguments(kwargs, error, match):
    arguments = {"in_features": 4, "hidden": [8, 8], "out_features": 3, "p": 0.5, **kwargs}
    with pytest.raises(error, match=match):
        batchnorm_mlp(**arguments)


def test_batchnorm_layers_finds_1d_and_2d_in_order():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.BatchNorm1d(8))
    assert [type(m).__name__ for m in batchnorm_layers(model)] == ["BatchNorm2d", "BatchNorm1d"]
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        batchnorm_layers("model")


# --- measuring the shift --------------------------------------------------------------------------------


def _data(n=6000, features=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, features, generator=generator) * torch.tensor([1.0, 2.0, 0.5, 1.0]) + torch.tensor(
        [0.0, 1.0, 1.0, -2.0]
    )


def _warm_up(model, x, batches=100, size=512):
    """Accumulate running statistics in training mode, as training would."""
    generator = torch.Generator().manual_seed(1)
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(x[torch.randint(len(x), (size,), generator=generator)])
    return model.eval()


def test_measurement_after_a_single_dropout_matches_the_formula_feature_by_feature():
    x = _data()
    torch.manual_seed(0)
    model = _warm_up(nn.Sequential(nn.Dropout(0.4), nn.BatchNorm1d(4)), x)
    shift = measure_variance_shift(model, x)
    mean, var = x.double().mean(0), x.double().var(0, correction=0)
    assert torch.allclose(shift.eval_var[0], var)
    assert torch.allclose(shift.per_feature(0), variance_shift_ratio(mean, var, 0.4), rtol=0.05)
    assert torch.allclose(shift.running_var[0], shift.train_var[0], rtol=0.1)
    assert torch.allclose(shift.train_mean[0], shift.eval_mean[0], atol=0.1)


def test_measurement_restores_modes_and_leaves_the_model_and_the_global_generator_alone():
    x = _data(200)
    model = batchnorm_mlp(4, [8, 8], 3, 0.5)
    model.train()
    model[1].eval()
    modes = [m.training for m in model.modules()]
    state = copy.deepcopy(model.state_dict())
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    measure_variance_shift(model, x, seed=4)
    assert torch.equal(torch.rand(3), expected)
    assert [m.training for m in model.modules()] == modes
    assert all(torch.equal(value, state[name]) for name, value in model.state_dict().items())


def test_measurement_is_deterministic_given_the_seed():
    x = _data(300)
    model = batchnorm_mlp(4, [8, 8], 3, 0.5)
    a, b = measure_variance_shift(model, x, seed=3), measure_variance_shift(model, x, seed=3)
    assert all(torch.equal(u, v) for u, v in zip(a.train_var, b.train_var, strict=True))


def test_no_shift_without_dropout_before_a_bn():
    x = _data(500)
    torch.manual_seed(0)
    model = _warm_up(batchnorm_mlp(4, [8, 8], 3, 0.5, order="last"), x)
    shift = measure_variance_shift(model, x)
    assert torch.allclose(shift.train_var[0], shift.eval_var[0])  # the first BN's input has no dropout


def test_variance_shift_reductions_and_errors():
    one = [torch.tensor([1.0, 2.0, 4.0])]
    shift = VarianceShift(
        one, [torch.tensor([2.0, 2.0, 4.0])], one, one, one, [torch.tensor([3.0, 2.0, 4.0])]
    )
    assert shift.ratio().tolist() == [1.0]
    assert shift.ratio(reduce="mean").tolist() == pytest.approx([(2 + 1 + 1) / 3])
    assert shift.ratio("running", reduce="mean").tolist() == pytest.approx([(3 + 1 + 1) / 3])
    assert shift.mean_shift().tolist() == [0.0]
    with pytest.raises(ValueError, match="of must be"):
        shift.ratio("eval")
    with pytest.raises(ValueError, match="reduce must be"):
        shift.ratio(reduce="max")
    with pytest.raises(ValueError, match="layer must be an index"):
        shift.per_feature(1)


def test_measurement_reads_channels_of_2d_batchnorm():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Dropout(0.5), nn.BatchNorm2d(3))
    shift = measure_variance_shift(model, torch.randn(200, 3, 5, 5))
    assert shift.eval_var[0].shape == (3,)
    assert np.allclose(shift.ratio(), 2.0, rtol=0.05)


@pytest.mark.parametrize(
    ("model", "x", "error", "match"),
    [
        (nn.Linear(2, 2), torch.zeros(4, 2), ValueError, "no BatchNorm layer"),
        (nn.BatchNorm1d(2, track_running_stats=False), torch.zeros(4, 2), ValueError, "track_running_stats"),
        (nn.BatchNorm1d(2), torch.zeros(4, 2, dtype=torch.int64), TypeError, "floating-point"),
        (nn.BatchNorm1d(2), torch.zeros(1, 2), ValueError, "at least two examples"),
        ("model", torch.zeros(4, 2), TypeError, "torch.nn.Module"),
    ],
)
def test_measurement_rejects_bad_arguments(model, x, error, match):
    with pytest.raises(error, match=match):
        measure_variance_shift(model, x)


def test_shift_versus_p_follows_the_formula_for_zero_mean_inputs():
    torch.manual_seed(0)
    x = torch.randn(20000, 3)
    model = nn.Sequential(nn.Linear(3, 3, bias=False), nn.Dropout(0.3), nn.BatchNorm1d(3))
    ratios = shift_versus_p(model, x, [0.0, 0.2, 0.5, 0.8])
    assert np.allclose(ratios[:, 0], [1.0, 1.25, 2.0, 5.0], rtol=0.05)
    assert model[1].p == 0.3  # the model itself is untouched
    with pytest.raises(ValueError, match="no nn.Dropout"):
        shift_versus_p(nn.Sequential(nn.BatchNorm1d(3)), x, [0.1])
    with pytest.raises(TypeError, match="ps must be"):
        shift_versus_p(model, x, 0.1)
    with pytest.raises(ValueError, match="below 1"):
        shift_versus_p(model, x, [1.0])


def test_mixed_train_variance_matches_simulation():
    generator = torch.Generator().manual_seed(0)
    a = torch.relu(torch.randn(300, 5, generator=generator, dtype=torch.float64) + 0.3)
    w = torch.randn(2, 5, generator=generator, dtype=torch.float64)
    p = 0.3
    masks = torch.bernoulli(torch.full((2000, *a.shape), 1 - p, dtype=torch.float64), generator=generator)
    z = (masks * a / (1 - p)) @ w.T
    simulated = z.reshape(-1, 2).var(dim=0, correction=0)
    assert torch.allclose(mixed_train_variance(a, w, p), simulated, rtol=0.02)
    assert mixed_train_variance(a, w[0], p).shape == ()


def test_mixed_train_variance_rejects_bad_shapes():
    with pytest.raises(ValueError, match="weight must have shape"):
        mixed_train_variance(torch.zeros(4, 3), torch.zeros(2, 4), 0.5)
    with pytest.raises(ValueError, match="activations must have shape"):
        mixed_train_variance(torch.zeros(4), torch.zeros(4), 0.5)


# --- recalibration --------------------------------------------------------------------------------------


def test_recalibration_of_a_single_bn_gives_the_exact_statistics_of_its_data():
    x = _data(257)
    bn = nn.BatchNorm1d(4)
    with torch.no_grad():
        bn.running_mean.fill_(5.0)
        bn.running_var.fill_(9.0)
    bn.num_batches_tracked.fill_(100)
    model = nn.Sequential(nn.Dropout(0.5), bn)
    recalibrate_batchnorm(model, x)
    assert torch.allclose(bn.running_mean, x.mean(dim=0), atol=1e-6)
    assert torch.allclose(bn.running_var, x.var(dim=0), rtol=1e-5)  # unbiased, as PyTorch stores it


def test_recalibration_in_equal_batches_keeps_the_exact_mean():
    x = _data(256)
    bn = nn.BatchNorm1d(4)
    recalibrate_batchnorm(nn.Sequential(nn.Dropout(0.5), bn), x, batch_size=64)
    assert torch.allclose(bn.running_mean, x.mean(dim=0), atol=1e-5)
    within = torch.stack([chunk.var(dim=0) for chunk in x.split(64)]).mean(dim=0)
    assert torch.allclose(bn.running_var, within, rtol=1e-5)


def test_recalibration_restores_every_mode_and_momentum_and_changes_no_weight():
    x = _data(400)
    model = batchnorm_mlp(4, [8, 8], 3, 0.5)
    model.train()
    model[1].eval()
    layers = batchnorm_layers(model)
    layers[1].momentum = 0.3
    modes = [m.training for m in model.modules()]
    params = [p.detach().clone() for p in model.parameters()]
    assert recalibrate_batchnorm(model, x) is model
    assert [m.training for m in model.modules()] == modes
    assert [layer.momentum for layer in layers] == [0.1, 0.3]
    assert all(torch.equal(a, b) for a, b in zip(params, model.parameters(), strict=True))


def test_recalibration_leaves_dropout_off_and_is_deterministic():
    x = _data(400)
    torch.manual_seed(0)
    model = _warm_up(batchnorm_mlp(4, [8, 8], 3, 0.5), x)
    first = recalibrate_batchnorm(copy.deepcopy(model), x)
    second = recalibrate_batchnorm(copy.deepcopy(model), x)
    assert all(
        torch.equal(a, b)
        for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    )
    shift = measure_variance_shift(first, x)
    assert np.allclose(shift.ratio("running"), 1.0, atol=0.01)  # matches the evaluation-mode input now
    assert np.allclose(shift.mean_shift(), 0.0, atol=1e-3)


def test_update_bn_with_dropout_on_would_keep_the_shift():
    """torch's own helper switches the whole model to training mode: dropout's noise stays in."""
    x = _data(2000)
    torch.manual_seed(0)
    model = batchnorm_mlp(4, [8], 3, 0.5)
    torch.optim.swa_utils.update_bn([x], model)
    assert measure_variance_shift(model, x).ratio("running")[0] > 1.8


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 1}, ValueError, "at least two examples"),
        ({"batch_size": 3}, ValueError, "at least two examples"),  # 10 = 3 + 3 + 3 + 1
        ({"batch_size": 2.5}, TypeError, "batch_size"),
    ],
)
def test_recalibration_rejects_bad_batches(kwargs, error, match):
    with pytest.raises(error, match=match):
        recalibrate_batchnorm(nn.Sequential(nn.BatchNorm1d(2)), torch.randn(10, 2), **kwargs)


def test_recalibration_rejects_models_without_statistics():
    with pytest.raises(ValueError, match="no BatchNorm layer"):
        recalibrate_batchnorm(nn.Linear(2, 2), torch.randn(5, 2))
    with pytest.raises(TypeError, match="floating-point"):
        recalibrate_batchnorm(nn.BatchNorm1d(2), torch.ones(5, 2, dtype=torch.int64))


# --- the experiment -------------------------------------------------------------------------------------


def test_experiment_returns_a_trained_model_its_shift_and_a_recalibrated_copy():
    run = batchnorm_experiment("dropout-bn", 0.5, hidden=(16, 16), epochs=2)
    assert run.model.training is False and run.recalibrated is not run.model
    assert run.shift.n_layers == 2 and run.label.endswith("p = 0.5")
    assert len(run.history.epoch) == 1
    again = batchnorm_experiment("dropout-bn", 0.5, hidden=(16, 16), epochs=2)
    assert again.test_acc == run.test_acc and again.recalibrated_acc == run.recalibrated_acc


def test_experiment_with_one_probability_per_block():
    run = batchnorm_experiment("bn-dropout", (0.4, 0.2), hidden=(16, 8), epochs=1)
    assert run.p == (0.4, 0.2) and run.label.endswith("p = 0.4, 0.2")
    assert run.shift.ratio()[0] == pytest.approx(1.0)  # no dropout before the first BN


def test_experiment_rejects_bad_arguments():
    with pytest.raises(ValueError, match="order"):
        batchnorm_experiment("sideways")
    with pytest.raises(TypeError, match="data must be"):
        batchnorm_experiment("last", data="digits")
    with pytest.raises(ValueError, match="seed"):
        batchnorm_experiment("last", seed=-1)
