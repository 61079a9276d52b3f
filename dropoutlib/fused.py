r"""Dropout that stores no mask: the mask is recomputed from a seed in the backward pass.

``torch.nn.functional.dropout`` on a GPU writes a one-byte mask per element in the forward pass and reads
it back in the backward pass. Here the keep decision for element :math:`i` is a pure function of a
64-bit ``seed`` and the index :math:`i`,

.. math::

    u_i = \mathrm{Philox}(\mathrm{seed}, i) \in [0, 1), \qquad
    y_i = \begin{cases} x_i / q & u_i \ge p \\ 0 & \text{otherwise,} \end{cases}

so the backward pass draws the same :math:`u_i` again and computes
:math:`\partial L / \partial x_i = [u_i \ge p] \, (\partial L / \partial y_i) / q` from the seed alone. The
autograd function saves no tensor at all (:class:`FusedDropoutFunction`).

Philox-4x32-10 (Salmon et al., 2011) is a counter-based generator: ten rounds of multiply, xor and
key-bump turn the counter ``(i_lo, i_hi, 0, 0)`` and key ``(seed_lo, seed_hi)`` into four random words.
We use the first word and convert it to a float exactly as Triton's ``tl.rand`` does, so two backends give
the same bits:

- ``backend="triton"``: one Triton kernel, used for both passes (:func:`triton_available` says whether
  Triton is installed). On a CUDA tensor it runs compiled on the GPU; on a CPU tensor it needs Triton's
  interpreter (environment variable ``TRITON_INTERPRET=1`` set before Triton is first imported), which
  is slow and meant for testing.
- ``backend="torch"``: the same generator written with int64 tensor operations, on any device. It needs
  no Triton; it is the reference the kernel is tested against and the CPU path.

``backend="auto"`` picks ``"triton"`` for CUDA tensors when Triton is installed and ``"torch"`` otherwise.

Example:
    >>> x = torch.ones(2, 4, requires_grad=True)
    >>> y = fused_dropout(x, p=0.5, seed=3)
    >>> y
    tensor([[0., 2., 0., 0.],
            [0., 2., 0., 0.]], grad_fn=<FusedDropoutFunctionBackward>)
    >>> y.sum().backward()
    >>> torch.equal(x.grad, y.detach())  # the gradient is masked and scaled exactly like the output
    True
"""

from __future__ import annotations

import functools
import importlib.util
import numbers
import os
from typing import Any

import torch
from torch import nn

from dropoutlib._validation import check_bool, check_floating, check_generator, check_probability

__all__ = [
    "BACKENDS",
    "FusedDropout",
    "FusedDropoutFunction",
    "fused_dropout",
    "new_seed",
    "philox_uniform",
    "triton_available",
]

BACKENDS = ("auto", "torch", "triton")

# Philox-4x32 constants (the same as Triton's and as Random123's).
_ROUND_A, _ROUND_B = 0xD2511F53, 0xCD9E8D57
_KEY_A, _KEY_B = 0x9E3779B9, 0xBB67AE85
_ROUNDS = 10
_MASK32 = 0xFFFFFFFF
# tl.rand's scale: the largest float32 with (2**31 - 1) * scale < 1.
_UNIFORM_SCALE = 4.6566127342e-10
_SEED_BOUND = 2**63  # seeds are non-negative 64-bit integers
_CHUNK = 1 << 16  # elements per block of the torch backend: its int64 temporaries stay in cache
_BLOCK = 1024  # elements per program of the Triton kernel
_KERNEL_DTYPES = (torch.float16, torch.bfloat16, torch.float32)  # the kernel computes in float32


def triton_available() -> bool:
    """Whether Triton can be imported (it is an optional dependency).

    Example:
        >>> isinstance(triton_available(), bool)
        True
    """
    return importlib.util.find_spec("triton") is not None


