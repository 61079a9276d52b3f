"""Unit tests of experiments.dropout_family: the networks, the counters and the measurements of chapter 13."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dropoutlib.course.data import load_digits
from dropoutlib.experiments.convolutions import TrainedRun
from dropoutlib.experiments.dropout_family import (
    BLOCK_SIZES,
    DEPTH,
    FAMILIES,
    HIDDEN,
    INFERENCE_RULES,
    MASK_KINDS,
    N_TRAIN,
    VARIANTS,
    Moments,
    RampedDropBlock2d,
    Scores,
    build_variant,
    compare_family,
    depth_claims,
    depth_statistics,
    dropconnect_inference,
    dropconnect_inference_claims,
    dropconnect_probabilities,
    droppath_rate_claims,
    droppath_skip_rates,
    droppath_unresolved_claims,
    mask_structure,
    measure_moments,
    noise_structure,
    random_numbers_per_step,
    residual_mlp,
    scores,
    selu_mlp,
    train_variant,
)
from dropoutlib.nn.alpha import AlphaDropout
from dropoutlib.nn.drop_path import DropPath
from dropoutlib.nn.dropblock import DropBlock2d, dropblock
from dropoutlib.nn.dropconnect import DropConnectLinear, dropconnect_linear
from dropoutlib.nn.dropout import dropout
from dropoutlib.nn.gaussian import GaussianDropout

# --- the networks ----------------------------------------------------------------------------------------


def test_every_family_starts_with_its_baseline_and_lists_known_variants():
    assert [name for names in FAMILIES.values() for name in names] == list(VARIANTS)
    for family, names in FAMILIES.items():
        assert VARIANTS[names[0]].label == "no dropout"
        assert all(VARIANTS[name].family == family for name in names)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_variants_of_a_family_start_from_identical_weights(family):
    names = FAMILIES[family]
    params = [list(build_variant(name, seed=3).parameters()) for name in names]
    for others in params[1:]:  # the dropout layers shift the indices, not the parameters
        assert len(others) == len(params[0])
        assert all(torch.equal(a, b) for a, b in zip(others, params[0], strict=True))
    reseeded = list(build_variant(names[0], seed=4).parameters())
    assert not torch.equal(reseeded[0], params[0][0])


@pytest.mark.parametrize(
    ("name", "layer", "count"),
    [
        ("mlp-dropout", nn.Module, 2),
        ("mlp-dropconnect", DropConnectLinear, 2),
        ("mlp-gaussian", GaussianDropout, 2),
        ("selu-alpha", AlphaDropout, 2),
        ("residual-droppath", DropPath, DEPTH),
        ("cnn-dropblock", DropBlock2d, 2),
        ("cnn-dropblock-ramp", RampedDropBlock2d, 2),
    ],
)
def test_variants_hold_their_layers(name, layer, count):
    model = build_variant(name)
    found = [m for m in model.modules() if isinstance(m, layer) and getattr(m, "p", 0) > 0]
    assert len(found) >= count


def test_every_network_maps_digits_to_ten_logits():
    x = torch.zeros(3, 64)
    for name in VARIANTS:
        assert build_variant(name)(x).shape == (3, 10)


def test_build_variant_rejects_unknown_names():
    with pytest.raises(ValueError, match="name must be one of"):
        build_variant("dropout")


def test_selu_mlp_has_lecun_normal_weights_and_zero_biases():
    torch.manual_seed(0)
    net = selu_mlp(400, [300, 300], 10)
    for layer in (m for m in net if isinstance(m, nn.Linear)):
        assert abs(layer.weight.std().item() * math.sqrt(layer.in_features) - 1) < 0.02
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))


@pytest.mark.parametrize(("kind", "layer"), [("alpha", AlphaDropout), ("standard", nn.Module)])
def test_selu_mlp_puts_dropout_after_every_selu(kind, layer):
    net = selu_mlp(8, [4, 4, 4], 2, kind, 0.1)
    kinds = [type(m).__name__ for m in net]
    assert kinds.count("SELU") == 3
    for index, module in enumerate(net):
        if isinstance(module, nn.SELU):
            assert isinstance(net[index + 1], layer) and net[index + 1].p == 0.1


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (([4], "gaussian", 0.1), ValueError, "dropout must be one of"),
        (([4], "alpha", 0.0), ValueError, "needs 0 < p < 1"),
        (([4], "alpha", 1.5), ValueError, "probability"),
        ((4, "none", 0.0), TypeError, "hidden must be"),
        (([0], "none", 0.0), ValueError, "hidden\\[0\\]"),
    ],
)
def test_selu_mlp_rejects_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        selu_mlp(8, *args[:1], 2, *args[1:])


# --- counting random numbers -----------------------------------------------------------------------------


def test_random_numbers_per_step_counts_per_unit_per_weight_per_example_per_block_position():
    x = torch.zeros(20, 64)
    units = 20 * sum(HIDDEN)
    assert random_numbers_per_step(build_variant("mlp"), x) == 0
    assert random_numbers_per_step(build_variant("mlp-dropout"), x) == units
    assert random_numbers_per_step(build_variant("mlp-gaussian"), x) == units
    assert random_numbers_per_step(build_variant("selu-alpha"), x) == units
    assert random_numbers_per_step(build_variant("mlp-dropconnect"), x) == 64 * 64 + 10 * 64
    assert random_numbers_per_step(build_variant("residual-droppath"), x) == 20 * DEPTH
    # DropBlock: one coin per position where a block fits, (8-3+1)^2 on 8 channels, (4-2+1)^2 on 16
    assert random_numbers_per_step(build_variant("cnn-dropblock"), x) == 20 * (8 * 36 + 16 * 9)


def test_random_numbers_per_step_counts_torch_layers_too():
    x = torch.zeros(5, 6)
    model = nn.Sequential(nn.Dropout(0.5), nn.AlphaDropout(0.2), nn.Dropout(0.0), nn.Unflatten(1, (3, 2, 1)))
    assert random_numbers_per_step(model, x) == 60
    maps = torch.zeros(5, 3, 4, 4)
    assert random_numbers_per_step(nn.Dropout2d(0.3), maps) == 15


def test_random_numbers_per_step_restores_modes_and_the_global_generator():
    model = build_variant("mlp-dropout").eval()
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    random_numbers_per_step(model, torch.zeros(4, 64))
    assert torch.equal(torch.rand(3), expected)
    assert not any(m.training for m in model.modules())


def test_random_numbers_per_step_rejects_bad_arguments():
    with pytest.raises(TypeError, match="model must be"):
        random_numbers_per_step(lambda x: x, torch.zeros(2, 64))
    with pytest.raises(TypeError, match="floating-point"):
        random_numbers_per_step(build_variant("mlp"), torch.zeros(2, 64, dtype=torch.int64))


# --- training --------------------------------------------------------------------------------------------


def test_train_variant_is_deterministic_and_reports_its_run():
    data = load_digits(n_train=60)
    first = train_variant("mlp-dropconnect", 1, data=data, epochs=4)
    second = train_variant("mlp-dropconnect", 1, data=data, epochs=4)
    assert isinstance(first, TrainedRun)
    assert (first.test_loss, first.train_acc) == (second.test_loss, second.train_acc)
    assert first.random_numbers == 64 * 64 + 10 * 64
    assert not first.model.training
    assert math.isclose(first.gap, first.train_acc - first.test_acc)
    assert math.isclose(first.loss_gap, first.test_loss - first.train_loss)


def test_train_variant_and_compare_family_reject_bad_arguments():
    with pytest.raises(TypeError, match="data must be"):
        train_variant("mlp", data=(1, 2))
    with pytest.raises(ValueError, match="name must be one of"):
        train_variant("mlp-bogus")
    with pytest.raises(ValueError, match="at least one seed"):
        compare_family([])


# --- moments ---------------------------------------------------------------------------------------------


def test_measure_moments_of_dropout_matches_the_formulas():
    g = torch.Generator().manual_seed(0)
    x = 1 + torch.randn(500, 20, generator=g)
    p = 0.3
    m = measure_moments(lambda t, gen: dropout(t, p, generator=gen), x, 400, g)
    pq = p / (1 - p)
    assert abs(m.slope - 1) < 0.01
    assert abs(m.noise / pq - 1) < 0.03
    predicted = m.var_in + pq * x.double().square().mean().item()
    assert abs(m.var_out / predicted - 1) < 0.02
    assert abs(m.mean_shift) < 0.01


def test_measure_moments_of_deterministic_maps():
    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(1))
    same = measure_moments(lambda t, g: t, x, 3)
    assert math.isclose(same.slope, 1.0, rel_tol=1e-12) and abs(same.noise) < 1e-12
    assert math.isclose(same.var_ratio, 1.0, rel_tol=1e-12)
    doubled = measure_moments(lambda t, g: 2 * t, x, 3)
    assert math.isclose(doubled.slope, 2.0, rel_tol=1e-12)
    assert math.isclose(doubled.var_ratio, 4.0, rel_tol=1e-12)


def test_moments_properties():
    m = Moments(1.0, 2.0, 1.5, 3.0, 1.0, 0.5)
    assert m.mean_shift == 0.5 and m.var_ratio == 1.5


def test_measure_moments_rejects_bad_arguments():
    x = torch.zeros(3)
    with pytest.raises(TypeError, match="noise must be a function"):
        measure_moments(3, x)
    with pytest.raises(ValueError, match="at least 2"):
        measure_moments(lambda t, g: t, x, 1)
    with pytest.raises(TypeError, match="generator"):
        measure_moments(lambda t, g: t, x, 2, generator=0)


# --- noise structure and masks ---------------------------------------------------------------------------


def test_noise_structure_dropout_correlates_units_dropconnect_correlates_examples():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(30, 12, generator=g)
    w = torch.randn(6, 12, generator=g)
    w[1] = w[0]  # two identical output units: dropout on the inputs gives them identical noise
    d = noise_structure("dropout", x, w, 0.5, 300, g)
    c = noise_structure("dropconnect", x, w, 0.5, 300, g)
    for s in (d, c):
        assert abs(s.variance_ratio - 1) < 0.1 and abs(s.bias) < 0.05
    assert d.unit_correlation > 2 * d.floor
    assert c.unit_correlation < 1.5 * c.floor
    assert c.example_correlation > 0.3 and abs(d.example_correlation) < 0.05


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (("gaussian", torch.zeros(2, 3), torch.zeros(4, 3), 0.5), ValueError, "kind must be"),
        (("dropout", torch.zeros(2, 3), torch.zeros(4, 2), 0.5), ValueError, "same in"),
        (("dropout", torch.zeros(2, 3), torch.zeros(4, 3), 0.0), ValueError, "p must be in"),
        (("dropout", torch.zeros(2, 3), torch.zeros(4, 3), 0.5, 2), ValueError, "at least 3"),
    ],
)
def test_noise_structure_rejects_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        noise_structure(*args)


def test_mask_structure_orders_element_dropblock_spatial():
    g = torch.Generator().manual_seed(0)
    s = {kind: mask_structure(kind, 0.2, generator=g) for kind in MASK_KINDS}
    assert abs(s["element-wise"].neighbour_correlation) < 0.02
    assert 0.3 < s["DropBlock"].neighbour_correlation < 0.95
    assert math.isclose(s["spatial"].neighbour_correlation, 1.0, rel_tol=1e-9)
    assert abs(s["element-wise"].dropped - 0.2) < 0.01
    assert all(abs(v.mean_ratio - 1) < 0.02 for v in s.values())


def test_mask_structure_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind must be"):
        mask_structure("channel", 0.2)
    with pytest.raises(ValueError, match="p must be in"):
        mask_structure("DropBlock", 1.0)
    with pytest.raises(TypeError, match="shape must be"):
        mask_structure("DropBlock", 0.2, shape=(8, 8))


# --- SELU across depth -----------------------------------------------------------------------------------


def test_depth_statistics_follow_every_hidden_layer_and_restore_modes():
    torch.manual_seed(0)
    net = selu_mlp(64, [128] * 12, 10, "standard", 0.2).eval()
    x = torch.randn(400, 64)
    train = depth_statistics(net, x)
    evaluation = depth_statistics(net, x, training=False)
    assert len(train.mean) == len(train.var) == 12
    assert not any(m.training for m in net.modules())
    assert train.var[-1] > 1.3 > 1.2 > evaluation.var[-1] > 0.8


def test_depth_statistics_rejects_bad_arguments():
    with pytest.raises(TypeError, match="nn.Sequential"):
        depth_statistics(nn.Linear(2, 2), torch.zeros(1, 2))
    with pytest.raises(TypeError, match="training must be"):
        depth_statistics(selu_mlp(2, [2], 2), torch.zeros(1, 2), training=1)


# --- DropConnect inference ------------------------------------------------------------------------------


class _Square(nn.Module):
    def forward(self, x):
        return x.square()


def test_mean_network_rule_is_the_evaluation_forward_and_scores_its_cross_entropy():
    run = train_variant("mlp-dropconnect", 0, epochs=5)
    data = load_digits(seed=0, n_train=N_TRAIN)
    probs = dropconnect_probabilities(run.model, data.x_test, "mean network")
    assert torch.allclose(probs, torch.softmax(run.model.eval()(data.x_test), dim=1))
    assert scores(probs, data.y_test).loss == pytest.approx(run.test_loss, abs=1e-5)
    assert scores(probs, data.y_test).acc == pytest.approx(run.test_acc)


def test_moment_matching_uses_the_variance_of_real_masks():
    # With a squaring activation the moment-matched output is E[u^2] = mean^2 + variance, and the
    # softmax's logs give it back up to a constant per row. The variance of u under real DropConnect
    # masks, measured by sampling them, must be the Gaussian's.
    torch.manual_seed(0)
    layer = DropConnectLinear(6, 3, p=0.3)
    with torch.no_grad():
        layer.weight.mul_(3)
    v = torch.rand(4, 6)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        draws = torch.stack(
            [dropconnect_linear(v, layer.weight, layer.bias, 0.3, generator=g) for _ in range(20_000)]
        )

    def centred(z):
        return z - z.mean(dim=1, keepdim=True)

    probs = dropconnect_probabilities(
        nn.Sequential(layer, _Square()), v, "moment matching", samples=20_000, seed=2
    )
    second_moment = draws.square().mean(dim=0)
    assert torch.allclose(centred(probs.log()), centred(second_moment), atol=0.05)
    # the mean network misses the variance term
    mean_only = layer.eval()(v).detach().square()
    assert (centred(probs.log()) - centred(mean_only)).abs().max() > 0.3


def test_moment_matching_averages_the_last_layers_softmax_over_gaussian_samples():
    torch.manual_seed(0)
    layer = DropConnectLinear(5, 4, p=0.5)
    v = torch.randn(3, 5)
    probs = dropconnect_probabilities(nn.Sequential(layer), v, "moment matching", samples=5000, seed=0)
    mean = layer.eval()(v).detach()
    std = (1.0 * (v.square() @ layer.weight.detach().square().T)).sqrt()
    g = torch.Generator().manual_seed(7)
    reference = torch.softmax(mean + std * torch.randn((20_000, *mean.shape), generator=g), dim=-1).mean(0)
    assert torch.allclose(probs, reference, atol=0.01)
    assert torch.allclose(probs.sum(dim=1), torch.ones(3))


def test_mc_rule_equals_the_mean_network_without_drops_and_restores_the_generator():
    torch.manual_seed(0)
    net = nn.Sequential(DropConnectLinear(5, 8, p=0.0), nn.ReLU(), DropConnectLinear(8, 3, p=0.0))
    x = torch.randn(4, 5)
    state = torch.get_rng_state()
    mc = dropconnect_probabilities(net, x, "MC masks", samples=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.allclose(mc, dropconnect_probabilities(net, x, "mean network"))
    assert net.training  # modes restored


def test_dropconnect_probabilities_rejects_bad_arguments():
    net = build_variant("mlp-dropconnect")
    x = torch.zeros(2, 64)
    with pytest.raises(ValueError, match="rule"):
        dropconnect_probabilities(net, x, "median")
    with pytest.raises(ValueError, match="DropConnectLinear"):
        dropconnect_probabilities(build_variant("mlp"), x, "mean network")
    with pytest.raises(TypeError, match="Sequential"):
        dropconnect_probabilities(nn.Linear(64, 10), x, "mean network")


def test_dropconnect_inference_scores_every_rule_for_every_seed():
    models = {seed: train_variant("mlp-dropconnect", seed, epochs=3).model for seed in (0, 1)}
    result = dropconnect_inference(models, samples={"moment matching": 10, "MC masks": 10})
    assert set(result) == {(rule, seed) for rule in INFERENCE_RULES for seed in (0, 1)}
    assert all(0 <= s.acc <= 1 and s.loss > 0 and 0.1 <= s.confidence <= 1 for s in result.values())


def _inference(mean_losses, moment_losses, mc_losses, accs=(0.93, 0.93, 0.93), conf=(0.97, 0.92, 0.91)):
    result = {}
    for seed, losses in enumerate(zip(mean_losses, moment_losses, mc_losses, strict=True)):
        for rule, loss, acc, c in zip(INFERENCE_RULES, losses, accs, conf, strict=True):
            result[rule, seed] = Scores(loss, acc, c)
    return result


def test_dropconnect_inference_claims_fail_when_they_should():
    good = _inference([0.33, 0.30, 0.36], [0.27, 0.25, 0.29], [0.27, 0.26, 0.28])
    assert all(c.holds for c in dropconnect_inference_claims(good))
    # moment matching no better than the mean network: its loss claim and the closeness claim fail
    bad = _inference([0.33, 0.30, 0.36], [0.34, 0.29, 0.36], [0.27, 0.26, 0.28])
    held = {c.statement: c.holds for c in dropconnect_inference_claims(bad)}
    assert not held["moment matching lowers the mean network's test loss (paired mean < -2 SE)"]
    assert not any(h for s, h in held.items() if s.startswith("moment matching is closer"))
    # an accuracy shift of a point fails the accuracy claim
    shifted = _inference([0.33, 0.30, 0.36], [0.27, 0.25, 0.29], [0.27, 0.26, 0.28], accs=(0.93, 0.94, 0.93))
    assert not all(c.holds for c in dropconnect_inference_claims(shifted))
    # averages more confident than the mean network fail the confidence claims
    sure = _inference([0.33, 0.30, 0.36], [0.27, 0.25, 0.29], [0.27, 0.26, 0.28], conf=(0.9, 0.95, 0.95))
    assert not all(c.holds for c in dropconnect_inference_claims(sure))


# --- DropBlock's schedule, DropPath's rates, the SELU depth claims ---------------------------------------


def test_ramped_dropblock_raises_p_linearly_and_only_on_training_steps():
    layer = RampedDropBlock2d(0.2, 3, steps=10)
    x = torch.ones(4, 2, 8, 8, requires_grad=True)
    assert layer.current_p == pytest.approx(0.02)
    with torch.no_grad():  # evaluation-like calls do not advance the schedule
        layer(x)
    layer.eval()
    layer(x)
    assert layer.steps_taken == 0
    layer.train()
    for step in range(1, 13):
        torch.manual_seed(step)
        expected_p = 0.2 * min(1.0, step / 10)
        y = layer(x)
        torch.manual_seed(step)
        assert torch.equal(y, dropblock(x, expected_p, 3))
    assert layer.steps_taken == 12


def test_ramped_dropblock_variant_takes_one_step_per_epoch():
    run = train_variant("cnn-dropblock-ramp", 0, epochs=7)
    layers = [m for m in run.model.modules() if isinstance(m, RampedDropBlock2d)]
    assert len(layers) == 2
    assert all(layer.steps_taken == 7 for layer in layers)
    assert [layer.block_size for layer in layers] == list(BLOCK_SIZES)


def test_droppath_skip_rates_measure_the_schedule():
    torch.manual_seed(0)
    x = torch.randn(400, 64)
    linear = droppath_skip_rates(residual_mlp(64, 16, 10, 4, 0.4), x, 10)
    assert linear == pytest.approx([0.1, 0.2, 0.3, 0.4], abs=0.03)
    uniform = droppath_skip_rates(residual_mlp(64, 16, 10, 4, 0.4, schedule="uniform"), x, 10)
    assert uniform == pytest.approx([0.4] * 4, abs=0.03)
    assert droppath_skip_rates(residual_mlp(64, 16, 10, 4), x, 2) == [0.0] * 4
    assert not droppath_rate_claims(uniform, 0.4, 4000)[0].holds
    assert droppath_rate_claims(linear, 0.4, 4000)[0].holds


def test_droppath_skip_rates_restore_modes_and_the_generator():
    net = residual_mlp(64, 16, 10, 2, 0.5).eval()
    x = torch.randn(10, 64)
    state = torch.get_rng_state()
    droppath_skip_rates(net, x, 3)
    assert torch.equal(torch.get_rng_state(), state)
    assert not net.training
    with pytest.raises(ValueError, match="ResidualBlock"):
        droppath_skip_rates(nn.Sequential(nn.Linear(64, 10)), torch.randn(3, 64))


def test_depth_claims_fail_on_a_variance_shift_or_none():
    assert all(c.holds for c in depth_claims(1.01, 0.99, 1.6, 0.99))
    assert not all(c.holds for c in depth_claims(1.01, 0.7, 1.6, 0.99))  # alpha with a shift
    assert not all(c.holds for c in depth_claims(1.01, 0.99, 1.6, 1.5))  # standard without one


def test_droppath_unresolved_claims_fail_on_a_consistent_effect():
    def run(name, seed, loss):
        return TrainedRun(name, seed, 1.0, 0.9, 0.01, loss, nn.Identity())

    noisy = {("residual", 0): 1.0, ("residual-droppath", 0): 0.6, ("residual", 1): 0.8}
    noisy |= {("residual-droppath", 1): 1.0, ("residual", 2): 1.1, ("residual-droppath", 2): 1.0}
    assert droppath_unresolved_claims({key: run(*key, v) for key, v in noisy.items()})[0].holds
    steady = {("residual", s): 1.0 for s in range(3)} | {
        ("residual-droppath", s): 0.8 + s / 100 for s in range(3)
    }
    assert not droppath_unresolved_claims({key: run(*key, v) for key, v in steady.items()})[0].holds
