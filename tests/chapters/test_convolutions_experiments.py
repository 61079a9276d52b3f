"""experiments.convolutions: the small CNN, the feature-map measurements, the training comparison."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dropoutlib.course.data import load_digits
from dropoutlib.course.train import History
from dropoutlib.experiments.convolutions import (
    TrackedRun,
    TrainedRun,
    by_kind,
    compare_dropout,
    digits_with_validation,
    fair_claims,
    fair_comparison,
    fair_direction_claims,
    feature_maps,
    injected_noise,
    map_statistics,
    matched_noise,
    neighbour_correlation,
    neighbour_r2,
    next_layer_noise,
    paired_rows,
    runs_at,
    small_cnn,
    spatial_dropout_claims,
    summarize_runs,
    train_cnn,
    train_run,
    train_tracked,
    training_claims,
)
from dropoutlib.nn.dropout import Dropout
from dropoutlib.nn.spatial import SpatialDropout

pytestmark = pytest.mark.usefixtures("one_thread")


# --- the network -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "layer"), [("element", Dropout), ("spatial", SpatialDropout)])
def test_small_cnn_places_the_chosen_dropout_after_each_block(kind, layer):
    model = small_cnn(kind, 0.3, channels=(4, 8))
    names = [name for name, _ in model.named_children()]
    assert names == ["image", "conv1", "relu1", "drop1", "conv2", "relu2", "pool", "drop2", "flatten", "out"]
    assert isinstance(model.drop1, layer) and isinstance(model.drop2, layer)
    assert model.drop1.p == 0.3


def test_small_cnn_without_dropout_and_with_upsampling():
    model = small_cnn("none", channels=(3, 5), upsample=2)
    names = [name for name, _ in model.named_children()]
    assert "drop1" not in names and "upsample" in names
    assert model(torch.zeros(4, 64)).shape == (4, 10)
    assert feature_maps(model, torch.zeros(2, 64)).shape == (2, 3, 16, 16)
    assert feature_maps(model, torch.zeros(2, 64), "pool").shape == (2, 5, 4, 4)


def test_small_cnn_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        small_cnn("dropblock", 0.2)
    with pytest.raises(ValueError, match="p must be 0"):
        small_cnn("none", 0.2)
    with pytest.raises(ValueError, match="needs a dropout probability 0 < p < 1"):
        small_cnn("spatial", 0.0)
    with pytest.raises(TypeError, match="channels must be a pair"):
        small_cnn(channels=16)
    with pytest.raises(ValueError, match="channels\\[1\\] must be a positive integer"):
        small_cnn(channels=(4, 0))
    with pytest.raises(ValueError, match="upsample must be a positive integer"):
        small_cnn(upsample=0)


def test_feature_maps_restores_modes_and_rejects_unknown_layers():
    model = small_cnn("element", 0.5, channels=(4, 8))
    model.train()
    x = torch.randn(3, 64)
    assert torch.equal(feature_maps(model, x, "drop1"), feature_maps(model, x, "relu1"))  # eval mode
    assert all(module.training for module in model.modules())
    with pytest.raises(ValueError, match="upto must name a layer"):
        feature_maps(model, x, "conv3")
    with pytest.raises(TypeError, match="model must be an nn.Sequential"):
        feature_maps(nn.Identity(), x)


# --- correlation and R^2 -----------------------------------------------------------------------------


def test_neighbour_correlation_matches_numpy_corrcoef_per_channel():
    generator = torch.Generator().manual_seed(0)
    maps = torch.randn(10, 3, 4, 6, generator=generator).cumsum(dim=-1)  # random walks along rows
    for offset in (1, 2, 5):
        for axis in ("horizontal", "vertical"):
            if axis == "vertical" and offset >= 4:
                continue
            r = neighbour_correlation(maps, offset, axis)
            for c in range(3):
                m = maps[:, c] if axis == "horizontal" else maps[:, c].transpose(-1, -2)
                u, v = m[..., :-offset].flatten(), m[..., offset:].flatten()
                expected = torch.corrcoef(torch.stack([u, v]).double())[0, 1]
                assert math.isclose(r[c].item(), expected.item(), abs_tol=1e-10)


def test_neighbour_correlation_of_noise_is_near_zero_and_a_dead_channel_is_nan():
    generator = torch.Generator().manual_seed(1)
    maps = torch.randn(200, 2, 8, 8, generator=generator)
    maps[:, 1] = 0
    r = neighbour_correlation(maps)
    assert abs(r[0].item()) < 0.05 and math.isnan(r[1].item())


def test_neighbour_correlation_rejects_bad_arguments():
    maps = torch.zeros(2, 3, 4, 4)
    with pytest.raises(ValueError, match="offset must be smaller than the maps' horizontal size 4"):
        neighbour_correlation(maps, 4)
    with pytest.raises(ValueError, match="axis must be"):
        neighbour_correlation(maps, axis="diagonal")
    with pytest.raises(ValueError, match=r"4-D tensor of feature maps \(N, C, H, W\), got shape \(3, 4, 4\)"):
        neighbour_correlation(torch.zeros(3, 4, 4))


def test_neighbour_r2_is_one_for_smooth_maps_and_small_for_noise():
    ramp = (torch.arange(6.0).view(1, 1, 1, 6) + 2 * torch.arange(6.0).view(1, 1, 6, 1)).repeat(3, 1, 1, 1)
    ramp = ramp + torch.arange(3.0).view(3, 1, 1, 1)
    assert torch.allclose(neighbour_r2(ramp), torch.ones(1, dtype=torch.float64))
    noise = torch.randn(300, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    assert neighbour_r2(noise).item() < 0.02
    with pytest.raises(ValueError, match="at least 3x3"):
        neighbour_r2(torch.zeros(1, 1, 2, 5))


# --- noise in the next layer --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["element", "spatial"])
def test_exact_noise_matches_sampled_masks(kind):
    torch.manual_seed(0)
    model = small_cnn(channels=(3, 4))
    x = torch.randn(40, 64, generator=torch.Generator().manual_seed(1))
    exact = next_layer_noise(model, x, kind, 0.3)
    sampled = next_layer_noise(model, x, kind, 0.3, repeats=400, generator=torch.Generator().manual_seed(2))
    assert abs(sampled / exact - 1) < 0.05


def test_noise_scales_as_p_over_q_and_the_extremes_of_the_ratio():
    torch.manual_seed(0)
    model = small_cnn(channels=(2, 1))
    x = torch.randn(30, 64, generator=torch.Generator().manual_seed(1))
    for kind in ("element", "spatial"):
        low, high = (next_layer_noise(model, x, kind, p) for p in (0.2, 0.6))
        assert math.isclose(high / low, (0.6 / 0.4) / (0.2 / 0.8), rel_tol=1e-5)
    assert next_layer_noise(model, x, "element", 0.0) == 0.0


def test_spatial_noise_with_one_input_channel_is_the_whole_response_times_p_over_q():
    # one input channel: spatial dropout keeps or drops the whole input of conv2, so the noise is
    # (m/q - 1) (z - b) and its expected square is (p/q) (z - b)^2
    torch.manual_seed(0)
    model = small_cnn(channels=(1, 3))
    x = torch.randn(30, 64, generator=torch.Generator().manual_seed(1))
    maps = feature_maps(model, x)
    clean = model.conv2(maps).detach()
    response = clean - model.conv2.bias.detach().view(1, -1, 1, 1)
    expected = 0.25 / 0.75 * response.square().mean() / clean.var(dim=(0, 2, 3)).mean()
    assert math.isclose(next_layer_noise(model, x, "spatial", 0.25), expected.item(), rel_tol=1e-5)
    # and by Cauchy-Schwarz it is at most nine times the element-wise noise
    assert next_layer_noise(model, x, "spatial", 0.25) <= 9 * next_layer_noise(model, x, "element", 0.25)


def test_next_layer_noise_rejects_bad_arguments():
    model = small_cnn(channels=(2, 2))
    x = torch.zeros(2, 64)
    with pytest.raises(ValueError, match="kind must be 'element' or 'spatial'"):
        next_layer_noise(model, x, "none", 0.2)
    with pytest.raises(ValueError, match="p must be below 1"):
        next_layer_noise(model, x, "element", 1.0)
    with pytest.raises(ValueError, match="repeats must be a positive integer"):
        next_layer_noise(model, x, "element", 0.2, repeats=0)


def test_map_statistics_of_a_model():
    torch.manual_seed(0)
    model = small_cnn(channels=(4, 8))
    stats = map_statistics(model, torch.randn(50, 64, generator=torch.Generator().manual_seed(0)))
    assert -1 <= stats.correlation <= 1 and 0 <= stats.r2 <= 1
    # the noises are next_layer_noise at the chapter's p, and by Cauchy-Schwarz the ratio is at most 9
    x = torch.randn(50, 64, generator=torch.Generator().manual_seed(0))
    assert stats.noise_element == next_layer_noise(model, x, "element", 0.2)
    assert stats.noise_spatial == next_layer_noise(model, x, "spatial", 0.2)
    assert 0 < stats.ratio <= 9


# --- training -----------------------------------------------------------------------------------------


def test_train_cnn_is_deterministic_and_kinds_share_the_initial_weights():
    data = load_digits(n_train=100)
    a = train_cnn("element", 0.2, seed=3, data=data, channels=(2, 4), epochs=2)
    b = train_cnn("element", 0.2, seed=3, data=data, channels=(2, 4), epochs=2)
    assert a.test_loss == b.test_loss and a.history == b.history
    assert len(a.history.epoch) == 1  # recorded at the last epoch only
    # the same seed starts every kind from the same weights (dropout layers have none)
    torch.manual_seed(3)
    first = small_cnn("none", channels=(2, 4)).state_dict()
    torch.manual_seed(3)
    second = small_cnn("spatial", 0.2, channels=(2, 4)).state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_train_cnn_ignores_p_without_dropout_and_rejects_bad_data():
    data = load_digits(n_train=50)
    assert train_cnn("none", 0.5, data=data, channels=(2, 2), epochs=1).p == 0.0
    with pytest.raises(TypeError, match="data must be a dropoutlib.course.data.Split"):
        train_cnn("none", data=(1, 2))


def test_compare_dropout_and_summarize_runs():
    data = load_digits(n_train=50)
    runs = compare_dropout([0, 1], kinds=("none", "spatial"), data=data, channels=(2, 2), epochs=1)
    assert sorted(runs) == [("none", 0), ("none", 1), ("spatial", 0), ("spatial", 1)]
    summary = summarize_runs(runs, "test_loss")
    values = torch.tensor([runs["spatial", s].test_loss for s in (0, 1)], dtype=torch.float64)
    assert summary["spatial"] == pytest.approx((values.mean().item(), values.std().item()))
    with pytest.raises(ValueError, match="seeds must hold at least one seed"):
        compare_dropout([])
    with pytest.raises(ValueError, match="attribute must name a number"):
        summarize_runs(runs, "model")


def test_trained_run_gaps():
    run = TrainedRun("none", 0, 1.0, 0.9, 0.05, 0.3, nn.Identity(), History())
    assert math.isclose(run.gap, 0.1) and math.isclose(run.loss_gap, 0.25)
    assert (run.p, run.random_numbers) == (0.0, None)


def test_train_run_counts_before_training_and_rejects_bad_data():
    counted = []

    def count(model, x):
        counted.append(tuple(x.shape))
        return 7

    run = train_run(
        "linear", lambda: nn.Linear(64, 10), seed=1, data=None, n_train=30, epochs=1, lr=1e-2, count=count
    )
    assert run.name == "linear" and run.seed == 1 and run.random_numbers == 7
    assert counted == [(30, 64)]
    with pytest.raises(TypeError, match="data must be a dropoutlib.course.data.Split"):
        train_run("linear", lambda: nn.Linear(64, 10), seed=0, data=(1, 2), n_train=30, epochs=1, lr=1e-2)


# --- the chapter's claims -----------------------------------------------------------------------------


def test_spatial_dropout_claims_fail_on_a_mismatch_or_a_wrong_fraction():
    good = {
        "equal_to_dropout2d": [True] * 15,
        "same_outputs": True,
        "same_gradients": True,
        "fraction": 0.3,
        "p": 0.3,
        "channels": 12800,
        "whole": True,
        "mean_ratio": 1.0,
        "gradcheck": True,
    }
    assert all(c.holds for c in spatial_dropout_claims(**good))
    failed = spatial_dropout_claims(**(good | {"equal_to_dropout2d": [True, False], "fraction": 0.35}))
    assert [c.holds for c in failed] == [False, True, False, True, True, True]


# --- the sweep, the validation split, early stopping and the fair comparison -------------------------


def test_digits_with_validation_keeps_load_digits_and_holds_out_unseen_balanced_images():
    data, (x_val, y_val) = digits_with_validation(3, n_train=200, n_validation=100)
    same = load_digits(seed=3, n_train=200)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(data, name), getattr(same, name))
    assert x_val.shape == (100, 64) and y_val.shape == (100,)
    assert torch.bincount(y_val, minlength=10).min() >= 9  # stratified: 10 of each class, give or take
    # held out: no validation image is one of the training images
    shared = (x_val.unsqueeze(1) == data.x_train.unsqueeze(0)).all(dim=2).any()
    assert not shared
    with pytest.raises(ValueError, match="n_validation must be between 10"):
        digits_with_validation(0, n_train=200, n_validation=5000)


def test_train_tracked_is_train_cnn_to_the_bit():
    data, validation = digits_with_validation(1, n_train=100, n_validation=50)
    for kind in ("element", "spatial"):
        tracked = train_tracked(kind, 0.3, seed=1, data=data, validation=validation, epochs=2)
        plain = train_cnn(kind, 0.3, seed=1, data=data, epochs=2)
        assert tracked.test_loss == plain.test_loss and tracked.train_acc == plain.train_acc
        reference = plain.model.state_dict()
        assert all(torch.equal(value, reference[key]) for key, value in tracked.model.state_dict().items())
        assert len(tracked.val_losses) == 1 and tracked.best_epoch == 2


def test_early_stopping_returns_the_test_numbers_of_the_epoch_of_lowest_validation_loss():
    data, validation = digits_with_validation(2, n_train=100, n_validation=50)
    run = train_tracked("none", seed=2, data=data, validation=validation, every_epoch=True, epochs=15)
    assert len(run.val_losses) == 15
    assert run.best_epoch == 1 + min(range(15), key=run.val_losses.__getitem__)
    assert run.best_epoch < 15  # this seed overfits the validation loss before the end
    assert run.val_loss == run.val_losses[-1]
    # training is deterministic, so the weights after best_epoch epochs are those of a shorter run
    shorter = train_cnn("none", seed=2, data=data, epochs=run.best_epoch)
    assert run.early_test_loss == shorter.test_loss and run.early_test_acc == shorter.test_acc


def tracked(kind, p, seed, val_loss, test_loss, test_acc=0.96, early=(0.2, 0.95), best_epoch=5):
    return TrackedRun(
        kind, seed, 1.0, test_acc, 0.0, test_loss, nn.Identity(), History(), p, None,
        val_loss, 0.9, [val_loss], best_epoch, *early,
    )  # fmt: skip


def fake_sweep():
    sweep = {}
    for seed in (0, 1, 2):
        sweep["none", 0.0, seed] = tracked("none", 0.0, seed, 0.3, 0.15 + 0.01 * seed, early=(0.16, 0.95))
        # element-wise: p = 0.5 validates better; spatial: p = 0.2 validates better but tests worse
        sweep["element", 0.2, seed] = tracked("element", 0.2, seed, 0.30, 0.14)
        sweep["element", 0.5, seed] = tracked("element", 0.5, seed, 0.25 + 0.01 * seed, 0.12 + 0.002 * seed)
        sweep["spatial", 0.05, seed] = tracked("spatial", 0.05, seed, 0.28, 0.10)
        sweep["spatial", 0.2, seed] = tracked("spatial", 0.2, seed, 0.27 - 0.01 * seed, 0.16)
    return sweep


def test_fair_comparison_chooses_p_on_validation_only_and_pairs_by_seed():
    result = fair_comparison(fake_sweep())
    assert result["p"] == {"element": 0.5, "spatial": 0.2}  # the test losses would choose 0.05
    assert result["test_loss"]["spatial"].tolist() == [0.16, 0.16, 0.16]
    assert result["test_loss"]["element"].tolist() == pytest.approx([0.12, 0.122, 0.124])
    assert result["test_loss"]["none"].tolist() == pytest.approx([0.15, 0.16, 0.17])
    assert result["test_loss"]["early"].tolist() == [0.16, 0.16, 0.16]
    assert result["best_epoch"].tolist() == [5, 5, 5] and result["seeds"] == [0, 1, 2]
    mean, se = result["val_loss"]["element", 0.5]
    assert mean == pytest.approx(0.26) and se == pytest.approx(0.01 / math.sqrt(3))


def test_matched_noise_interpolates_element_wise_in_log_noise_and_skips_points_outside_its_range():
    sweep = fake_sweep()
    noise = {}
    for seed in (0, 1, 2):
        noise["element", 0.2, seed], noise["element", 0.5, seed] = 1.0, 100.0
        noise["spatial", 0.05, seed], noise["spatial", 0.2, seed] = 0.5, 10.0  # 0.05 is below the range
    matched = matched_noise(sweep, noise)
    assert list(matched) == [0.2]
    expected = [0.16 - (0.14 + (0.12 + 0.002 * s - 0.14) / 2) for s in (0, 1, 2)]  # log 10 is halfway
    assert matched[0.2] == pytest.approx(expected)


def test_injected_noise_is_next_layer_noise_of_the_seeds_network_without_dropout():
    torch.manual_seed(0)
    model = small_cnn(channels=(4, 8))
    x = torch.randn(20, 64, generator=torch.Generator().manual_seed(0))
    sweep = {("none", 0.0, 0): TrainedRun("none", 0, 1, 1, 0, 0, model)}
    sweep |= {(kind, p, 0): None for kind in ("element", "spatial") for p in (0.1, 0.4)}
    noise = injected_noise(sweep, {0: x})
    for kind in ("element", "spatial"):
        for p in (0.1, 0.4):
            assert noise[kind, p, 0] == pytest.approx(next_layer_noise(model, x, kind, p), rel=1e-6)


def test_runs_at_keys_the_networks_of_one_p_and_rejects_a_p_outside_a_grid():
    sweep = fake_sweep()
    at = runs_at(sweep, 0.2)
    assert sorted(at) == [(k, s) for k in ("element", "none", "spatial") for s in (0, 1, 2)]
    with pytest.raises(ValueError, match="both grids"):
        runs_at(sweep, 0.5)


def test_paired_rows_and_by_kind():
    values = {"loss": {"a": np.array([0.3, 0.2, 0.25]), "b": np.array([0.2, 0.15, 0.2])}}
    (row,) = paired_rows(values, [("a", "b")])
    assert row["difference"] == "b - a" and row["loss"] == "-0.0667 ± 0.0167" and row["loss / SE"] == -4.0
    runs = {
        (k, s): TrainedRun(k, s, 1.0, 0.9 + s / 100, 0.0, 0.1, nn.Identity())
        for k in ("none", "element")
        for s in (1, 0)
    }
    assert by_kind(runs, "test_acc")["none"].tolist() == [0.9, 0.91]


# --- the claims fail when the results say otherwise ------------------------------------------------------


def same_p_runs(shift_element=-0.02, shift_spatial=0.01, acc=None):
    runs = {}
    for seed, noise in enumerate([0.0, 0.004, -0.003, 0.002, -0.001]):
        for kind, shift in (("none", 0.0), ("element", shift_element), ("spatial", shift_spatial)):
            a = 0.96 if acc is None else acc[kind]
            runs[kind, seed] = TrainedRun(
                kind, seed, 1.0, a, 0.0, 0.15 + seed / 100 + shift + noise * (kind != "none"), nn.Identity()
            )
    return runs


def test_training_claims_fail_when_element_wise_does_not_help_or_accuracies_drift():
    assert all(c.holds for c in training_claims(same_p_runs(), n_test=540))
    holds = [c.holds for c in training_claims(same_p_runs(shift_element=0.001), n_test=540)]
    assert holds[0] is False and holds[1] is True
    holds = [
        c.holds
        for c in training_claims(
            same_p_runs(acc={"none": 0.96, "element": 0.975, "spatial": 0.96}), n_test=540
        )
    ]
    assert holds[-2:] == [False, False]


def fair_result(element_loss, acc_spatial=(0.96, 0.97, 0.96, 0.965, 0.962)):
    a = np.array
    return {
        "p": {"element": 0.5, "spatial": 0.05},
        "test_loss": {
            "none": a([0.15, 0.12, 0.14, 0.16, 0.13]),
            "early": a([0.15, 0.125, 0.14, 0.155, 0.13]),
            "element": a(element_loss),
            "spatial": a([0.151, 0.121, 0.142, 0.159, 0.131]),
        },
        "test_acc": {
            "none": a([0.96, 0.97, 0.962, 0.965, 0.96]),
            "early": a([0.962, 0.968, 0.962, 0.964, 0.96]),
            "element": a([0.963, 0.968, 0.96, 0.966, 0.962]),
            "spatial": a(acc_spatial),
        },
    }


def test_fair_claims_hold_for_a_clear_result_and_fail_where_it_is_not():
    matched = {0.2: np.array([0.02, 0.03, 0.025, 0.02, 0.03])}
    matched_acc = {0.2: np.array([0.0, -0.002, 0.002, 0.001, -0.001])}
    good = fair_result([0.13, 0.10, 0.12, 0.14, 0.115])
    assert all(c.holds for c in fair_claims(good, matched, matched_acc))
    assert all(c.holds for c in fair_direction_claims(good, matched))
    # element-wise dropout no better than no dropout: its three clear claims fail, the direction too
    level = fair_result([0.151, 0.119, 0.141, 0.161, 0.129])
    holds = [c.holds for c in fair_claims(level, matched, matched_acc)]
    assert holds[1:4] == [False, False, False]
    assert [c.holds for c in fair_direction_claims(level, matched)][:2] == [False, False]
    # spatial dropout clearly less accurate than element-wise: the accuracy claim fails
    worse = fair_result([0.13, 0.10, 0.12, 0.14, 0.115], acc_spatial=(0.95, 0.96, 0.95, 0.955, 0.952))
    assert fair_claims(worse, matched, matched_acc)[-1].holds is False
    # validation choosing p = 0.2 for spatial dropout breaks the first claim
    moved = good | {"p": {"element": 0.5, "spatial": 0.2}}
    assert fair_claims(moved, matched, matched_acc)[0].holds is False