def _philox_first_word(seed: int, offsets: torch.Tensor) -> torch.Tensor:
    """Philox-4x32-10's first output word for counters ``(offset_lo, offset_hi, 0, 0)``, as int64.

    Each round multiplies two 32-bit words by constants; the products can reach 2**64 and wrap around in
    int64, but wrapping keeps the 64 bits of the unsigned product, so masking after the (sign-extending)
    shift reads the high word correctly. The operations work in place where they can.
    """
    c0, c1 = offsets & _MASK32, offsets >> 32
    c2 = torch.zeros_like(c0)
    c3 = torch.zeros_like(c0)
    k0, k1 = seed & _MASK32, (seed >> 32) & _MASK32
    for _ in range(_ROUNDS):
        product_b = c2 * _ROUND_B
        product_a = c0 * _ROUND_A
        c0 = (product_b >> 32).bitwise_and_(_MASK32).bitwise_xor_(c1).bitwise_xor_(k0)
        c1 = product_b.bitwise_and_(_MASK32)
        c2 = (product_a >> 32).bitwise_and_(_MASK32).bitwise_xor_(c3).bitwise_xor_(k1)
        c3 = product_a.bitwise_and_(_MASK32)
        k0, k1 = (k0 + _KEY_A) & _MASK32, (k1 + _KEY_B) & _MASK32
    return c0


def _to_uniform(words: torch.Tensor) -> torch.Tensor:
    """Triton's ``uint_to_uniform_float``: read the word as int32, fold negatives with ``~``, scale."""
    signed = torch.where(words >= 2**31, words - 2**32, words)
    folded = torch.where(signed < 0, ~signed, signed)
    return folded.to(torch.float32) * torch.tensor(_UNIFORM_SCALE, dtype=torch.float32)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int, got seed={seed!r} ({type(seed).__name__})")
    if not 0 <= seed < _SEED_BOUND:
        raise ValueError(f"seed must be in [0, 2**63), got seed={seed!r}")
    return int(seed)


def philox_uniform(seed: int, offsets: torch.Tensor) -> torch.Tensor:
    """Uniform float32 numbers in ``[0, 1)``, one per offset, bit for bit those of Triton's ``tl.rand``.

    Args:
        seed: an integer in ``[0, 2**63)``.
        offsets: an integer tensor of non-negative counters (element indices), any shape and device.

    Returns:
        A float32 tensor of the shape and on the device of ``offsets``.

    Example:
        >>> philox_uniform(0, torch.arange(3))
        tensor([0.7981, 0.0555, 0.0389])
    """
    seed = _check_seed(seed)
    if not isinstance(offsets, torch.Tensor) or offsets.is_floating_point() or offsets.is_complex():
        raise TypeError(f"offsets must be an integer torch.Tensor, got {type(offsets).__name__}")
    offsets = offsets.to(torch.int64)
    if offsets.numel() and int(offsets.min()) < 0:
        raise ValueError(f"offsets must be non-negative, got a minimum of {int(offsets.min())}")
    return _to_uniform(_philox_first_word(seed, offsets))


def new_seed(generator: torch.Generator | None = None) -> int:
    """A fresh seed in ``[0, 2**62)`` drawn from ``generator`` (default: torch's global RNG).

    Example:
        >>> new_seed(torch.Generator().manual_seed(0)) == new_seed(torch.Generator().manual_seed(0))
        True
    """
    check_generator(generator)
    return int(torch.randint(0, 2**62, (1,), generator=generator, dtype=torch.int64))


def _torch_dropout(x: torch.Tensor, p: float, seed: int) -> torch.Tensor:
    """The torch backend: the mask recomputed block by block from the seed, nothing stored."""
    flat = x.reshape(-1)
    out = torch.empty_like(flat)
    threshold = torch.tensor(p, dtype=torch.float32)
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32  # half types: in float32
    scale = torch.tensor(1.0 / (1.0 - p), dtype=compute)
    for start in range(0, flat.numel(), _CHUNK):
        stop = min(start + _CHUNK, flat.numel())
        offsets = torch.arange(start, stop, device=x.device, dtype=torch.int64)
        keep = _to_uniform(_philox_first_word(seed, offsets)) >= threshold
        kept = (flat[start:stop].to(compute) * scale).to(x.dtype)
        out[start:stop] = torch.where(keep, kept, torch.zeros((), dtype=x.dtype, device=x.device))
    return out.view_as(x)


