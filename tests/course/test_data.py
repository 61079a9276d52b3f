"""Data sets: the digits split (fixed by seed, stratified, standardized with training statistics only)
and the toy regression."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import sklearn.datasets
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.model_selection import train_test_split

from dropoutlib.course.data import Split, load_digits, standardize, toy_regression

FAST = settings(max_examples=40, deadline=None)


@pytest.fixture(scope="module")
def digits() -> Split:
    return load_digits()


def tensors(split: Split) -> list[torch.Tensor]:
    return [split.x_train, split.y_train, split.x_test, split.y_test]


# --- digits: shapes and split ---------------------------------------------------------------------


def test_digits_shapes_dtypes_and_name(digits: Split) -> None:
    assert (digits.n_train, digits.n_test, digits.n_features) == (1257, 540, 64)
    assert digits.x_train.shape == (1257, 64) and digits.x_test.shape == (540, 64)
    assert digits.y_train.shape == (1257,) and digits.y_test.shape == (540,)
    assert digits.x_train.dtype == digits.x_test.dtype == torch.float32
    assert digits.y_train.dtype == digits.y_test.dtype == torch.int64
    assert digits.name == "digits"


def test_digits_split_is_stratified(digits: Split) -> None:
    total = np.bincount(sklearn.datasets.load_digits().target, minlength=10)
    train = torch.bincount(digits.y_train, minlength=10).numpy()
    test = torch.bincount(digits.y_test, minlength=10).numpy()
    assert np.array_equal(train + test, total)
    # every class is as frequent in both sets, up to rounding to whole images
    assert np.all(np.abs(test - 0.3 * total) <= 1), test


def test_same_seed_gives_identical_tensors() -> None:
    for a, b in zip(tensors(load_digits(seed=4)), tensors(load_digits(seed=4)), strict=True):
        assert torch.equal(a, b)


def test_different_seed_gives_a_different_split() -> None:
    a, b = load_digits(seed=0), load_digits(seed=1)
    assert a.n_train == b.n_train
    assert not torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.x_test, b.x_test)


def test_train_and_test_images_are_disjoint_and_cover_the_data_set(digits: Split) -> None:
    # Undo the standardization is not needed: equal raw images stay equal after the same affine map.
    rows = torch.cat([digits.x_train, digits.x_test])
    raw = sklearn.datasets.load_digits().data
    assert len(rows) == len(raw)
    assert len(torch.unique(rows, dim=0)) == len(np.unique(raw, axis=0))


def test_test_fraction_sets_the_test_size() -> None:
    split = load_digits(test_fraction=0.5)
    assert split.n_test == 899 and split.n_train == 898


# --- digits: standardization with training statistics only ----------------------------------------


def test_training_features_are_standardized(digits: Split) -> None:
    mean = digits.x_train.double().mean(0)
    std = digits.x_train.double().std(0, unbiased=False)
    assert mean.abs().max() < 1e-5
    constant = std < 1e-6  # pixels that are 0 in every training image
    assert constant.any(), "digits has blank border pixels; they must stay finite (std 0 -> 1)"
    assert torch.all(digits.x_train[:, constant] == 0)
    assert torch.allclose(std[~constant], torch.ones_like(std[~constant]), atol=1e-5)
    assert torch.isfinite(digits.x_test).all()


def test_test_features_are_not_standardized_with_their_own_statistics(digits: Split) -> None:
    test_mean = digits.x_test.double().mean(0)
    assert test_mean.abs().max() > 0.05, "the test set's mean is ~0: standardized with test statistics?"
    # Exactly: both sets go through the same map (raw - mean_train) / std_train.
    raw, labels = sklearn.datasets.load_digits(return_X_y=True)
    raw_train, raw_test = train_test_split(raw, test_size=540, stratify=labels, random_state=0)
    mean, std = raw_train.mean(0), raw_train.std(0)
    std[std == 0] = 1.0
    assert np.allclose(digits.x_train.numpy(), (raw_train - mean) / std, atol=1e-5)
    assert np.allclose(digits.x_test.numpy(), (raw_test - mean) / std, atol=1e-5)


def test_standardize_uses_only_training_statistics() -> None:
    train = np.array([[0.0, 5.0], [2.0, 5.0], [4.0, 5.0]])
    test = np.array([[10.0, 7.0], [12.0, 5.0]])
    train_z, test_z, mean, std = standardize(train, test)
    assert mean.tolist() == [2.0, 5.0]
    assert std[1] == 1.0, "a constant training column must be divided by 1, not 0"
    assert np.allclose(train_z[:, 0], [-1.2247449, 0.0, 1.2247449])
    assert np.allclose(test_z, [[8 / np.sqrt(8 / 3), 2.0], [10 / np.sqrt(8 / 3), 0.0]])
    assert abs(test_z[:, 0].mean()) > 1, "the test set keeps its offset"


@FAST
@given(
    train=hnp.arrays(np.float64, (6, 3), elements=st.floats(-100, 100)),
    test=hnp.arrays(np.float64, (4, 3), elements=st.floats(-100, 100)),
    other=hnp.arrays(np.float64, (4, 3), elements=st.floats(-100, 100)),
)
def test_standardized_training_set_does_not_depend_on_the_test_set(
    train: np.ndarray, test: np.ndarray, other: np.ndarray
) -> None:
    a_train, _, a_mean, a_std = standardize(train, test)
    b_train, b_test, b_mean, b_std = standardize(train, other)
    assert np.array_equal(a_train, b_train)
    assert np.array_equal(a_mean, b_mean) and np.array_equal(a_std, b_std)
    assert np.allclose(b_test * b_std + b_mean, other)


# --- digits: subsampling ----------------------------------------------------------------------------


def test_n_train_subsamples_the_training_set_stratified(digits: Split) -> None:
    small = load_digits(n_train=200)
    assert small.n_train == 200
    counts = torch.bincount(small.y_train, minlength=10)
    assert counts.min() >= 19 and counts.max() <= 21, counts
    assert torch.equal(small.y_test, digits.y_test), "subsampling must not change the test set"
    # statistics of the subsample actually used for training
    assert small.x_train.double().mean(0).abs().max() < 1e-5


def test_n_train_subsample_is_fixed_by_seed() -> None:
    assert torch.equal(load_digits(n_train=50).x_train, load_digits(n_train=50).x_train)
    assert not torch.equal(load_digits(n_train=50).y_train, load_digits(n_train=50, seed=1).y_train)


def test_n_train_equal_to_the_training_set_keeps_it(digits: Split) -> None:
    assert torch.equal(load_digits(n_train=1257).x_train, digits.x_train)


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"test_fraction": 0.0}, ValueError, "test_fraction=0.0"),
        ({"test_fraction": 1.0}, ValueError, "test_fraction=1.0"),
        ({"test_fraction": 1.5}, ValueError, "test_fraction=1.5"),
        ({"test_fraction": 0.001}, ValueError, "test_fraction=0.001"),
        ({"test_fraction": "0.3"}, TypeError, "test_fraction='0.3'"),
        ({"test_fraction": float("nan")}, ValueError, "test_fraction=nan"),
        ({"n_train": 5}, ValueError, "n_train=5"),
        ({"n_train": 5000}, ValueError, "n_train=5000"),
        ({"n_train": 0}, ValueError, "n_train=0"),
        ({"n_train": 100.0}, TypeError, "n_train=100.0"),
        ({"seed": -1}, ValueError, "seed=-1"),
    ],
)
def test_load_digits_refuses_bad_arguments(kwargs: dict, error: type, fragment: str) -> None:
    with pytest.raises(error) as info:
        load_digits(**kwargs)
    assert fragment in str(info.value)


# --- toy regression -----------------------------------------------------------------------------------


def test_toy_regression_shapes_grid_and_dtype() -> None:
    split = toy_regression()
    assert split.x_train.shape == split.y_train.shape == (10, 1)
    assert split.x_test.shape == split.y_test.shape == (200, 1)
    assert all(t.dtype == torch.float32 for t in tensors(split))
    assert torch.allclose(split.x_train[:, 0], torch.linspace(-1, 1, 10))
    assert torch.allclose(split.x_test[:, 0], torch.linspace(-1, 1, 200))
    assert split.name == "toy regression"


def test_toy_regression_is_fixed_by_seed_and_leaves_the_global_rng_alone() -> None:
    state = torch.get_rng_state()
    a, b, c = toy_regression(seed=3), toy_regression(seed=3), toy_regression(seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(s, t) for s, t in zip(tensors(a), tensors(b), strict=True))
    assert not torch.equal(a.y_train, c.y_train)
    assert torch.equal(a.x_train, c.x_train)


def test_toy_regression_noise_and_slope() -> None:
    split = toy_regression(n_train=20_000, n_test=20_000, seed=1)
    for x, y, noise in ((split.x_train, split.y_train, 0.5), (split.x_test, split.y_test, 0.3)):
        residual = y - 1.5 * x
        assert abs(residual.mean().item()) < 0.02
        assert abs(residual.std().item() - noise) < 0.02
        slope = ((x * y).sum() / (x * x).sum()).item()
        assert abs(slope - 1.5) < 0.03


def test_toy_regression_without_noise_is_the_line() -> None:
    split = toy_regression(slope=-2.0, train_noise=0.0, test_noise=0.0)
    assert torch.allclose(split.y_train, -2.0 * split.x_train)
    assert torch.allclose(split.y_test, -2.0 * split.x_test)


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"n_train": 0}, ValueError, "n_train=0"),
        ({"n_test": -5}, ValueError, "n_test=-5"),
        ({"n_train": 2.5}, TypeError, "n_train=2.5"),
        ({"train_noise": -0.1}, ValueError, "train_noise=-0.1"),
        ({"test_noise": float("inf")}, ValueError, "test_noise=inf"),
        ({"slope": float("nan")}, ValueError, "slope=nan"),
        ({"slope": "1.5"}, TypeError, "slope='1.5'"),
        ({"seed": 1.0}, TypeError, "seed=1.0"),
    ],
)
def test_toy_regression_refuses_bad_arguments(kwargs: dict, error: type, fragment: str) -> None:
    with pytest.raises(error) as info:
        toy_regression(**kwargs)
    assert fragment in str(info.value)


# --- Split --------------------------------------------------------------------------------------------


def test_split_is_frozen_and_checks_its_tensors() -> None:
    split = toy_regression()
    with pytest.raises(dataclasses.FrozenInstanceError):
        split.name = "other"  # type: ignore[misc]
    with pytest.raises(ValueError, match="as many rows"):
        Split(torch.zeros(3, 2), torch.zeros(4), torch.zeros(2, 2), torch.zeros(2))
    with pytest.raises(ValueError, match="as many features"):
        Split(torch.zeros(3, 2), torch.zeros(3), torch.zeros(2, 5), torch.zeros(2))
    with pytest.raises(ValueError, match=r"shape \(n, n_features\)"):
        Split(torch.zeros(3), torch.zeros(3), torch.zeros(2, 1), torch.zeros(2))
    with pytest.raises(TypeError, match="x_train must be a torch.Tensor"):
        Split(np.zeros((3, 2)), torch.zeros(3), torch.zeros(2, 2), torch.zeros(2))  # type: ignore[arg-type]
