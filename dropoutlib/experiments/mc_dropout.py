r"""Inputs far from the training digits, and the experiments of chapter 12 (Monte Carlo dropout).

The digits of :func:`course.load_digits` are standardized pixel by pixel with the training set's mean
and standard deviation. Shifted and out-of-distribution (OOD) inputs are therefore built in **raw pixel
space** (8 x 8 images, intensities 0 to 16) and standardized afterwards with the same training
statistics, exactly as a new image would be on its way into the model:

- :func:`digit_pixels`: the raw images of the same split as ``load_digits(seed=seed)``, with the
  training statistics and :meth:`DigitPixels.standardize`;
- :func:`rotate_digits`, :func:`shift_digits`, :func:`invert_digits`: transformed test digits;
- :func:`noise_images`: images of pure noise in the digits' value range (uniform on ``[0, 16]``, or
  Gaussian with each pixel's training mean and standard deviation);
- :func:`ood_sets`: the chapter's test set and five OOD sets, standardized.

The experiments (every one returns plain numbers and arrays, so the chapter and the claims tests
call the same code):

- :func:`train_mc_model`: one dropout MLP trained on the digits;
- :func:`auroc`: how well a score separates OOD inputs from test digits (0.5: not at all, 1: perfectly);
- :func:`ood_uncertainty`, :func:`ood_over_seeds`: uncertainty on each set, and its AUROC;
- :func:`transform_sweep`: uncertainty against the rotation angle and the shift;
- :func:`calibration_experiment`, :func:`calibration_versus_p`: evaluation mode against Monte Carlo
  averaging, expected calibration error and reliability bins;
- :func:`passes_experiment`: error and entropy against the number of passes :math:`T`;
- :func:`plot_reliability`: a reliability diagram.

The chapter's claims, one function per section (each returns a list of
:class:`~dropoutlib.course.claims.Claim`, and holds every threshold it uses):
:func:`prediction_claims`, :func:`batchnorm_claims` and :func:`failure_claims`, :func:`ood_claims` and
:func:`sweep_claims`, :func:`calibration_claims`, :func:`passes_claims`; and
:func:`mixed_calibration_claims`, which only the claims tests check, over five seeds.

Uncertainties are in nats; see :mod:`dropoutlib.uncertainty` for their definitions.

Example:
    >>> pixels = digit_pixels(seed=0)
    >>> sets = ood_sets(pixels, seed=0)
    >>> list(sets)
    ['test digits', 'rotated 45°', 'shifted 2 px', 'inverted', 'Gaussian noise', 'uniform noise']
    >>> tuple(sets["inverted"].shape)
    (540, 64)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sklearn.datasets
import torch
from matplotlib.axes import Axes
from scipy import ndimage
from scipy.optimize import minimize_scalar
from scipy.stats import rankdata
from sklearn.model_selection import train_test_split
from torch import nn

from dropoutlib._validation import check_positive_int, check_probability, check_real
from dropoutlib.course.batched import BatchedMLP, fit_members
from dropoutlib.course.claims import Claim, above, below
from dropoutlib.course.data import Split, load_digits, standardize
from dropoutlib.course.models import mlp
from dropoutlib.course.seeding import check_seed, seed_everything
from dropoutlib.course.stats import paired_gain
from dropoutlib.course.train import History, fit
from dropoutlib.uncertainty import (
    CalibrationBins,
    MCPrediction,
    calibration_bins,
    eval_predict,
    expected_calibration_error,
    mc_predict,
)

__all__ = [
    "BaselinesResult",
    "MEMBERS",
    "METHODS",
    "SIZES",
    "VALIDATION",
    "baseline_split",
    "baselines_claims",
    "baselines_experiment",
    "baselines_rows",
    "baselines_summary",
    "low_p_claims",
    "low_p_rows",
    "METHOD_LABELS",
    "data_size_claims",
    "disagreement",
    "fit_temperature",
    "mean_se",
    "member_passes",
    "paired",
    "train_members",
    "attention_dropout_only",
    "hand_rolled_mc",
    "fast_path_trap",
    "fast_path_claims",
    "distinct_passes",
    "FastPathTrap",
    "BN_CALLS",
    "ERROR_GAP",
    "FAILING_CALL",
    "FAR_ANGLES",
    "MAX_PIXEL",
    "OOD_SETS",
    "PASSES_TOLERANCE",
    "CalibrationResult",
    "DigitPixels",
    "OODResult",
    "PassesCurve",
    "SweepResult",
    "above_test_digits",
    "auroc",
    "batchnorm_claims",
    "calibration_claims",
    "calibration_experiment",
    "calibration_versus_p",
    "digit_pixels",
    "entropy_misses",
    "failure_claims",
    "invert_digits",
    "mixed_calibration_claims",
    "noise_images",
    "ood_claims",
    "ood_over_seeds",
    "ood_sets",
    "ood_uncertainty",
    "passes_claims",
    "passes_enough",
    "passes_experiment",
    "plot_reliability",
    "prediction_claims",
    "rotate_digits",
    "shift_digits",
    "sweep_claims",
    "sweep_summary",
    "train_mc_model",
    "transform_sweep",
]

#: The largest pixel intensity of scikit-learn's digits (the smallest is 0).
MAX_PIXEL = 16.0
#: The names of the sets :func:`ood_sets` returns, in order; the first one is in distribution.
OOD_SETS = ("test digits", "rotated 45°", "shifted 2 px", "inverted", "Gaussian noise", "uniform noise")
_SIDE = 8


# --- raw pixels and the transformations ------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DigitPixels:
    """The raw digits of one split (intensities 0 to 16) and the training statistics.

    Attributes:
        train, test: images as rows of 64 pixels, shape ``(n, 64)``, float64, values in ``[0, 16]``.
        y_train, y_test: class indices, int64.
        mean, std: each pixel's training mean and standard deviation (``std = 1`` where a pixel is
            constant in training), shape ``(64,)``,
            as :func:`~dropoutlib.course.data.standardize` computes them.

    Example:
        >>> pixels = digit_pixels(seed=0)
        >>> pixels.train.shape, pixels.test.shape, float(pixels.test.max())
        ((1257, 64), (540, 64), 16.0)
    """

    train: np.ndarray
    test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    def standardize(self, images: np.ndarray) -> torch.Tensor:
        r"""Raw images ``(n, 64)`` to the model's inputs, :math:`z_{ij} = (x_{ij} - \mu_j) / \sigma_j`.

        Example:
            >>> pixels = digit_pixels(seed=0)
            >>> torch.allclose(pixels.standardize(pixels.test), load_digits(seed=0).x_test, atol=1e-5)
            True
        """
        images = _check_images(images)
        return torch.from_numpy((images - self.mean) / self.std).to(torch.float32)


def digit_pixels(seed: int = 0, test_fraction: float = 0.3) -> DigitPixels:
    """The raw images of the split that ``load_digits(test_fraction, seed)`` standardizes.

    Same stratified split (scikit-learn's ``train_test_split`` with ``random_state=seed``), same
    training statistics, so that ``pixels.standardize(pixels.test)`` equals ``load_digits(...).x_test``
    (to float32 rounding).

    Example:
        >>> pixels = digit_pixels(seed=1)
        >>> bool((pixels.y_test == load_digits(seed=1).y_test.numpy()).all())
        True
    """
    seed = check_seed(seed)
    reference = load_digits(test_fraction=test_fraction, seed=seed)  # validates test_fraction
    x, y = sklearn.datasets.load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=reference.n_test, stratify=y, random_state=seed
    )
    _, _, mean, std = standardize(x_train, x_test)
    return DigitPixels(x_train, x_test, y_train.astype(np.int64), y_test.astype(np.int64), mean, std)


def _check_images(images: Any) -> np.ndarray:
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    if not isinstance(images, np.ndarray):
        raise TypeError(f"images must be a NumPy array of shape (n, 64), got {type(images).__name__}")
    if images.ndim != 2 or images.shape[1] != _SIDE * _SIDE:
        raise ValueError(f"images must have shape (n, 64) (8 x 8 pixels per row), got {images.shape}")
    return images.astype(np.float64)


def rotate_digits(images: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate each 8 x 8 image by ``degrees`` counter-clockwise about its centre.

    Bilinear interpolation (``scipy.ndimage.rotate``, ``order=1``), the frame kept at 8 x 8, pixels
    that come from outside the frame set to 0 (the background), values clipped to ``[0, 16]``.

    Example:
        >>> image = np.zeros((1, 64)); image[0, 3] = 16.0  # one pixel in the top row
        >>> rotated = rotate_digits(image, 90).reshape(8, 8)
        >>> bool(rotated[:, 0].sum() > 0), float(rotated[0].sum())  # now in the left column
        (True, 0.0)
    """
    images = _check_images(images)
    degrees = check_real(degrees, "degrees")
    squares = images.reshape(-1, _SIDE, _SIDE)
    turned = ndimage.rotate(squares, degrees, axes=(2, 1), reshape=False, order=1, mode="constant", cval=0.0)
    return np.clip(turned, 0.0, MAX_PIXEL).reshape(-1, _SIDE * _SIDE)


def shift_digits(images: np.ndarray, right: int = 0, down: int = 0) -> np.ndarray:
    """Move each image ``right`` pixels to the right and ``down`` pixels down (negative: left, up).

    Pixels pushed out of the frame are lost; the ones that come in are background (0).

    Example:
        >>> image = np.zeros((1, 64)); image[0, 8 * 3 + 4] = 16.0  # row 3, column 4
        >>> moved = shift_digits(image, right=2, down=-1).reshape(8, 8)
        >>> [(int(r), int(c)) for r, c in zip(*np.nonzero(moved))]  # now row 2, column 6
        [(2, 6)]
    """
    images = _check_images(images)
    for name, value in (("right", right), ("down", down)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"{name} must be an int (pixels), got {name}={value!r}")
        if abs(value) >= _SIDE:
            raise ValueError(f"{name} must be between -7 and 7 pixels, got {name}={value!r}")
    squares = images.reshape(-1, _SIDE, _SIDE)
    out = np.zeros_like(squares)
    rows_to = slice(max(down, 0), _SIDE + min(down, 0))
    rows_from = slice(max(-down, 0), _SIDE + min(-down, 0))
    cols_to = slice(max(right, 0), _SIDE + min(right, 0))
    cols_from = slice(max(-right, 0), _SIDE + min(-right, 0))
    out[:, rows_to, cols_to] = squares[:, rows_from, cols_from]
    return out.reshape(-1, _SIDE * _SIDE)


def invert_digits(images: np.ndarray) -> np.ndarray:
    """Photographic negatives, ``16 - x``: light digits on a dark background become the opposite.

    Example:
        >>> invert_digits(np.zeros((1, 64)))[0, :3].tolist()
        [16.0, 16.0, 16.0]
    """
    return MAX_PIXEL - _check_images(images)


def noise_images(n: int, kind: str, pixels: DigitPixels, seed: int = 0) -> np.ndarray:
    r"""``n`` images of pure noise in the digits' value range.

    - ``kind="uniform"``: every pixel uniform on ``[0, 16]``, independently. After standardization a
      border pixel, almost always 0 in training (tiny :math:`\sigma_j`), becomes huge: these images
      are far from the training data in the model's input space.
    - ``kind="gaussian"``: pixel :math:`j` drawn from :math:`\mathcal N(\mu_j, \sigma_j^2)` with the
      training mean and standard deviation, clipped to ``[0, 16]``: every pixel has about the
      digits' marginal statistics, but the pixels are independent, so there is no stroke.

    Drawn from ``numpy.random.default_rng(seed)``.

    Example:
        >>> pixels = digit_pixels(seed=0)
        >>> noise = noise_images(3, "uniform", pixels, seed=0)
        >>> noise.shape, bool(noise.min() >= 0 and noise.max() <= 16)
        ((3, 64), True)
    """
    n = check_positive_int(n, "n")
    if not isinstance(pixels, DigitPixels):
        raise TypeError(f"pixels must be a DigitPixels (from digit_pixels), got {type(pixels).__name__}")
    rng = np.random.default_rng(check_seed(seed))
    if kind == "uniform":
        return rng.uniform(0.0, MAX_PIXEL, size=(n, _SIDE * _SIDE))
    if kind == "gaussian":
        spread = pixels.train.std(axis=0)
        return np.clip(rng.normal(pixels.mean, spread, size=(n, _SIDE * _SIDE)), 0.0, MAX_PIXEL)
    raise ValueError(f"kind must be 'uniform' or 'gaussian', got kind={kind!r}")


def ood_sets(
    pixels: DigitPixels, seed: int = 0, *, angle: float = 45.0, shift: int = 2
) -> dict[str, torch.Tensor]:
    """The test digits and five sets of inputs unlike the training digits, all standardized.

    In the order of :data:`OOD_SETS`: the test digits; the test digits rotated by ``angle`` degrees;
    shifted ``shift`` pixels right and down; inverted (:func:`invert_digits`); Gaussian and uniform
    noise images (:func:`noise_images`, as many as test digits, seeded with ``seed``). Values are
    tensors of shape ``(n_test, 64)``, float32. (The keys name the defaults; other ``angle`` or
    ``shift`` values keep the keys.)

    Example:
        >>> sets = ood_sets(digit_pixels(seed=0), seed=0)
        >>> [tuple(x.shape) for x in sets.values()][:2]
        [(540, 64), (540, 64)]
    """
    if not isinstance(pixels, DigitPixels):
        raise TypeError(f"pixels must be a DigitPixels (from digit_pixels), got {type(pixels).__name__}")
    n = len(pixels.test)
    raw = [
        pixels.test,
        rotate_digits(pixels.test, angle),
        shift_digits(pixels.test, right=shift, down=shift),
        invert_digits(pixels.test),
        noise_images(n, "gaussian", pixels, seed=seed),
        noise_images(n, "uniform", pixels, seed=seed + 1),
    ]
    return {name: pixels.standardize(images) for name, images in zip(OOD_SETS, raw, strict=True)}


# --- the model -------------------------------------------------------------------------------------


def train_mc_model(
    seed: int = 0,
    p: float = 0.5,
    *,
    hidden: Sequence[int] = (64, 64),
    epochs: int = 60,
    lr: float = 1e-2,
    data: Split | None = None,
) -> tuple[nn.Sequential, History]:
    """Train ``mlp(64, hidden, 10, p)`` on the digits: full-batch Adam, ``epochs`` steps at ``lr``.

    ``seed`` fixes the split (``load_digits(seed=seed)`` unless ``data`` is given), the initial
    weights and the training masks. Returns the model (in evaluation mode) and its history (recorded
    after the last epoch only).

    Example:
        >>> model, history = train_mc_model(0, epochs=2)
        >>> model.training, len(history.epoch)
        (False, 1)
    """
    seed = check_seed(seed)
    p = check_probability(p, "p")
    epochs = check_positive_int(epochs, "epochs")
    data = load_digits(seed=seed) if data is None else data
    seed_everything(seed)
    model = mlp(data.n_features, list(hidden), 10, p=p)
    history = fit(model, data, epochs=epochs, lr=lr, seed=seed, progress=False, eval_every=epochs)
    return model, history


# --- OOD detection ---------------------------------------------------------------------------------


def auroc(in_scores: Any, out_scores: Any) -> float:
    r"""Area under the ROC curve of a score that should be larger on ``out_scores``.

    It equals the probability that a random OOD input scores higher than a random in-distribution
    one, ties counting one half (the Mann-Whitney statistic):

    .. math::

        \mathrm{AUROC} = \frac{1}{n_{\text{in}} n_{\text{out}}} \sum_{i, j}
        \Big(\mathbb 1[s^{\text{out}}_j > s^{\text{in}}_i]
        + \tfrac12 \mathbb 1[s^{\text{out}}_j = s^{\text{in}}_i]\Big).

    0.5 means the score does not separate the two sets; 1 means every OOD input scores higher.

    Example:
        >>> auroc([0.1, 0.2, 0.3], [0.25, 0.4])
        0.8333333333333334
        >>> auroc([1.0, 1.0], [1.0])
        0.5
    """
    a = torch.as_tensor(in_scores, dtype=torch.float64).reshape(-1).numpy()
    b = torch.as_tensor(out_scores, dtype=torch.float64).reshape(-1).numpy()
    if a.size == 0 or b.size == 0:
        raise ValueError(f"both sets of scores must be non-empty, got {a.size} and {b.size}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("scores must be finite (no NaN or infinity)")
    ranks = rankdata(np.concatenate([a, b]))
    rank_sum = ranks[a.size :].sum()
    return float((rank_sum - b.size * (b.size + 1) / 2) / (a.size * b.size))


@dataclass(frozen=True)
class OODResult:
    """Mean uncertainties (nats) on one set of inputs, and how well each separates it from test digits.

    Attributes:
        name: the set's name.
        predictive_entropy, expected_entropy, mutual_information: means over the set.
        auroc_entropy, auroc_mi: :func:`auroc` of the predictive entropy and of the mutual
            information, test digits against this set (0.5 for the test digits themselves).
        confidence: mean of the largest predicted probability.

    Example:
        >>> r = OODResult("x", 1.0, 0.4, 0.6, 0.9, 0.95, 0.5)
        >>> round(r.predictive_entropy - r.expected_entropy, 4) == r.mutual_information
        True
    """

    name: str
    predictive_entropy: float
    expected_entropy: float
    mutual_information: float
    auroc_entropy: float
    auroc_mi: float
    confidence: float


def ood_uncertainty(
    model: nn.Module, sets: dict[str, torch.Tensor], samples: int = 50, seed: int = 0
) -> tuple[dict[str, OODResult], dict[str, MCPrediction]]:
    """Monte Carlo dropout on every set: mean uncertainties and AUROCs against the first set.

    The first set of ``sets`` is the in-distribution reference (the test digits). Each set gets
    ``samples`` passes, with masks seeded by ``seed`` plus the set's position.

    Returns ``(results, predictions)``: an :class:`OODResult` and the :class:`MCPrediction` per set.

    Example:
        >>> model, _ = train_mc_model(0, epochs=2)
        >>> sets = ood_sets(digit_pixels(seed=0), seed=0)
        >>> results, _ = ood_uncertainty(model, sets, samples=4)
        >>> results["test digits"].auroc_entropy
        0.5
    """
    if not isinstance(sets, dict) or not sets:
        raise TypeError("sets must be a non-empty dict of name -> inputs (the first one in distribution)")
    samples = check_positive_int(samples, "samples")
    seed = check_seed(seed)
    predictions = {
        name: mc_predict(model, x, samples=samples, seed=seed + k) for k, (name, x) in enumerate(sets.items())
    }
    reference = next(iter(predictions.values()))
    results = {}
    for name, pred in predictions.items():
        results[name] = OODResult(
            name=name,
            predictive_entropy=float(pred.predictive_entropy.mean()),
            expected_entropy=float(pred.expected_entropy.mean()),
            mutual_information=float(pred.mutual_information.mean()),
            auroc_entropy=auroc(reference.predictive_entropy, pred.predictive_entropy),
            auroc_mi=auroc(reference.mutual_information, pred.mutual_information),
            confidence=float(pred.mean.max(dim=-1).values.mean()),
        )
    return results, predictions


def ood_over_seeds(
    seeds: Sequence[int], p: float = 0.5, samples: int = 50, **train: Any
) -> list[dict[str, OODResult]]:
    """:func:`ood_uncertainty` for a fresh split, network and noise per seed (``train_mc_model(seed, p)``).

    Example:
        >>> runs = ood_over_seeds([0], samples=2, epochs=1)
        >>> list(runs[0]) == list(OOD_SETS)
        True
    """
    runs = []
    for seed in seeds:
        seed = check_seed(seed)
        model, _ = train_mc_model(seed, p, **train)
        results, _ = ood_uncertainty(model, ood_sets(digit_pixels(seed), seed), samples, seed)
        runs.append(results)
    return runs


@dataclass(frozen=True)
class SweepResult:
    """Mean uncertainty of the test digits against the size of a transformation.

    Attributes:
        amounts: the rotation angles (degrees) or shifts (pixels), shape ``(m,)``.
        predictive_entropy, mutual_information, error: mean over the test digits at each amount
            (``error``: the fraction misclassified, the transformed digit keeping its label).

    Example:
        >>> SweepResult(np.array([0]), np.array([0.3]), np.array([0.1]), np.array([0.02])).amounts.tolist()
        [0]
    """

    amounts: np.ndarray
    predictive_entropy: np.ndarray
    mutual_information: np.ndarray
    error: np.ndarray


def transform_sweep(
    model: nn.Module,
    pixels: DigitPixels,
    kind: str,
    amounts: Sequence[float],
    samples: int = 50,
    seed: int = 0,
) -> SweepResult:
    """Monte Carlo uncertainty of the test digits rotated (``kind="rotate"``, degrees) or shifted.

    ``kind="shift"`` moves each digit ``a`` pixels right and ``a`` pixels down for each amount ``a``
    (an int, possibly negative). The masks are seeded with ``seed`` at every amount.

    Example:
        >>> model, _ = train_mc_model(0, epochs=2)
        >>> sweep = transform_sweep(model, digit_pixels(0), "rotate", [0, 90], samples=3)
        >>> sweep.predictive_entropy.shape
        (2,)
    """
    if kind not in ("rotate", "shift"):
        raise ValueError(f"kind must be 'rotate' or 'shift', got kind={kind!r}")
    labels = torch.from_numpy(pixels.y_test)
    entropy, information, error = [], [], []
    for amount in amounts:
        raw = (
            rotate_digits(pixels.test, amount)
            if kind == "rotate"
            else shift_digits(pixels.test, amount, amount)
        )
        pred = mc_predict(model, pixels.standardize(raw), samples=samples, seed=seed)
        entropy.append(float(pred.predictive_entropy.mean()))
        information.append(float(pred.mutual_information.mean()))
        error.append(float((pred.predicted != labels).double().mean()))
    return SweepResult(np.asarray(amounts), np.asarray(entropy), np.asarray(information), np.asarray(error))


# --- calibration -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationResult:
    """Calibration of one network's test predictions, in evaluation mode and averaged over passes.

    Attributes:
        eval_ece, mc_ece: expected calibration error (``bins`` equal-width bins).
        eval_error, mc_error: test error rates.
        eval_confidence, mc_confidence: mean largest probability (compare with ``1 - error``).
        eval_bins, mc_bins: the reliability bins (:class:`~dropoutlib.uncertainty.CalibrationBins`).

    Example:
        >>> model, _ = train_mc_model(0, epochs=2)
        >>> r = calibration_experiment(model, load_digits(seed=0), samples=3)
        >>> 0.0 <= r.eval_ece <= 1.0 and 0.0 <= r.mc_ece <= 1.0
        True
    """

    eval_ece: float
    mc_ece: float
    eval_error: float
    mc_error: float
    eval_confidence: float
    mc_confidence: float
    eval_bins: CalibrationBins
    mc_bins: CalibrationBins


def calibration_experiment(
    model: nn.Module, data: Split, samples: int = 50, seed: int = 0, bins: int = 10
) -> CalibrationResult:
    """Compare the test set's calibration in evaluation mode and with ``samples`` Monte Carlo passes."""
    x, y = data.x_test, data.y_test
    eval_probs = eval_predict(model, x)
    mc_probs = mc_predict(model, x, samples=samples, seed=seed).mean
    return CalibrationResult(
        eval_ece=expected_calibration_error(eval_probs, y, bins),
        mc_ece=expected_calibration_error(mc_probs, y, bins),
        eval_error=float((eval_probs.argmax(-1) != y).double().mean()),
        mc_error=float((mc_probs.argmax(-1) != y).double().mean()),
        eval_confidence=float(eval_probs.max(-1).values.mean()),
        mc_confidence=float(mc_probs.max(-1).values.mean()),
        eval_bins=calibration_bins(eval_probs, y, bins),
        mc_bins=calibration_bins(mc_probs, y, bins),
    )


def calibration_versus_p(
    ps: Sequence[float], seed: int = 0, samples: int = 50, **train: Any
) -> dict[float, CalibrationResult]:
    """:func:`calibration_experiment` for a network trained with each drop probability in ``ps``.

    Example:
        >>> results = calibration_versus_p([0.1], samples=2, epochs=1)
        >>> list(results)
        [0.1]
    """
    data = load_digits(seed=check_seed(seed))
    out = {}
    for p in ps:
        model, _ = train_mc_model(seed, p, data=data, **train)
        out[float(p)] = calibration_experiment(model, data, samples=samples, seed=seed)
    return out


def plot_reliability(ax: Axes, bins: CalibrationBins, label: str, color: str, marker: str = "o") -> Axes:
    """Draw a reliability diagram: accuracy against confidence per bin, with the diagonal.

    Each non-empty bin is a point at (mean confidence, accuracy) whose area grows with the bin's
    count; points below the diagonal are overconfident, above it underconfident.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> from dropoutlib.uncertainty import calibration_bins
        >>> fig, ax = plt.subplots()
        >>> probs = torch.tensor([[0.9, 0.1], [0.6, 0.4]])
        >>> _ = plot_reliability(ax, calibration_bins(probs, torch.tensor([0, 1])), "model", "C0")
        >>> plt.close(fig)
    """
    keep = bins.count > 0
    conf = bins.confidence[keep].numpy()
    acc = bins.accuracy[keep].numpy()
    sizes = 8 + 300 * bins.count[keep].numpy() / max(int(bins.count.sum()), 1)
    ax.plot([0, 1], [0, 1], color="#7F7F7F", ls=":", lw=1.2)
    ax.plot(conf, acc, color=color, lw=1.2, alpha=0.8)
    ax.scatter(conf, acc, s=sizes, color=color, marker=marker, label=label, zorder=3, alpha=0.85)
    ax.set(
        xlim=(0, 1.02),
        ylim=(0, 1.02),
        xlabel="confidence (mean largest probability in bin)",
        ylabel="accuracy in bin",
    )
    return ax


# --- how many passes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PassesCurve:
    """Test error and mean uncertainties against the number of passes ``T``, over repeated draws.

    Attributes:
        passes: the values of ``T``, shape ``(m,)``.
        error, predictive_entropy, mutual_information: shape ``(repeats, m)``: for each repeated
            Monte Carlo run (its own masks), the statistic using its first ``T`` passes.

    Example:
        >>> c = PassesCurve(np.array([1, 2]), np.zeros((3, 2)), np.ones((3, 2)), np.zeros((3, 2)))
        >>> c.error.shape
        (3, 2)
    """

    passes: np.ndarray
    error: np.ndarray
    predictive_entropy: np.ndarray
    mutual_information: np.ndarray

    @property
    def deviation(self) -> np.ndarray:
        """For each ``T``, the largest distance over the draws from the draw's error at the largest ``T``.

        Example:
            >>> error = np.array([[0.2, 0.1], [0.3, 0.12]])
            >>> PassesCurve(np.array([1, 2]), error, error, error).deviation.round(2).tolist()
            [0.18, 0.0]
        """
        return np.abs(self.error - self.error[:, -1:]).max(axis=0)


def passes_experiment(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    passes: Sequence[int],
    repeats: int = 10,
    seed: int = 0,
) -> PassesCurve:
    """Error and mean uncertainty with the first ``T`` passes, for each ``T`` in ``passes``.

    Each of the ``repeats`` runs draws ``max(passes)`` passes with masks seeded by ``seed + r``;
    the statistics for ``T`` use that run's first ``T`` passes (:meth:`MCPrediction.first`), so a
    run's curve is what one user would see adding passes one by one, and the spread between runs is
    the Monte Carlo noise.

    Example:
        >>> model, _ = train_mc_model(0, epochs=2)
        >>> data = load_digits(seed=0)
        >>> curve = passes_experiment(model, data.x_test, data.y_test, [1, 4], repeats=2)
        >>> curve.error.shape, bool((curve.mutual_information[:, 0] == 0).all())
        ((2, 2), True)
    """
    passes = [check_positive_int(t, "passes") for t in passes]
    repeats = check_positive_int(repeats, "repeats")
    seed = check_seed(seed)
    error = np.zeros((repeats, len(passes)))
    entropy = np.zeros_like(error)
    information = np.zeros_like(error)
    for r in range(repeats):
        full = mc_predict(model, x, samples=max(passes), seed=seed + r)
        for k, t in enumerate(passes):
            pred = full.first(t)
            error[r, k] = float((pred.predicted != y).double().mean())
            entropy[r, k] = float(pred.predictive_entropy.mean())
            information[r, k] = float(pred.mutual_information.mean())
    return PassesCurve(np.asarray(passes), error, entropy, information)


# --- the chapter's claims ----------------------------------------------------------------------------

#: On the test digits, MC dropout and evaluation mode err about as often: their error rates differ by
#: less than this.
ERROR_GAP = 0.015
#: BatchNorm forward calls in the chapter's ``mc_predict(bn_model, x, samples=20)``: 20 passes through
#: the two BatchNorm layers of ``bn_mlp``.
BN_CALLS = 20 * 2
#: The forward call on which the chapter's ``FailsOnThirdCall`` raises.
FAILING_CALL = 3
#: The AUROC of a score that does not separate two sets at all.
CHANCE = 0.5
#: The rotations (degrees, both ends included) at which the chapter finds digits mostly misclassified,
#: with less uncertainty than at :data:`MILD_ANGLE`.
FAR_ANGLES = (60, 150)
MILD_ANGLE = 30
#: Digits rotated by :data:`FAR_ANGLES` count as mostly misclassified above this error rate, digits
#: shifted by one pixel or more above :data:`SHIFTED_ERROR`.
FAR_ERROR = 0.8
SHIFTED_ERROR = 0.5
#: The drop probabilities at which the chapter finds MC averaging helps calibration, and hurts it.
LOW_P, HIGH_P = 0.1, 0.5
#: The number of passes "settles" the error once every draw stays this close to its error at the
#: largest ``T``; the chapter finds it does so by :data:`ENOUGH_PASSES`.
PASSES_TOLERANCE = 0.01
ENOUGH_PASSES = 20


def _in_every(statement: str, cases: dict[str, bool], unit: str = "runs") -> Claim:
    """The claim that every case holds; the evidence counts them and names those that do not."""
    failed = [name for name, holds in cases.items() if not holds]
    evidence = f"{len(cases) - len(failed)} of {len(cases)} {unit}"
    if failed:
        evidence += "; not: " + ", ".join(failed)
    return Claim(statement, not failed, evidence)


def prediction_claims(pred: MCPrediction, eval_error: float, mc_error: float) -> list[Claim]:
    r"""What the chapter's first section checks on the test digits' :math:`T` passes.

    The quantities are recomputed here in float64 from the raw passes, independently of
    :class:`~dropoutlib.uncertainty.MCPrediction` (whose mutual information is a clamped difference,
    so checking it against its own definition would say nothing):

    - the library's predictive and expected entropies agree with the recomputed ones (to ``1e-5``
      nats);
    - Jensen's inequality: the *unclamped* difference :math:`H[\bar p] - \frac1T\sum_t H[p_t]` is
      never below ``-1e-9``, so the clamp only ever removes rounding;
    - the two predictions' error rates (evaluation mode, ``eval_error``; MC, ``mc_error``) differ by
      less than :data:`ERROR_GAP`.

    Example:
        >>> samples = torch.tensor([[[0.9, 0.1]], [[0.5, 0.5]]])
        >>> [c.holds for c in prediction_claims(MCPrediction(samples), 0.02, 0.025)]
        [True, True, True]
    """
    passes = pred.samples.double()
    mean = passes.mean(dim=0)
    predictive = -torch.special.xlogy(mean, mean).sum(dim=-1)
    expected = -torch.special.xlogy(passes, passes).sum(dim=-1).mean(dim=0)
    library = torch.stack([pred.predictive_entropy, pred.expected_entropy]).double()
    gap = float((library - torch.stack([predictive, expected])).abs().max())
    lowest = float((predictive - expected).min())
    return [
        below("the library's entropies match a float64 recomputation from the passes", gap, 1e-5),
        above("Jensen: entropy of the mean minus mean entropy is never negative, before any clamp",
              lowest, -1e-9),
        below("MC and evaluation mode err about as often", abs(mc_error - eval_error), ERROR_GAP),
    ]


def batchnorm_claims(
    batchnorm_modes: Sequence[bool], moved: Sequence[str], restored: bool, changes: dict[str, float]
) -> list[Claim]:
    """``mc_predict`` samples only the dropout layers, leaves the model as it was, ignores the batch.

    Args:
        batchnorm_modes: the ``training`` flag of a BatchNorm layer at each of its forward calls
            during ``mc_predict`` (:data:`BN_CALLS` of them in the chapter).
        moved: the names of the buffers that ``mc_predict`` changed.
        restored: whether every module got its mode back.
        changes: for ``"mc_predict"`` and ``"naive"``, how much other companions in the batch change
            a digit's probabilities (largest absolute difference).

    Example:
        >>> claims = batchnorm_claims([False] * 40, [], True, {"mc_predict": 0.0, "naive": 0.2})
        >>> all(c.holds for c in claims)
        True
    """
    modes = list(batchnorm_modes)
    return [
        Claim(
            "BatchNorm runs in evaluation mode in every pass",
            len(modes) == BN_CALLS and not any(modes),
            f"{sum(modes)} of {len(modes)} calls in training mode, {BN_CALLS} calls expected",
        ),
        Claim(
            "mc_predict leaves the statistics and the modes as they were",
            not moved and restored,
            f"buffers changed: {list(moved)}; every mode restored: {restored}",
        ),
        Claim(
            "with mc_predict a digit's probabilities do not depend on the batch",
            changes["mc_predict"] == 0.0,
            f"change {changes['mc_predict']:.4g} = 0",
        ),
        above("the naive version's probabilities do", changes["naive"], 0.01),
    ]


def failure_claims(calls: int, left_training: Sequence[str]) -> list[Claim]:
    """When a forward pass raises (on call :data:`FAILING_CALL`), every module gets its mode back.

    Example:
        >>> [c.holds for c in failure_claims(3, ["model"])]
        [True, False]
    """
    left = list(left_training)
    return [
        Claim(
            "the exception stopped mc_predict at the failing pass",
            calls == FAILING_CALL,
            f"{calls} forward calls, the failure on call {FAILING_CALL}",
        ),
        Claim(
            "after the exception every module is back in evaluation mode",
            not left,
            f"modules left in training mode: {left}",
        ),
    ]


def above_test_digits(run: dict[str, OODResult], name: str, attribute: str) -> bool:
    """Is the mean ``attribute`` of set ``name`` higher than the test digits' in this run?

    Example:
        >>> run = {"test digits": OODResult("test digits", 0.3, 0.2, 0.1, 0.5, 0.5, 0.9),
        ...        "x": OODResult("x", 0.2, 0.05, 0.15, 0.4, 0.7, 0.95)}
        >>> [above_test_digits(run, "x", a) for a in ("mutual_information", "predictive_entropy")]
        [True, False]
    """
    return getattr(run[name], attribute) > getattr(run["test digits"], attribute)


def entropy_misses(runs: Sequence[dict[str, OODResult]]) -> dict[str, int]:
    """For each OOD set, in how many runs its mean predictive entropy is *not* above the test digits'."""
    return {
        name: sum(not above_test_digits(run, name, "predictive_entropy") for run in runs)
        for name in OOD_SETS[1:]
    }


def ood_claims(runs: Sequence[dict[str, OODResult]]) -> list[Claim]:
    """The chapter's three findings on the OOD sets, each in every run (and one about all runs).

    ``runs`` holds one :func:`ood_uncertainty` result per seed (the chapter's five). In every run:
    the mutual information is higher on every OOD set than on the test digits and separates each of
    them better than chance (AUROC above :data:`CHANCE`); the predictive entropy is higher on the
    shifted digits and the Gaussian noise; on the rotated, shifted and inverted digits and the uniform
    noise the mutual information separates better than the entropy, and single passes are at least
    as confident there as on test digits; on Gaussian noise it is the other way round. Over all the
    runs together, the entropy misses some OOD set at least once.
    """
    runs = list(runs)
    ood = OOD_SETS[1:]
    confident = ("rotated 45°", "shifted 2 px", "inverted", "uniform noise")

    def cases(names: Sequence[str], test: Callable[[dict[str, OODResult], str], bool]) -> dict[str, bool]:
        return {f"{name} in run {k}": bool(test(run, name)) for k, run in enumerate(runs) for name in names}

    misses = sum(entropy_misses(runs).values())
    gauss = ("Gaussian noise",)
    return [
        _in_every(
            "the MI is higher on every OOD set than on the test digits",
            cases(ood, lambda run, name: above_test_digits(run, name, "mutual_information")),
            "sets and runs",
        ),
        _in_every(
            "the MI separates every OOD set better than chance",
            cases(ood, lambda run, name: run[name].auroc_mi > CHANCE),
            "sets and runs",
        ),
        _in_every(
            "the entropy is higher on the shifted digits and the Gaussian noise",
            cases(
                ("shifted 2 px",) + gauss,
                lambda run, name: above_test_digits(run, name, "predictive_entropy"),
            ),
            "sets and runs",
        ),
        Claim(
            "in some run the entropy misses an OOD set",
            misses >= 1,
            f"{misses} misses in {len(runs) * len(ood)} sets and runs",
        ),
        _in_every(
            "the MI separates better where single passes are confident",
            cases(confident, lambda run, name: run[name].auroc_mi > run[name].auroc_entropy),
            "sets and runs",
        ),
        _in_every(
            "there single passes are more confident than on test digits",
            cases(confident, lambda run, name: not above_test_digits(run, name, "expected_entropy")),
            "sets and runs",
        ),
        _in_every(
            "on Gaussian noise the entropy separates better",
            cases(gauss, lambda run, name: run[name].auroc_entropy > run[name].auroc_mi),
        ),
        _in_every(
            "on Gaussian noise single passes hedge more than on test digits",
            cases(gauss, lambda run, name: above_test_digits(run, name, "expected_entropy")),
        ),
    ]


def sweep_summary(rotation: SweepResult, shifting: SweepResult) -> dict[str, float]:
    """The numbers the chapter quotes from the two sweeps, under the names it glues them by.

    ``rot_err_far``: the smallest error at the :data:`FAR_ANGLES`; ``rot_h_far``: the largest mean
    entropy there; ``rot_err_30`` and ``rot_h_30``: error and entropy at :data:`MILD_ANGLE`;
    ``shift1_err``: the error of the digits shifted one pixel right and down.

    Example:
        >>> angles, shifts = np.arange(0, 181, 15), np.arange(-3, 4)
        >>> rotation = SweepResult(angles, angles / 180, angles / 360, angles / 100)
        >>> shifting = SweepResult(shifts, shifts**2 / 9, shifts**2 / 9, np.abs(shifts) / 3)
        >>> sweep_summary(rotation, shifting)["rot_err_far"]
        0.6
    """
    angles = np.asarray(rotation.amounts)
    far = (angles >= FAR_ANGLES[0]) & (angles <= FAR_ANGLES[1])
    mild = int(np.flatnonzero(angles == MILD_ANGLE)[0])
    one = int(np.flatnonzero(np.asarray(shifting.amounts) == 1)[0])
    return {
        "rot_err_far": float(rotation.error[far].min()),
        "rot_h_30": float(rotation.predictive_entropy[mild]),
        "rot_err_30": float(rotation.error[mild]),
        "rot_h_far": float(rotation.predictive_entropy[far].max()),
        "shift1_err": float(shifting.error[one]),
    }


def sweep_claims(rotation: SweepResult, shifting: SweepResult) -> list[Claim]:
    """Uncertainty is not a distance: far-rotated digits are misclassified with less uncertainty.

    Digits rotated by :data:`FAR_ANGLES` are misclassified at a rate above :data:`FAR_ERROR`, with a
    lower mean entropy than at :data:`MILD_ANGLE`; every shift of one pixel or more costs more than
    :data:`SHIFTED_ERROR` of the digits, and raises the mutual information above the unshifted one.
    """
    numbers = sweep_summary(rotation, shifting)
    moved = np.asarray(shifting.amounts) != 0
    far = f"{FAR_ANGLES[0]}-{FAR_ANGLES[1]}"
    return [
        above(f"digits rotated by {far} degrees are mostly misclassified", numbers["rot_err_far"], FAR_ERROR),
        below(
            f"there the network is less uncertain than at {MILD_ANGLE} degrees",
            numbers["rot_h_far"],
            numbers["rot_h_30"],
        ),
        above(
            "a shift of one pixel already costs most digits",
            float(shifting.error[moved].min()),
            SHIFTED_ERROR,
        ),
        above(
            "the MI rises at every shift",
            float(shifting.mutual_information[moved].min()),
            float(shifting.mutual_information[~moved].max()),
        ),
    ]


def calibration_claims(calibration: dict[float, CalibrationResult]) -> list[Claim]:
    """MC averaging lowers the confidence; it helps calibration at :data:`LOW_P` and hurts at :data:`HIGH_P`.

    ``calibration`` maps drop probabilities (among them :data:`LOW_P` and :data:`HIGH_P`) to
    :func:`calibration_experiment` results, as :func:`calibration_versus_p` returns them. At
    :data:`LOW_P` evaluation mode is overconfident and MC averaging lowers the ECE; at :data:`HIGH_P`
    it raises the ECE and the MC prediction is underconfident.
    """
    low, high = calibration[LOW_P], calibration[HIGH_P]
    return [
        _in_every(
            "MC averaging lowers the confidence at every p",
            {f"p = {p}": c.mc_confidence < c.eval_confidence for p, c in calibration.items()},
            "drop probabilities",
        ),
        below(f"at p = {LOW_P} MC averaging lowers the ECE", low.mc_ece, low.eval_ece),
        above(f"at p = {HIGH_P} it raises the ECE", high.mc_ece, high.eval_ece),
        below(f"at p = {HIGH_P} the MC prediction is underconfident", high.mc_confidence, 1 - high.mc_error),
        above(f"at p = {LOW_P} evaluation mode is overconfident", low.eval_confidence, 1 - low.eval_error),
    ]


def mixed_calibration_claims(results: Sequence[CalibrationResult]) -> list[Claim]:
    """Over several seeds at one drop probability (the chapter's p = 0.25): MC averaging goes either way.

    The claim that for some seed MC averaging lowers the ECE and for another it raises it.
    """
    lower = sum(c.mc_ece < c.eval_ece for c in results)
    higher = sum(c.mc_ece > c.eval_ece for c in results)
    return [
        Claim(
            "MC averaging lowers the ECE for some seed and raises it for another",
            lower >= 1 and higher >= 1,
            f"lower for {lower}, higher for {higher} of {len(results)} seeds",
        )
    ]


def passes_enough(curve: PassesCurve, tolerance: float = PASSES_TOLERANCE) -> int:
    """The smallest ``T`` from which every draw's error stays within ``tolerance`` of its error at the end.

    The end is the largest ``T`` of the curve; the distances are :attr:`PassesCurve.deviation`.

    Example:
        >>> error = np.array([[0.3, 0.12, 0.1], [0.2, 0.1, 0.105]])
        >>> passes_enough(PassesCurve(np.array([1, 10, 100]), error, error, error), tolerance=0.01)
        100
    """
    deviation = curve.deviation
    return int(next(t for k, t in enumerate(curve.passes) if (deviation[k:] <= tolerance).all()))


def passes_claims(curve: PassesCurve) -> list[Claim]:
    """How many passes: the error settles by :data:`ENOUGH_PASSES`, the entropy keeps growing with ``T``.

    ``curve.passes`` must start at ``T = 1``. The error settles within :data:`PASSES_TOLERANCE` by
    ``T =`` :data:`ENOUGH_PASSES` (:func:`passes_enough`); one pass errs more than twice as often as
    the largest ``T``; the mean entropy grows with every step in ``T``, and the growth is all mutual
    information: the mean expected entropy (an unbiased estimate at every ``T``) moves over the whole
    range of ``T`` by less than a tenth of the entropy's rise. (That the mutual information of one
    pass is 0 holds by definition, and is not checked.)
    """
    if int(curve.passes[0]) != 1:
        raise ValueError(f"curve.passes must start at T = 1, got {curve.passes.tolist()}")
    enough = passes_enough(curve)
    entropy = curve.predictive_entropy.mean(axis=0)
    steps = np.diff(entropy)
    rise = float(entropy[-1] - entropy[0])
    # the expected entropy's mean over the draws at each T (predictive entropy minus MI, unclamped
    # up to rounding: the first check shows the clamp removes nothing larger)
    expected = (curve.predictive_entropy - curve.mutual_information).mean(axis=0)
    error = curve.error.mean(axis=0)
    return [
        Claim(
            f"the error settles within {PASSES_TOLERANCE} by T = {ENOUGH_PASSES}",
            enough <= ENOUGH_PASSES,
            f"T = {enough} <= {ENOUGH_PASSES}",
        ),
        above(
            f"one pass errs more than twice as often as {curve.passes[-1]} passes", error[0], 2 * error[-1]
        ),
        Claim(
            "the mean entropy grows with every step in T",
            bool((steps > 0).all()),
            f"smallest step {steps.min():.4g} > 0",
        ),
        below(
            "the rise is all mutual information: the expected entropy moves by less than a tenth of it",
            float(np.ptp(expected)),
            rise / 10,
        ),
    ]


# ----------------------------------------------------------------------------------------------------
# Transformers: the fused fast path that skips dropout, and a Hugging Face model


def distinct_passes(samples: torch.Tensor) -> int:
    """How many of the passes ``samples[t]`` differ from each other (``torch.equal``: to the last bit).

    Example:
        >>> distinct_passes(torch.tensor([[1.0], [1.0], [2.0]]))
        2
    """
    unique: list[torch.Tensor] = []
    for sample in samples:
        if not any(torch.equal(sample, seen) for seen in unique):
            unique.append(sample)
    return len(unique)


def hand_rolled_mc(model: nn.Module, batch: Any, samples: int, *, grad: bool = False) -> MCPrediction:
    """The MC loop that works on an MLP: evaluation mode, every ``nn.Dropout`` back in training mode,
    ``samples`` passes (under ``torch.no_grad()`` unless ``grad``), softmax; the model ends in evaluation
    mode. ``batch`` is a tensor, or a dict passed as ``model(**batch)``.

    Example:
        >>> model = mlp(4, [16], 3, p=0.5)
        >>> distinct_passes(hand_rolled_mc(model, torch.randn(2, 4), 5).samples)
        5
    """
    samples = check_positive_int(samples, "samples")
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.train()
    try:
        with torch.set_grad_enabled(grad):
            outs = [model(**batch) if isinstance(batch, dict) else model(batch) for _ in range(samples)]
            logits = [getattr(out, "logits", out).detach().float() for out in outs]
    finally:
        model.eval()
    return MCPrediction(torch.stack([torch.softmax(t, dim=-1) for t in logits]))


@dataclass(frozen=True)
class FastPathTrap:
    """Distinct passes (of ``passes``) and the largest mutual information (nats) of three MC recipes on
    one transformer in evaluation mode: the hand-rolled loop under ``no_grad``, the same loop with
    gradients on, and ``mc_predict``; ``restored``: every module's mode after ``mc_predict`` as before."""

    passes: int
    no_grad: int
    with_grad: int
    mc: int
    mi_no_grad: float
    mi_mc: float
    restored: bool


def fast_path_trap(model: nn.Module, batch: Any, passes: int = 8, seed: int = 0) -> FastPathTrap:
    """Run the three recipes of :class:`FastPathTrap` on ``model`` (left in evaluation mode).

    Example:
        >>> from dropoutlib.course import zoo
        >>> trap = fast_path_trap(zoo.char_transformer(dropout=0.3), torch.randint(0, 32, (4, 8)), 4)
        >>> trap.no_grad, trap.with_grad, trap.mc
        (1, 4, 4)
    """
    passes = check_positive_int(passes, "passes")
    seed_everything(check_seed(seed))
    no_grad = hand_rolled_mc(model, batch, passes)
    with_grad = hand_rolled_mc(model, batch, passes, grad=True)
    modes = [m.training for m in model.modules()]
    with torch.no_grad():
        mc = mc_predict(model, batch, passes, seed=seed)
    restored = modes == [m.training for m in model.modules()]
    return FastPathTrap(
        passes, distinct_passes(no_grad.samples), distinct_passes(with_grad.samples),
        distinct_passes(mc.samples), float(no_grad.mutual_information.max()),
        float(mc.mutual_information.max()), restored,
    )


def attention_dropout_only(model: nn.Module) -> nn.Module:
    """Set every ``nn.Dropout`` of a Hugging Face BERT to ``p = 0`` but those of its attention
    (``...attention.self.dropout``, whose ``p`` the attention reads and applies itself); returns it.

    Example:
        >>> from dropoutlib.course import zoo
        >>> model = attention_dropout_only(zoo.bert_classifier(dropout=0.2))
        >>> sorted({m.p for m in model.modules() if isinstance(m, nn.Dropout)})
        [0.0, 0.2]
    """
    for name, module in model.named_modules():
        if isinstance(module, nn.Dropout) and not name.endswith("attention.self.dropout"):
            module.p = 0.0
    return model


def fast_path_claims(trap: FastPathTrap, bert: FastPathTrap, attention: FastPathTrap) -> list[Claim]:
    """The trap on ``nn.TransformerEncoder`` (``trap``), and ``mc_predict`` on BERT with every dropout
    (``bert``) and with its attention dropout only (``attention``).

    Example:
        >>> ok = FastPathTrap(8, 1, 8, 8, 0.0, 0.1, True)
        >>> bert, attention = FastPathTrap(8, 8, 8, 8, 0.1, 0.1, True), ok
        >>> [c.holds for c in fast_path_claims(ok, bert, attention)]
        [True, True, True, True, True, True]
    """
    return [
        Claim(
            "under no_grad the hand-rolled loop's passes are all identical",
            trap.no_grad == 1 and trap.mi_no_grad == 0.0,
            f"{trap.no_grad} distinct of {trap.passes}, largest MI {trap.mi_no_grad:.3g}",
        ),
        Claim(
            "with gradients on, the same loop's passes differ (the fused path needs no_grad)",
            trap.with_grad == trap.passes,
            f"{trap.with_grad} distinct of {trap.passes}",
        ),
        Claim(
            "mc_predict's passes differ and measure disagreement",
            trap.mc == trap.passes and trap.mi_mc > 0,
            f"{trap.mc} distinct of {trap.passes}, largest MI {trap.mi_mc:.3g}",
        ),
        Claim(
            "mc_predict gives every module its mode back",
            trap.restored and bert.restored and attention.restored,
            f"transformer: {trap.restored}, BERT: {bert.restored}, {attention.restored}",
        ),
        Claim(
            "on BERT with a dict batch, mc_predict's passes differ",
            bert.mc == bert.passes and bert.mi_mc > 0,
            f"{bert.mc} distinct of {bert.passes}, largest MI {bert.mi_mc:.3g}",
        ),
        Claim(
            "with only BERT's attention dropout, the hand-rolled loop sees none and mc_predict does",
            attention.no_grad == 1 and attention.mc == attention.passes,
            f"hand-rolled: {attention.no_grad} distinct, mc_predict: {attention.mc} of {attention.passes}",
        ),
    ]


# ----------------------------------------------------------------------------------------------------
# Baselines and data size: deep ensembles, temperature scaling, and the mutual information against n

#: Digits held out of the training set for fitting the temperature (never the test set); the other
#: 1000 training digits are what every network of :func:`baselines_experiment` trains on.
VALIDATION = 257
#: The training-set sizes of the data-size experiment: stratified subsets of those 1000 digits.
SIZES = (125, 250, 500, 1000)
#: Networks per seed: the deep ensemble's size ``M``.
MEMBERS = 5
#: The four predictions the baselines experiment compares, in the order of its tables.
METHODS = ("plain", "MC dropout", "temperature", "ensemble")


def baseline_split(
    seed: int = 0, n_train: int | None = None, validation: int = VALIDATION
) -> tuple[Split, Split]:
    """The digits of ``load_digits(seed=seed)`` with ``validation`` training digits held out.

    Returns ``(data, held_out)``: ``data`` trains on the remaining training digits (or a stratified
    subset of ``n_train`` of them) and tests on the usual 540 test digits; ``held_out`` carries the
    validation digits as its *test* part (its training part is ``data``'s). Both splits are
    stratified and fixed by ``seed``; the standardization is ``load_digits``'s (training statistics
    of all 1257 training digits, no test digit involved).

    Example:
        >>> data, held_out = baseline_split(0)
        >>> data.n_train, data.n_test, held_out.n_test
        (1000, 540, 257)
        >>> baseline_split(0, n_train=125)[0].n_train
        125
    """
    seed = check_seed(seed)
    validation = check_positive_int(validation, "validation")
    full = load_digits(seed=seed)
    x_fit, x_val, y_fit, y_val = train_test_split(
        full.x_train.numpy(), full.y_train.numpy(), test_size=validation, stratify=full.y_train.numpy(),
        random_state=seed,
    )
    if n_train is not None and check_positive_int(n_train, "n_train") < len(y_fit):
        x_fit, _, y_fit, _ = train_test_split(
            x_fit, y_fit, train_size=n_train, stratify=y_fit, random_state=seed
        )
    elif n_train is not None and n_train > len(y_fit):
        raise ValueError(f"n_train must be at most {len(y_fit)}, got n_train={n_train}")
    fit_x, fit_y = torch.from_numpy(x_fit), torch.from_numpy(y_fit)
    data = Split(fit_x, fit_y, full.x_test, full.y_test, name="digits")
    held_out = Split(fit_x, fit_y, torch.from_numpy(x_val), torch.from_numpy(y_val), name="digits validation")
    return data, held_out


def train_members(
    seeds: Sequence[int],
    n_train: int | None = None,
    *,
    p: float = 0.5,
    members: int = MEMBERS,
    epochs: int = 60,
    lr: float = 1e-2,
) -> tuple[BatchedMLP, list[Split], list[Split]]:
    """``members`` networks per seed, the chapter's ``mlp(64, [64, 64], 10, p)`` recipe (full-batch Adam,
    ``epochs`` steps at ``lr``), all trained at once in one :class:`~dropoutlib.course.batched.BatchedMLP`.

    Seed ``s``'s networks share its :func:`baseline_split` (``n_train`` digits) and differ in their
    initial weights and masks (member seeds ``1000 * s + m``). Returns the model (member ``k * members + m``
    is network ``m`` of ``seeds[k]``), and each seed's data and held-out split.

    Example:
        >>> model, data, held = train_members([0], n_train=50, members=2, epochs=2)
        >>> model.n_members, data[0].n_train
        (2, 50)
    """
    seeds = [check_seed(s) for s in seeds]
    members = check_positive_int(members, "members")
    splits = [baseline_split(s, n_train) for s in seeds]
    model = BatchedMLP(64, [64, 64], 10, seeds=[1000 * s + m for s in seeds for m in range(members)], p=p)
    fit_members(model, [data for data, _ in splits for _ in range(members)], epochs=epochs, lr=lr)
    return model, [data for data, _ in splits], [held for _, held in splits]


def member_passes(model: BatchedMLP, x: torch.Tensor, samples: int = 50, seed: int = 0) -> torch.Tensor:
    """Monte Carlo dropout for every member at once: softmax of ``samples`` passes with dropout on.

    Member ``m``'s masks come from a generator seeded with ``seed`` plus its own seed. ``x`` is shared,
    shape ``(n, in)``, or one set per member, ``(M, n, in)``. Returns shape ``(samples, M, n, k)``;
    the model is left in evaluation mode.

    Example:
        >>> model = BatchedMLP(64, [8], 10, seeds=[0, 1], p=0.5)
        >>> member_passes(model, torch.randn(3, 64), samples=4).shape
        torch.Size([4, 2, 3, 10])
    """
    samples = check_positive_int(samples, "samples")
    generators = [torch.Generator().manual_seed(check_seed(seed) + s) for s in model.seeds]
    model.train()
    try:
        with torch.no_grad():
            return torch.stack([torch.softmax(model(x, generators), dim=-1) for _ in range(samples)])
    finally:
        model.eval()


def _entropy64(probs: torch.Tensor) -> torch.Tensor:
    probs = probs.double()
    return -torch.special.xlogy(probs, probs).sum(dim=-1)


def disagreement(probs: torch.Tensor) -> torch.Tensor:
    r"""Mutual information of a set of predictions along dim 0: :math:`H[\bar p] - \overline{H[p]}`, in
    float64, *unclamped* (an ensemble's disagreement, or Monte Carlo passes'), shape ``probs.shape[1:-1]``.

    Example:
        >>> round(float(disagreement(torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]]))[0]), 4)  # log 2
        0.6931
    """
    probs = probs.double()  # average in float64 too, so that agreement gives 0 to rounding
    return _entropy64(probs.mean(dim=0)) - _entropy64(probs).mean(dim=0)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    r"""The temperature :math:`T > 0` that minimizes the NLL of ``softmax(logits / T)`` on ``labels``.

    One scalar, found by a bounded search over :math:`\log T \in [\log 0.05, \log 20]` (Guo et al.,
    2017). Fit it on validation logits, never on the test set.

    Example:
        >>> logits = torch.tensor([[4.0, 0.0], [4.0, 0.0], [0.0, 4.0], [0.0, 4.0]])
        >>> t = fit_temperature(logits, torch.tensor([0, 1, 1, 1]))  # right 3 in 4, too sure
        >>> t > 1.0
        True
    """
    logits, labels = logits.double(), labels.long()

    def nll(log_t: float) -> float:
        return float(nn.functional.cross_entropy(logits / np.exp(log_t), labels))

    found = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded",
                            options={"xatol": 1e-6})
    return float(np.exp(found.x))


def _scores(probs: torch.Tensor, labels: torch.Tensor) -> tuple[float, float, float]:
    """ECE (10 bins), NLL (nats per digit) and error rate of probabilities ``(n, k)``."""
    probs = probs.double()
    true = probs[torch.arange(len(labels)), labels].clamp_min(1e-12)
    return (
        expected_calibration_error(probs.float(), labels),
        float(-true.log().mean()),
        float((probs.argmax(-1) != labels).double().mean()),
    )


@dataclass(frozen=True)
class BaselinesResult:
    """The data-size experiment and the four predictions, per seed.

    Attributes:
        sizes: the training-set sizes, shape ``(s,)``.
        mc_mi, ensemble_mi: shape ``(seeds, s)``: mean over the test digits of the Monte Carlo mutual
            information (averaged over a seed's :data:`MEMBERS` networks) and of the disagreement of
            its ensemble (those networks in evaluation mode).
        ece, nll, error: dicts over :data:`METHODS` of arrays of shape ``(seeds,)``, at the largest
            size: the plain network (evaluation mode), MC dropout, the temperature-scaled plain network
            (averaged over a seed's networks) and the ensemble of a seed's networks.
        temperature: the fitted temperatures, shape ``(seeds, members)``.
        samples: the Monte Carlo passes per network.
    """

    sizes: np.ndarray
    mc_mi: np.ndarray
    ensemble_mi: np.ndarray
    ece: dict[str, np.ndarray]
    nll: dict[str, np.ndarray]
    error: dict[str, np.ndarray]
    temperature: np.ndarray
    samples: int


def baselines_experiment(
    seeds: Sequence[int], sizes: Sequence[int] = SIZES, *, p: float = 0.5, members: int = MEMBERS,
    samples: int = 50, **train: Any,
) -> BaselinesResult:
    """Train ``members`` networks per seed and size (:func:`train_members`), and measure.

    At every size: the mean test mutual information of MC dropout (``samples`` passes per network)
    and of the ensemble. At the largest size, also the four predictions of :data:`METHODS`: ECE, NLL
    and error on the test digits, the temperature fitted on each seed's held-out digits.

    Example:
        >>> r = baselines_experiment([0, 1], sizes=[50, 100], members=2, samples=3, epochs=2)
        >>> r.mc_mi.shape, sorted(r.ece) == sorted(METHODS)
        ((2, 2), True)
    """
    seeds = [check_seed(s) for s in seeds]
    sizes = sorted(check_positive_int(n, "sizes") for n in sizes)
    members = check_positive_int(members, "members")
    mc_mi = np.zeros((len(seeds), len(sizes)))
    ensemble_mi = np.zeros_like(mc_mi)
    scores: dict[str, list[tuple[float, float, float]]] = {m: [] for m in METHODS}
    temperature = np.zeros((len(seeds), members))
    for j, n in enumerate(sizes):
        model, data, held = train_members(seeds, n, p=p, members=members, **train)
        last = j == len(sizes) - 1
        # every network's own test digits, shape (seeds * members, n, 64)
        x_all = torch.stack([d.x_test for d in data for _ in range(members)])
        with torch.no_grad():
            logits_all = model(x_all)
        passes_all = member_passes(model, x_all, samples, seed=seeds[0])
        for k in range(len(seeds)):
            y_test = data[k].y_test
            block = slice(k * members, (k + 1) * members)
            logits, passes = logits_all[block], passes_all[:, block]
            probs = torch.softmax(logits, dim=-1)
            ensemble_mi[k, j] = float(disagreement(probs).mean())
            mc_mi[k, j] = float(disagreement(passes).mean())  # mean over the seed's networks too
            if not last:
                continue
            with torch.no_grad():
                val_logits = model(held[k].x_test)[k * members : (k + 1) * members]
            plain, mc, scaled = [], [], []
            for m in range(members):
                temperature[k, m] = fit_temperature(val_logits[m], held[k].y_test)
                plain.append(_scores(probs[m], y_test))
                mc.append(_scores(passes[:, m].mean(dim=0), y_test))
                scaled.append(_scores(torch.softmax(logits[m].double() / temperature[k, m], -1), y_test))
            for name, rows in (("plain", plain), ("MC dropout", mc), ("temperature", scaled)):
                scores[name].append(tuple(np.mean(rows, axis=0)))
            scores["ensemble"].append(_scores(probs.mean(dim=0), y_test))
    arrays = {name: np.asarray(rows) for name, rows in scores.items()}
    return BaselinesResult(
        sizes=np.asarray(sizes), mc_mi=mc_mi, ensemble_mi=ensemble_mi,
        ece={m: arrays[m][:, 0] for m in METHODS}, nll={m: arrays[m][:, 1] for m in METHODS},
        error={m: arrays[m][:, 2] for m in METHODS}, temperature=temperature, samples=samples,
    )


def mean_se(values: Any) -> tuple[float, float]:
    """Mean and standard error (``std(ddof=1) / sqrt(k)``) of ``k`` values, one per seed.

    Example:
        >>> [round(v, 4) for v in mean_se([1.0, 2.0, 3.0])]
        [2.0, 0.5774]
    """
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else 0.0


#: A paired difference counts as real when its mean is at least this many standard errors from zero,
#: and as inside the noise when it is less.
Z = 2.0
#: Over the data-size experiment's 8 times more data (125 to 1000 digits), MC dropout's mutual
#: information keeps more than this share of its value in every seed; the ensemble's disagreement
#: keeps less than :data:`ENSEMBLE_KEEPS`; at 1000 digits MC's is more than :data:`MC_OVER_ENSEMBLE`
#: times the ensemble's.
MC_KEEPS = 0.5
ENSEMBLE_KEEPS = 1 / 3
MC_OVER_ENSEMBLE = 10.0


def paired(result: BaselinesResult, metric: str, base: str, other: str) -> tuple[float, float]:
    """Mean and standard error over the seeds of ``other - base`` for ``metric`` (``"ece"``, ``"nll"`` or
    ``"error"``), two of :data:`METHODS`.

    Example:
        >>> r = BaselinesResult(np.array([1]), np.zeros((2, 1)), np.zeros((2, 1)),
        ...                     {"a": np.array([0.1, 0.2]), "b": np.array([0.2, 0.4])}, {}, {},
        ...                     np.ones((2, 1)), 1)
        >>> [round(v, 4) for v in paired(r, "ece", "a", "b")]
        [0.15, 0.05]
    """
    values = getattr(result, metric)
    mean, _, se = paired_gain(values[base], values[other])
    return mean, se


def _paired_claim(
    statement: str, result: BaselinesResult, metric: str, base: str, other: str, sign: int
) -> Claim:
    """``sign=+1``: ``other`` is higher by more than :data:`Z` standard errors; ``-1``: lower; ``0``:
    the difference is inside the noise (less than :data:`Z` standard errors)."""
    mean, se = paired(result, metric, base, other)
    k = len(getattr(result, metric)[base])
    evidence = f"{other} - {base}: {mean:+.4f} ± {se:.4f} (SE, {k} seeds)"
    if sign == 0:
        return Claim(statement, abs(mean) < Z * se, evidence + f", |mean| < {Z:g} SE")
    return Claim(statement, sign * mean > Z * se, evidence + f", {'above' if sign > 0 else 'below'} {Z:g} SE")


def _not_lower(statement: str, result: BaselinesResult, metric: str, base: str, other: str) -> Claim:
    """``other`` is not lower than ``base`` by :data:`Z` standard errors (higher, or inside the noise)."""
    mean, se = paired(result, metric, base, other)
    k = len(getattr(result, metric)[base])
    return Claim(statement, mean > -Z * se,
                 f"{other} - {base}: {mean:+.4f} ± {se:.4f} (SE, {k} seeds), not below -{Z:g} SE")


def data_size_claims(result: BaselinesResult) -> list[Claim]:
    """MC dropout's mutual information at a fixed ``p`` against the training-set size, and the ensemble's.

    In every seed: MC's mean test MI falls with every step in size, but keeps more than
    :data:`MC_KEEPS` of its value over the whole range, while the ensemble's disagreement keeps less
    than :data:`ENSEMBLE_KEEPS`; at the largest size MC's is more than :data:`MC_OVER_ENSEMBLE` times
    the ensemble's. Over the seeds, MC's last step in size removes a smaller share than its first
    (paired, :data:`Z` standard errors).
    """
    mc, ens = result.mc_mi, result.ensemble_mi
    seeds = range(len(mc))
    steps = mc[:, 1:] / mc[:, :-1]
    slowing, _, slowing_se = paired_gain(1 - steps[:, 0], 1 - steps[:, -1])
    return [
        _in_every(
            "MC dropout's mutual information falls with every step in training-set size",
            {f"seed {k}": bool((np.diff(mc[k]) < 0).all()) for k in seeds},
            "seeds",
        ),
        _in_every(
            f"over {result.sizes[-1] // result.sizes[0]} times the data it keeps more than {MC_KEEPS:.0%}",
            {f"seed {k} ({mc[k, -1] / mc[k, 0]:.2f})": bool(mc[k, -1] / mc[k, 0] > MC_KEEPS) for k in seeds},
            "seeds",
        ),
        _in_every(
            f"the ensemble's disagreement keeps less than {ENSEMBLE_KEEPS:.0%}",
            {f"seed {k} ({ens[k, -1] / ens[k, 0]:.2f})": bool(ens[k, -1] / ens[k, 0] < ENSEMBLE_KEEPS)
             for k in seeds},
            "seeds",
        ),
        _in_every(
            f"at {result.sizes[-1]} digits MC's is more than {MC_OVER_ENSEMBLE:g} times the ensemble's",
            {f"seed {k} ({mc[k, -1] / ens[k, -1]:.1f})": bool(mc[k, -1] > MC_OVER_ENSEMBLE * ens[k, -1])
             for k in seeds},
            "seeds",
        ),
        Claim(
            "MC's fall slows: its last doubling removes a smaller share than its first",
            -slowing > Z * slowing_se,
            f"share removed, last - first: {slowing:+.3f} ± {slowing_se:.3f} (SE, {len(mc)} seeds)",
        ),
    ]


def baselines_claims(result: BaselinesResult) -> list[Claim]:
    """The four predictions compared on the test digits, paired over the seeds (:data:`Z` standard errors).

    MC dropout raises the ECE of the plain network (evaluation mode), does not lower its NLL (it is
    not lower by :data:`Z` standard errors) and leaves its error inside the noise; temperature
    scaling changes neither the ECE nor the NLL beyond the noise; the deep ensemble has the lowest
    mean of the four on every score, a lower NLL than each of the other three, and a lower ECE and
    error than the plain network.
    """
    means = {metric: {m: float(np.mean(getattr(result, metric)[m])) for m in METHODS} for metric in _METRICS}
    lowest = {metric: min(values, key=values.get) for metric, values in means.items()}
    return [
        _in_every(
            "the ensemble has the lowest mean ECE, NLL and error of the four",
            {f"{_METRICS[metric]} (lowest: {name})": name == "ensemble" for metric, name in lowest.items()},
            "scores",
        ),
        _paired_claim("MC dropout raises the plain network's ECE", result, "ece", "plain", "MC dropout", +1),
        _not_lower("MC dropout does not lower its test NLL", result, "nll", "plain", "MC dropout"),
        _paired_claim("MC dropout's error is the plain network's, inside the noise", result, "error", "plain",
                      "MC dropout", 0),
        _paired_claim("temperature scaling leaves the ECE inside the noise", result, "ece", "plain",
                      "temperature", 0),
        _paired_claim("and the NLL", result, "nll", "plain", "temperature", 0),
        _paired_claim("the ensemble lowers the plain network's NLL", result, "nll", "plain", "ensemble", -1),
        _paired_claim("and the temperature-scaled network's", result, "nll", "temperature", "ensemble", -1),
        _paired_claim("and MC dropout's", result, "nll", "MC dropout", "ensemble", -1),
        _paired_claim("the ensemble lowers the plain network's ECE", result, "ece", "plain", "ensemble", -1),
        _paired_claim(
            "the ensemble lowers the plain network's error", result, "error", "plain", "ensemble", -1
        ),
    ]


#: How the chapter's tables name the :data:`METHODS`.
METHOD_LABELS = {
    "plain": "plain network (evaluation mode)",
    "MC dropout": "MC dropout",
    "temperature": "temperature-scaled network",
    "ensemble": "deep ensemble",
}
_METRICS = {"ece": "ECE", "nll": "NLL", "error": "error"}
_SHORT = {"plain": "plain", "MC dropout": "mc", "temperature": "temp", "ensemble": "ens"}


def _pm(mean: float, se: float, sign: bool = False) -> str:
    return f"{mean:{'+' if sign else ''}.4f} ± {se:.4f}"


def baselines_rows(result: BaselinesResult, members: int = MEMBERS) -> tuple[list[dict], list[dict]]:
    """The chapter's two tables: each prediction's cost and scores (mean ± SE over the seeds), and the
    paired differences with the plain network (mean ± SE of the per-seed differences)."""
    cost = {"plain": (1, 1), "MC dropout": (1, result.samples), "temperature": (1, 1),
            "ensemble": (members, members)}
    scores, differences = [], []
    for name in METHODS:
        row: dict[str, Any] = {"prediction": METHOD_LABELS[name], "trainings": cost[name][0],
                               "passes per digit": cost[name][1]}
        for metric, label in _METRICS.items():
            row[label] = _pm(*mean_se(getattr(result, metric)[name]))
        scores.append(row)
        if name != "plain":
            differences.append({"minus the plain network": METHOD_LABELS[name]} | {
                f"Δ {label}": _pm(*paired(result, metric, "plain", name), sign=True)
                for metric, label in _METRICS.items()
            })
    return scores, differences


def baselines_summary(result: BaselinesResult) -> dict[str, float]:
    """The numbers the chapter quotes from :func:`baselines_experiment`, under the names it glues them by.

    ``{metric}_{method}`` and ``..._se``: mean and standard error over the seeds (methods ``plain``,
    ``mc``, ``temp``, ``ens``); ``d_{metric}_{method}`` and ``..._se``: paired difference with the plain
    network; ``d_nll_ens_temp``: the ensemble's NLL minus the temperature-scaled one's; ``t_mean``,
    ``t_se``, ``t_min``, ``t_max``: the fitted temperatures (mean and SE over the seeds of each seed's
    mean); ``mi_mc_{k}`` and ``mi_ens_{k}`` (``k`` = ``first``, ``last``) with ``_se``: the mean test
    MI at the smallest and largest size; ``keep_mc``, ``keep_ens`` with ``_se``: the share kept from the
    smallest to the largest size; ``drop_mc_first``, ``drop_mc_last``, ``drop_ens_mean`` with ``_se``:
    the share one doubling removes (MC's first and last, the ensemble's average over the doublings);
    ``mc_over_ens`` with ``_se``: MC's MI over the ensemble's at the largest size.
    """
    out: dict[str, float] = {}

    def put(name: str, pair: tuple[float, float]) -> None:
        out[name], out[f"{name}_se"] = round(pair[0], 4), round(pair[1], 4)

    for metric in ("ece", "nll", "error"):
        for name, short in _SHORT.items():
            put(f"{metric}_{short}", mean_se(getattr(result, metric)[name]))
            if name != "plain":
                put(f"d_{metric}_{short}", paired(result, metric, "plain", name))
    put("d_nll_ens_temp", paired(result, "nll", "temperature", "ensemble"))
    put("t", mean_se(result.temperature.mean(axis=1)))
    out["t_mean"], out["t_se"] = out.pop("t"), out.pop("t_se")
    out["t_min"] = round(float(result.temperature.min()), 2)
    out["t_max"] = round(float(result.temperature.max()), 2)
    mc, ens = result.mc_mi, result.ensemble_mi
    for key, column in (("first", 0), ("last", -1)):
        put(f"mi_mc_{key}", mean_se(mc[:, column]))
        put(f"mi_ens_{key}", mean_se(ens[:, column]))
    put("keep_mc", mean_se(mc[:, -1] / mc[:, 0]))
    put("keep_ens", mean_se(ens[:, -1] / ens[:, 0]))
    put("drop_mc_first", mean_se(1 - mc[:, 1] / mc[:, 0]))
    put("drop_mc_last", mean_se(1 - mc[:, -1] / mc[:, -2]))
    put("drop_ens_mean", mean_se((1 - ens[:, 1:] / ens[:, :-1]).mean(axis=1)))
    put("mc_over_ens", mean_se(mc[:, -1] / ens[:, -1]))
    return out


def low_p_claims(result: BaselinesResult) -> list[Claim]:
    """Temperature scaling against MC averaging where the plain network is overconfident (``p = 0.1``).

    ``result`` is :func:`baselines_experiment` for one network per seed at :data:`LOW_P` (its
    ensemble is that one network, and is not used). Paired over the seeds (:data:`Z` standard
    errors): MC averaging lowers the plain network's ECE and NLL; temperature scaling lowers the NLL;
    MC averaging and temperature scaling reach the same NLL inside the noise; and every fitted
    temperature is above 1 (the network is overconfident).
    """
    return [
        _paired_claim(
            f"at p = {LOW_P} MC averaging lowers the ECE", result, "ece", "plain", "MC dropout", -1
        ),
        _paired_claim("and the NLL", result, "nll", "plain", "MC dropout", -1),
        _paired_claim("temperature scaling lowers the NLL", result, "nll", "plain", "temperature", -1),
        _paired_claim("MC averaging and temperature scaling reach the same NLL, inside the noise", result,
                      "nll", "temperature", "MC dropout", 0),
        above("every fitted temperature is above 1 (overconfident)", float(result.temperature.min()), 1.0),
    ]


def low_p_rows(result: BaselinesResult) -> list[dict]:
    """The chapter's table for :func:`low_p_claims`: the plain, MC and temperature-scaled scores and their
    paired differences with the plain network (mean ± SE over the seeds)."""
    rows = []
    for name in ("plain", "MC dropout", "temperature"):
        row: dict[str, Any] = {"prediction": METHOD_LABELS[name]}
        for metric, label in _METRICS.items():
            row[label] = _pm(*mean_se(getattr(result, metric)[name]))
        for metric, label in _METRICS.items():
            row[f"Δ {label}"] = (
                "—" if name == "plain" else _pm(*paired(result, metric, "plain", name), sign=True)
            )
        rows.append(row)
    return rows
