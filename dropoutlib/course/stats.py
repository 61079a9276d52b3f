"""Small statistics the chapters share: paired differences over seeds with their standard errors, the
binomial standard error of a rate measured on a test set, and how many samples a standard error of a
given size takes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dropoutlib._validation import check_positive_int, check_real

if TYPE_CHECKING:
    pass

__all__ = [
    "binomial_standard_error",
    "paired_gain",
    "samples_needed",
]


# --- analysis ---------------------------------------------------------------------------------------


def _as_array(values: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be numbers (a sequence or an array), got {name}={values!r}") from None
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite, got {name}={values!r}")
    return array


def paired_gain(base: Sequence[float], other: Sequence[float]) -> tuple[float, float, float]:
    r"""Mean, standard deviation and standard error of the per-seed differences ``other - base``.

    With :math:`d_s = \text{other}_s - \text{base}_s` over :math:`k` seeds:

    .. math::

        \bar d = \frac1k\sum_s d_s, \qquad
        s_d = \sqrt{\frac{1}{k-1}\sum_s (d_s - \bar d)^2}, \qquad
        \mathrm{SE} = s_d / \sqrt k .

    Pairing (same split, same initial weights for both) removes what the two runs share, so
    :math:`s_d` is usually much smaller than the spread of either accuracy over seeds. With one
    seed the deviation and standard error are 0.

    Example:
        >>> mean, std, se = paired_gain([0.90, 0.94, 0.92], [0.92, 0.95, 0.95])
        >>> round(mean, 4), round(std, 4), round(se, 4)
        (0.02, 0.01, 0.0058)
    """
    base_array, other_array = _as_array(base, "base"), _as_array(other, "other")
    if base_array.shape != other_array.shape:
        raise ValueError(
            f"base and other need one value per seed each, got {base_array.size} and {other_array.size}"
        )
    d = other_array - base_array
    k = d.size
    std = float(d.std(ddof=1)) if k > 1 else 0.0
    return float(d.mean()), std, std / math.sqrt(k)


def binomial_standard_error(error: float, n: int) -> float:
    r"""Standard error of an error rate measured on ``n`` test images: :math:`\sqrt{e(1-e)/n}`.

    Example:
        >>> round(binomial_standard_error(0.063, 540), 4)
        0.0105
    """
    n = check_positive_int(n, "n")
    error = float(error)
    if not 0.0 <= error <= 1.0:
        raise ValueError(f"error must be in [0, 1], got error={error}")
    return math.sqrt(error * (1.0 - error) / n)


# --- design -----------------------------------------------------------------------------------------


def samples_needed(spread: float, margin: float, z: float = 2.0) -> int:
    r"""The fewest samples :math:`n` whose mean has ``z`` standard errors within ``margin``.

    A mean of :math:`n` independent samples with standard deviation :math:`s` (``spread``) has
    standard error :math:`s/\sqrt n`, so :math:`z\,s/\sqrt n \le` ``margin`` needs

    .. math::

        n = \left\lceil \left(\frac{z\,s}{\text{margin}}\right)^2 \right\rceil

    (a relative hair of slack absorbs rounding when the ratio is a whole number). Halving the
    margin takes four times the samples.

    Example:
        >>> samples_needed(0.05, 0.01)  # (2 * 0.05 / 0.01) ** 2 = 100
        100
        >>> samples_needed(0.5, 0.005, z=5)  # the fraction dropped at p = 0.5, to 0.005
        250000
    """
    spread = check_real(spread, "spread", minimum=0.0)
    margin = check_real(margin, "margin", positive=True)
    z = check_real(z, "z", positive=True)
    return max(1, math.ceil((z * spread / margin) ** 2 * (1 - 1e-12)))