@functools.cache
def _triton_kernel() -> Any:
    """Compile-on-first-use: importing dropoutlib never imports Triton."""
    import triton
    import triton.language as tl

    @triton.jit
    def dropout_kernel(x_ptr, out_ptr, n, p, scale, seed, BLOCK: tl.constexpr):
        offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        inside = offsets < n
        x = tl.load(x_ptr + offsets, mask=inside)
        keep = tl.rand(seed, offsets) >= p
        kept = (x.to(tl.float32) * scale).to(x.dtype)
        tl.store(out_ptr + offsets, tl.where(keep, kept, 0.0).to(x.dtype), mask=inside)

    return triton, dropout_kernel


def _triton_dropout(x: torch.Tensor, p: float, seed: int) -> torch.Tensor:
    triton, kernel = _triton_kernel()
    out = torch.empty_like(x)
    n = x.numel()
    if n:
        scale = float(torch.tensor(1.0 / (1.0 - p), dtype=torch.float32))
        kernel[(triton.cdiv(n, _BLOCK),)](x, out, n, p, scale, seed, BLOCK=_BLOCK)
    return out


def _resolve_backend(backend: Any, x: torch.Tensor) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got backend={backend!r}")
    if backend == "triton" and not triton_available():
        raise RuntimeError("backend='triton' needs Triton, which is not installed (pip install triton)")
    if backend == "auto":
        return "triton" if x.is_cuda and x.dtype in _KERNEL_DTYPES and triton_available() else "torch"
    if backend == "triton" and x.dtype not in _KERNEL_DTYPES:
        raise TypeError(f"backend='triton' supports float16, bfloat16 and float32, got dtype {x.dtype}")
    if backend == "triton" and not x.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError(
            f"backend='triton' on a {x.device.type} tensor runs only in Triton's interpreter: set the "
            "environment variable TRITON_INTERPRET=1 before Triton is imported"
        )
    return backend


def _masked_scaled(x: torch.Tensor, p: float, seed: int, backend: str) -> torch.Tensor:
    x = x.contiguous()
    return _triton_dropout(x, p, seed) if backend == "triton" else _torch_dropout(x, p, seed)


class FusedDropoutFunction(torch.autograd.Function):
    """Seeded dropout whose backward regenerates the mask: ``ctx`` keeps ``p``, the seed and the backend.

    ``FusedDropoutFunction.apply(input, p, seed, backend)`` with ``0 <= p < 1`` and a resolved backend
    (``"torch"`` or ``"triton"``); :func:`fused_dropout` validates the arguments and handles ``p = 1``.
    No tensor is saved for backward (``ctx.save_for_backward`` is never called).

    ``torch.func`` transforms work (``forward`` takes no ``ctx``; :meth:`setup_context` keeps the
    arguments). The backward pass is this same function applied to the upstream gradient (the map is
    linear), so it is differentiable again and follows the vmap rule too. Under ``torch.func.vmap``
    the mask is laid out over the whole batched tensor, batch dimension first: ``vmap(f)(X)`` equals
    ``f(X)`` for ``f = lambda x: fused_dropout(x, p, seed=s)``, so each example gets its own mask. With
    ``randomness="same"`` (one mask for every example) vmap raises a RuntimeError.

    Example:
        >>> x = torch.randn(3, 5)
        >>> f = lambda t: fused_dropout(t, 0.5, seed=1, backend="torch")
        >>> torch.equal(torch.func.vmap(f)(x), f(x))
        True
        >>> torch.equal(torch.func.grad(lambda t: f(t).sum())(x), f(torch.ones(3, 5)))
        True
    """

    @staticmethod
    def forward(input: torch.Tensor, p: float, seed: int, backend: str) -> torch.Tensor:
        return _masked_scaled(input, p, seed, backend)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        _, ctx.p, ctx.seed, ctx.backend = inputs

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        return FusedDropoutFunction.apply(grad_output, ctx.p, ctx.seed, ctx.backend), None, None, None

    @staticmethod
    def vmap(
        info: Any, in_dims: tuple[Any, ...], input: torch.Tensor, p: float, seed: int, backend: str
    ) -> tuple[torch.Tensor, int | None]:
        if info.randomness == "same":
            raise RuntimeError(
                "fused_dropout under torch.func.vmap lays its mask out over the whole batch (a mask per "
                "example); randomness='same' (one mask for every example) is not supported: use "
                "randomness='different' or 'error', or call fused_dropout on one example and broadcast"
            )
        dim = in_dims[0]
        if dim is None:
            return FusedDropoutFunction.apply(input, p, seed, backend), None
        return FusedDropoutFunction.apply(input.movedim(dim, 0), p, seed, backend), 0


