"""The data sets of the course, all available offline.

- :func:`load_digits`: scikit-learn's 8x8 handwritten digits (it ships with scikit-learn, so nothing is
  downloaded), split into training and test sets and standardized with training statistics only.
- :func:`toy_regression`: a line plus Gaussian noise on ten points, small enough that a wide network
  fits the noise.

Both return a :class:`Split`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import sklearn.datasets
import torch
from sklearn.model_selection import train_test_split

from dropoutlib._validation import check_positive_int
from dropoutlib.seeding import check_seed

__all__ = ["Split", "load_digits", "standardize", "toy_regression"]


@dataclass(frozen=True, eq=False)
class Split:
    """A training set and a test set, as tensors.

    Attributes:
        x_train: inputs, shape ``(n_train, n_features)``, float32.
        y_train: targets: class indices, shape ``(n_train,)``, int64 (classification), or values,
            shape ``(n_train, 1)``, float32 (regression).
        x_test, y_test: the same for the test set.
        name: a short human-readable name, e.g. ``"digits"``.

    Example:
        >>> data = toy_regression()
        >>> data.n_train, data.n_test, data.n_features
        (10, 200, 1)
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    name: str = ""

    def __post_init__(self) -> None:
        for field in ("x_train", "y_train", "x_test", "y_test"):
            value = getattr(self, field)
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"{field} must be a torch.Tensor, got {type(value).__name__}")
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if x.ndim != 2:
                raise ValueError(f"x_{part} must have shape (n, n_features), got {tuple(x.shape)}")
            if y.shape[:1] != x.shape[:1]:
                raise ValueError(
                    f"x_{part} and y_{part} must have as many rows, "
                    f"got {x.shape[0]} and {y.shape[0] if y.ndim else 'a scalar'}"
                )
        if self.x_train.shape[1] != self.x_test.shape[1]:
            raise ValueError(
                "x_train and x_test must have as many features, "
                f"got {self.x_train.shape[1]} and {self.x_test.shape[1]}"
            )

    @property
    def n_train(self) -> int:
        """Number of training examples."""
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test examples."""
        return int(self.x_test.shape[0])

    @property
    def n_features(self) -> int:
        """Number of input features (columns of ``x_train``)."""
        return int(self.x_train.shape[1])


def standardize(
    train: np.ndarray, test: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""Standardize both sets column by column with the TRAINING set's statistics.

    .. math::

        \mu_j = \frac{1}{n}\sum_i x^{\text{train}}_{ij}, \qquad
        \sigma_j = \sqrt{\frac{1}{n}\sum_i (x^{\text{train}}_{ij} - \mu_j)^2}, \qquad
        z_{ij} = (x_{ij} - \mu_j) / \sigma_j

    for every row of either set, with ``sigma_j = 1`` where a column is constant in the training
    set. The test set is never looked at when computing ``mu`` and ``sigma``: using its own
    statistics would leak information about it into the model's inputs.

    Returns:
        ``(train_z, test_z, mean, std)``; ``mean`` and ``std`` have shape ``(n_features,)``.

    Example:
        >>> tr, te, mean, std = standardize(np.array([[0.0], [2.0]]), np.array([[4.0]]))
        >>> tr.ravel().tolist(), te.ravel().tolist(), mean.tolist(), std.tolist()
        ([-1.0, 1.0], [3.0], [1.0], [1.0])
    """
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (train - mean) / std, (test - mean) / std, mean, std


