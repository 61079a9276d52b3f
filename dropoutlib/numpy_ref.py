"""Dropout in plain NumPy: forward, backward and a numerical gradient check.

A reference to read next to the PyTorch version: no autograd, every step explicit.

Forward (training, ``q = 1 - p``)::

    s_i = m_i / q,  m_i = [u_i >= p],  u_i ~ Uniform[0, 1)   (so m_i ~ Bernoulli(q))
    y = x * s

Backward (``y_i`` depends only on ``x_i``, with slope ``s_i``)::

    dL/dx = dL/dy * s
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dropoutlib._validation import check_probability

__all__ = ["dropout_backward", "dropout_forward", "numerical_gradient", "relative_error"]


def dropout_forward(
    x: np.ndarray, p: float, rng: np.random.Generator, training: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Inverted dropout forward pass: return ``(out, mask)`` with ``out = x * mask``.

    ``mask`` is the scaled mask ``m / q`` (entries ``0`` or ``1/q``) with the shape and dtype of
    ``x``; keep it for the backward pass. For ``p == 1`` every entry is 0. In evaluation mode
    (``training=False``) returns ``(x, None)`` and draws nothing from ``rng``.

    Example:
        >>> out, mask = dropout_forward(np.ones(5), p=0.5, rng=np.random.default_rng(0))
        >>> bool(np.all((mask == 0) | (mask == 2.0)))
        True
        >>> bool(np.array_equal(out, mask))
        True
    """
    p = check_probability(p)
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"x must be a floating-point array, got dtype {x.dtype}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if not training:
        return x, None
    keep = rng.random(x.shape) >= p
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    mask = (keep * scale).astype(x.dtype)
    return x * mask, mask


def dropout_backward(grad_out: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Backward pass of dropout: ``dL/dx = dL/dy * mask`` (the same mask as the forward pass).

    Example:
        >>> dropout_backward(np.array([1.0, 1.0, 1.0]), np.array([2.0, 0.0, 2.0]))
        array([2., 0., 2.])
    """
    return np.asarray(grad_out) * np.asarray(mask)


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    """Gradient of a scalar function ``f`` at ``x`` by central differences.

    ``g_i = (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)``, one pair of evaluations per entry;
    error ``O(eps^2)`` plus rounding ``O(|f| * 1e-16 / eps)``. Use float64 ``x``. ``x`` is restored
    after each perturbation. Returns an array of the shape of ``x``.

    Example:
        >>> g = numerical_gradient(lambda v: float(np.sum(v**2)), np.array([1.0, -2.0]))
        >>> np.round(g, 6)
        array([ 2., -4.])
    """
    if eps <= 0:
        raise ValueError(f"eps must be positive, got eps={eps!r}")
    x = np.array(x, dtype=np.float64)  # a copy: the caller's array is never touched
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + eps
        f_plus = f(x)
        x[index] = original - eps
        f_minus = f(x)
        x[index] = original
        grad[index] = (f_plus - f_minus) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """Largest elementwise relative error ``max_i |a_i - b_i| / max(|a_i| + |b_i|, 1e-12)``.

    Entries where both are (near) zero count as agreeing. A correct analytic gradient checked in
    float64 typically gives ``< 1e-7``.

    Example:
        >>> relative_error(np.array([1.0, 0.0]), np.array([1.0, 0.0]))
        0.0
        >>> relative_error(np.array([1.0]), np.array([3.0]))
        0.5
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-12)))