def fused_dropout(
    input: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Inverted dropout whose mask is a function of ``(seed, element index)`` and is never stored.

    Same semantics as :func:`dropoutlib.dropout` (each element zeroed with probability ``p``, kept ones
    scaled by ``1/q``; the identity when ``training`` is False or ``p == 0``; zeros for ``p == 1``), but
    the random numbers come from Philox, so the result is not bitwise equal to ``F.dropout``'s.

    Args:
        input: floating-point tensor of any shape; the mask is laid out over its elements in row-major
            (contiguous) order.
        p: probability of zeroing each element, in ``[0, 1]``.
        training: apply dropout if True; return ``input`` unchanged otherwise.
        seed: the mask's seed, an integer in ``[0, 2**63)``. ``None``: a fresh seed from ``generator``
            (:func:`new_seed`), so every call gets a new mask. The same seed gives the same mask.
        generator: where a fresh seed is drawn from when ``seed`` is None; default: torch's global RNG.
            It is drawn from only when a mask is needed: with ``training`` False, ``p`` 0 or 1, or an
            empty input, neither the global RNG nor ``generator`` moves.
        backend: ``"auto"``, ``"torch"`` or ``"triton"`` (see the module's description).

    Returns:
        A tensor of the shape, dtype and device of ``input``.

    Example:
        >>> x = torch.randn(1000)
        >>> torch.equal(fused_dropout(x, 0.3, seed=7), fused_dropout(x, 0.3, seed=7))
        True
        >>> torch.equal(fused_dropout(x, 0.3, seed=7), fused_dropout(x, 0.3, seed=8))
        False
    """
    p = check_probability(p)
    training = check_bool(training, "training")
    check_floating(input)
    check_generator(generator)
    if seed is not None:
        seed = _check_seed(seed)
    backend = _resolve_backend(backend, input)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    if p == 1.0:
        return input * torch.zeros((), dtype=input.dtype, device=input.device)
    if seed is None:  # drawn only when a mask is needed: eval mode, p = 0 or 1 leave the RNG untouched
        seed = new_seed(generator)
    return FusedDropoutFunction.apply(input, p, seed, backend)


class FusedDropout(nn.Module):
    """A drop-in for ``torch.nn.Dropout`` built on :func:`fused_dropout`: a fresh seed per call.

    Args:
        p: probability of zeroing each element, in ``[0, 1]``. Default 0.5.
        backend: ``"auto"``, ``"torch"`` or ``"triton"``.

    Example:
        >>> layer = FusedDropout(0.25)
        >>> layer
        FusedDropout(p=0.25, backend='auto')
        >>> x = torch.randn(4, 8)
        >>> torch.equal(layer.eval()(x), x)
        True
    """

    def __init__(self, p: float = 0.5, backend: str = "auto") -> None:
        super().__init__()
        self.p = check_probability(p)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got backend={backend!r}")
        self.backend = backend

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return fused_dropout(input, self.p, self.training, backend=self.backend)

    def extra_repr(self) -> str:
        return f"p={self.p}, backend={self.backend!r}"