def _check_real(value: Any, name: str, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {name}={value!r} ({type(value).__name__})")
    as_float = float(value)
    if not math.isfinite(as_float):
        raise ValueError(f"{name} must be finite, got {name}={value!r}")
    if minimum is not None and as_float < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {name}={value!r}")
    return as_float


def load_digits(test_fraction: float = 0.3, seed: int = 0, n_train: int | None = None) -> Split:
    """scikit-learn's handwritten digits: 1797 images of 8x8 pixels, 10 classes, split and standardized.

    The split is stratified (each digit is as frequent in both sets) and fixed by ``seed``. With the
    default ``test_fraction=0.3`` the training set has 1257 images and the test set 540. If
    ``n_train`` is given, a stratified, seeded subsample of that many training images is kept (for
    data-size sweeps); the test set is unchanged.

    The 64 pixel intensities (0 to 16) are standardized with the mean and standard deviation of the
    training set actually used (see :func:`standardize`), so the training features have mean 0 and
    standard deviation 1 (or are all 0 for pixels that are constant in training), while the test
    features only approximately so.

    Returns:
        A :class:`Split` with ``x`` of shape ``(n, 64)``, float32, and ``y`` of shape ``(n,)``,
        int64 class indices 0 to 9. ``name="digits"``.

    Example:
        >>> data = load_digits()
        >>> data.n_train, data.n_test, data.n_features
        (1257, 540, 64)
        >>> data.x_train.dtype, data.y_train.dtype
        (torch.float32, torch.int64)
        >>> load_digits(n_train=100).n_train
        100
    """
    test_fraction = _check_real(test_fraction, "test_fraction")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got test_fraction={test_fraction!r}")
    seed = check_seed(seed)
    x, y = sklearn.datasets.load_digits(return_X_y=True)
    n_classes = len(np.unique(y))
    n_test = math.ceil(test_fraction * len(y))
    if not n_classes <= n_test <= len(y) - n_classes:
        raise ValueError(
            f"test_fraction={test_fraction!r} leaves {n_test} test and {len(y) - n_test} training "
            f"images; each set needs at least one image per class ({n_classes})"
        )
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=n_test, stratify=y, random_state=seed
    )
    if n_train is not None:
        n_train = check_positive_int(n_train, "n_train")
        if not n_classes <= n_train <= len(y_train):
            raise ValueError(
                f"n_train must be between {n_classes} (one image per class) and {len(y_train)} "
                f"(the whole training set), got n_train={n_train!r}"
            )
        if n_train < len(y_train):
            x_train, _, y_train, _ = train_test_split(
                x_train, y_train, train_size=n_train, stratify=y_train, random_state=seed
            )
    x_train, x_test, _, _ = standardize(x_train, x_test)
    return Split(
        x_train=torch.from_numpy(x_train).to(torch.float32),
        y_train=torch.from_numpy(y_train).to(torch.int64),
        x_test=torch.from_numpy(x_test).to(torch.float32),
        y_test=torch.from_numpy(y_test).to(torch.int64),
        name="digits",
    )


def toy_regression(
    n_train: int = 10,
    n_test: int = 200,
    slope: float = 1.5,
    train_noise: float = 0.5,
    test_noise: float = 0.3,
    seed: int = 0,
) -> Split:
    r"""A noisy line: the 10-point regression on which a wide network overfits without dropout.

    .. math::

        y = a x + \varepsilon, \qquad \varepsilon \sim \mathcal N(0, s^2)

    with slope ``a``. Training inputs: ``n_train`` evenly spaced points on ``[-1, 1]``, noise
    ``s = train_noise``. Test inputs: ``n_test`` evenly spaced points on the same interval (a denser
    grid, so a fitted curve is judged between the training points too), noise ``s = test_noise``.
    The noise is drawn from a ``torch.Generator`` seeded with ``seed`` (the global RNG is untouched).
    The setting follows a blog post's PyTorch demo (slope 1.5, noise 0.5 / 0.3, ten points), whose
    test inputs were the training inputs again.

    Returns:
        A :class:`Split` with all tensors of shape ``(n, 1)``, float32. ``name="toy regression"``.

    Example:
        >>> data = toy_regression(seed=0)
        >>> tuple(data.x_train.shape), tuple(data.y_test.shape)
        ((10, 1), (200, 1))
        >>> data.x_train[[0, -1], 0].tolist()
        [-1.0, 1.0]
        >>> torch.equal(data.y_train, toy_regression(seed=0).y_train)
        True
    """
    n_train = check_positive_int(n_train, "n_train")
    n_test = check_positive_int(n_test, "n_test")
    slope = _check_real(slope, "slope")
    train_noise = _check_real(train_noise, "train_noise", minimum=0.0)
    test_noise = _check_real(test_noise, "test_noise", minimum=0.0)
    generator = torch.Generator().manual_seed(check_seed(seed))

    def sample(n: int, noise: float) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.linspace(-1.0, 1.0, n).unsqueeze(1)
        return x, slope * x + noise * torch.randn(n, 1, generator=generator)

    x_train, y_train = sample(n_train, train_noise)
    x_test, y_test = sample(n_test, test_noise)
    return Split(x_train, y_train, x_test, y_test, name="toy regression")
