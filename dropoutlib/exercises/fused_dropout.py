"""Checks for the exercises of chapter 14, "Dropout at scale: a fused dropout that stores no mask".

Each ``check_*`` takes the student's function, prints one line when it is right, and otherwise raises an
``AssertionError`` whose message names the mistake. A stub (returning ``None``, ``...``, raising
``NotImplementedError``) never passes. The checks are deterministic: they compare with
:func:`dropoutlib.fused.philox_uniform` and
:func:`~dropoutlib.experiments.fused_dropout.bytes_moved` on fixed inputs.

Philox-4x32 notation: a counter of four 32-bit words ``(c0, c1, c2, c3)``, a key of two ``(k0, k1)``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import torch

from dropoutlib.exercises._answers import as_number, call_answer, describe, require_function
from dropoutlib.experiments.fused_dropout import bytes_moved
from dropoutlib.fused import philox_uniform

__all__ = ["check_dropout_traffic", "check_philox_round", "check_uniform_at"]

_M = 0xFFFFFFFF
_A, _B = 0xD2511F53, 0xCD9E8D57
_KEY_A, _KEY_B = 0x9E3779B9, 0xBB67AE85

# counters and keys with high bits set, so that a missing mask or a swapped word shows
_ROUND_CASES = [
    ((0, 0, 0, 0), (0, 0)),
    ((1, 2, 3, 4), (5, 6)),
    ((0xFFFFFFFF, 0x12345678, 0xDEADBEEF, 0x0BADF00D), (0xCAFEBABE, 0x8BADF00D)),
    ((0x80000001, 7, 0x7FFFFFFF, 0xFFFFFFFE), (0x9E3779B9, 0xBB67AE85)),
]


def _reference_round(counter: tuple[int, ...], key: tuple[int, ...]) -> tuple[int, int, int, int]:
    c0, c1, c2, c3 = counter
    k0, k1 = key
    pa, pb = _A * c0, _B * c2
    return (pb >> 32) ^ c1 ^ k0, pb & _M, (pa >> 32) ^ c3 ^ k1, pa & _M


def _as_words(result: Any, call: str) -> tuple[int, ...]:
    if isinstance(result, torch.Tensor):
        result = result.tolist()
    if not isinstance(result, tuple | list) or len(result) != 4:
        raise AssertionError(
            f"{call} returned {describe(result)}; return a tuple of four ints (c0, c1, c2, c3)"
        )
    words = []
    for word in result:
        if isinstance(word, bool) or not isinstance(word, numbers.Integral):
            raise AssertionError(f"{call} returned {result!r}: every word must be an int, got {word!r}")
        words.append(int(word))
    return tuple(words)


# --- one Philox round ------------------------------------------------------------------------------------


def check_philox_round(fn: Callable[..., Any]) -> None:
    """Check one Philox-4x32 round ``fn(counter, key) -> (c0', c1', c2', c3')`` on Python ints.

    The round: with ``A = 0xD2511F53`` and ``B = 0xCD9E8D57``, ``hi``/``lo`` the upper and lower 32
    bits of a 64-bit product,
    ``(c0', c1', c2', c3') = (hi(B*c2) ^ c1 ^ k0, lo(B*c2), hi(A*c0) ^ c3 ^ k1, lo(A*c0))``.
    The key is not bumped inside the round. Mistakes named: words out of 32 bits (a missing
    ``& 0xFFFFFFFF``), hi and lo exchanged, the multipliers exchanged, the key left out or applied to
    the wrong words, the output words in the wrong order.

    Example:
        >>> def philox_round(counter, key):
        ...     c0, c1, c2, c3 = counter
        ...     k0, k1 = key
        ...     pa, pb = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        ...     return (pb >> 32) ^ c1 ^ k0, pb & 0xFFFFFFFF, (pa >> 32) ^ c3 ^ k1, pa & 0xFFFFFFFF
        >>> check_philox_round(philox_round)
        check_philox_round: correct (multiply, split into hi and lo, xor with the key, permute).
    """
    require_function(fn, "round function philox_round(counter, key)")
    for counter, key in _ROUND_CASES:
        call = f"philox_round({counter}, {key})"
        got = _as_words(call_answer(fn, counter, key), call)
        want = _reference_round(counter, key)
        if got == want:
            continue
        if any(not 0 <= word <= _M for word in got):
            raise AssertionError(
                f"{call} returned {got}: a word outside [0, 2**32); keep 32 bits with & 0xFFFFFFFF "
                "(the low word of a product is product & 0xFFFFFFFF, the high word product >> 32)"
            )
        raise AssertionError(
            f"{call} returned {_hex(got)}, expected {_hex(want)}: {_diagnose_round(got, counter, key)}"
        )
    print("check_philox_round: correct (multiply, split into hi and lo, xor with the key, permute).")


def _hex(words: tuple[int, ...]) -> str:
    return "(" + ", ".join(f"0x{w:08X}" for w in words) + ")"


def _diagnose_round(got: tuple[int, ...], counter: tuple[int, ...], key: tuple[int, ...]) -> str:
    c0, c1, c2, c3 = counter
    k0, k1 = key
    pa, pb = _A * c0, _B * c2
    hi_a, lo_a, hi_b, lo_b = pa >> 32, pa & _M, pb >> 32, pb & _M
    wrong = {
        "hi and lo are exchanged: the high 32 bits (product >> 32) are xored, the low ones pass on": (
            lo_b ^ c1 ^ k0,
            hi_b,
            lo_a ^ c3 ^ k1,
            hi_a,
        ),
        "the multipliers are exchanged: c0 is multiplied by A = 0xD2511F53, c2 by B = 0xCD9E8D57": (
            ((_A * c2) >> 32) ^ c1 ^ k0,
            (_A * c2) & _M,
            ((_B * c0) >> 32) ^ c3 ^ k1,
            (_B * c0) & _M,
        ),
        "the key is missing: xor k0 into the new c0 and k1 into the new c2": (
            hi_b ^ c1,
            lo_b,
            hi_a ^ c3,
            lo_a,
        ),
        "the key words are exchanged: k0 goes with c1 (new c0), k1 with c3 (new c2)": (
            hi_b ^ c1 ^ k1,
            lo_b,
            hi_a ^ c3 ^ k0,
            lo_a,
        ),
        "c1 and c3 are exchanged: the new c0 uses c1, the new c2 uses c3": (
            hi_b ^ c3 ^ k0,
            lo_b,
            hi_a ^ c1 ^ k1,
            lo_a,
        ),
        "the output words are in the wrong order: the B product (of c2) gives the new c0 and c1": (
            hi_a ^ c3 ^ k1,
            lo_a,
            hi_b ^ c1 ^ k0,
            lo_b,
        ),
    }
    for mistake, words in wrong.items():
        if got == words:
            return mistake
    right = _reference_round(counter, key)
    bad = [f"c{i}'" for i in range(4) if got[i] != right[i]]
    return f"the words {', '.join(bad)} differ from the round's definition"


# --- a uniform number for one element --------------------------------------------------------------------

_UNIFORM_CASES = [(0, 0), (0, 1), (7, 123_456), (2**40 + 3, 17), (12345, 2**33 + 5), (2**62 - 1, 2**45 + 999)]


def check_uniform_at(fn: Callable[..., Any]) -> None:
    """Check ``fn(seed, i) -> float``: element ``i``'s uniform number, computed alone.

    It must equal ``philox_uniform(seed, torch.tensor([i]))`` (Triton's ``tl.rand``): ten Philox
    rounds on the counter ``(i_lo, i_hi, 0, 0)`` with the key ``(seed_lo, seed_hi)``, bumped after
    every round, and the first word turned into a float as ``tl.rand`` does. Tested on small and
    large seeds and indices (above 2**32). Mistakes named: seed and index exchanged, the key not
    bumped, the wrong number of rounds, the high 32 bits of the seed or index dropped, a different
    conversion to a float.

    Example:
        >>> def uniform_at(seed, i):
        ...     return philox_uniform(seed, torch.tensor([i])).item()
        >>> check_uniform_at(uniform_at)
        check_uniform_at: correct (bit for bit tl.rand's number, for small and large seeds and indices).
    """
    require_function(fn, "function uniform_at(seed, i)")
    for seed, i in _UNIFORM_CASES:
        call = f"uniform_at({seed}, {i})"
        got = as_number(call_answer(fn, seed, i), call)
        want = philox_uniform(seed, torch.tensor([i])).item()
        if got == want:
            continue
        if not 0 <= got < 1:
            raise AssertionError(f"{call} returned {got!r}, which is not in [0, 1)")
        raise AssertionError(f"{call} returned {got!r}, expected {want!r}: {_diagnose_uniform(got, seed, i)}")
    print("check_uniform_at: correct (bit for bit tl.rand's number, for small and large seeds and indices).")


def _philox_word(seed: int, i: int, rounds: int = 10, bump: bool = True) -> int:
    counter = (i & _M, (i >> 32) & _M, 0, 0)
    k0, k1 = seed & _M, (seed >> 32) & _M
    for _ in range(rounds):
        counter = _reference_round(counter, (k0, k1))
        if bump:
            k0, k1 = (k0 + _KEY_A) & _M, (k1 + _KEY_B) & _M
    return counter[0]


def _tl_uniform(word: int) -> float:
    signed = word - 2**32 if word >= 2**31 else word
    folded = ~signed if signed < 0 else signed
    return (torch.tensor(float(folded), dtype=torch.float32) * torch.tensor(4.6566127342e-10)).item()


def _diagnose_uniform(got: float, seed: int, i: int) -> str:
    word = _philox_word(seed, i)
    candidates = {
        "seed and index are exchanged: the index is the counter, the seed is the key": _tl_uniform(
            _philox_word(i, seed)
        ),
        "the key is not bumped between rounds (add 0x9E3779B9 to k0 and 0xBB67AE85 to k1 after each)": (
            _tl_uniform(_philox_word(seed, i, bump=False))
        ),
        "the high 32 bits of the seed are dropped: the key is (seed & 0xFFFFFFFF, seed >> 32)": _tl_uniform(
            _philox_word(seed & _M, i)
        ),
        "the high 32 bits of the index are dropped: the counter is (i & 0xFFFFFFFF, i >> 32, 0, 0)": (
            _tl_uniform(_philox_word(seed, i & _M))
        ),
        "the conversion differs: tl.rand reads the word as a signed int32, folds negatives with ~, "
        "and multiplies by 4.6566127342e-10": word / 2**32,
    }
    for rounds in (1, 7, 9, 11, 12):
        candidates[f"{rounds} rounds instead of Philox-4x32-10's ten"] = _tl_uniform(
            _philox_word(seed, i, rounds)
        )
    for mistake, value in candidates.items():
        if abs(got - value) < 1e-6:
            return mistake
    return "compare each step with philox_uniform (the counter, the key, ten rounds, the conversion)"


# --- bytes moved -----------------------------------------------------------------------------------------

_TRAFFIC_CASES = [(1000, 4, 1), (1000, 2, 1), (2**27, 2, 1), (2**20, 4, 0), (3, 2, 4)]


def check_dropout_traffic(fn: Callable[..., Any]) -> None:
    """Check ``fn(n, itemsize, mask_itemsize) -> bytes``: the least memory traffic of dropout's forward
    plus backward pass on ``n`` elements (``mask_itemsize = 0``: no mask is stored).

    Forward reads ``x`` and writes ``y`` and the mask; backward reads the output's gradient and the
    mask and writes the input's gradient: ``n * (4 * itemsize + 2 * mask_itemsize)``
    (:func:`~dropoutlib.experiments.fused_dropout.bytes_moved`).
    Mistakes named: the mask counted once (written but never
    read, or the other way round), the mask left out, the backward pass left out, one tensor per
    pass missing.

    Example:
        >>> check_dropout_traffic(lambda n, itemsize, mask_itemsize: n * (4 * itemsize + 2 * mask_itemsize))
        check_dropout_traffic: correct (x, y, both gradients, and the mask twice when one is stored).
    """
    require_function(fn, "function traffic(n, itemsize, mask_itemsize)")
    for n, itemsize, mask in _TRAFFIC_CASES:
        call = f"traffic({n}, {itemsize}, {mask})"
        got = as_number(call_answer(fn, n, itemsize, mask), call)
        want = bytes_moved(n, itemsize, mask_itemsize=mask, passes="forward_backward")
        if got == want:
            continue
        wrong = {
            n
            * (4 * itemsize + mask): "the mask is counted once: the forward pass writes it and the backward "
            "pass reads it again",
            n * 4 * itemsize: "the mask is left out: forward writes it and backward reads it",
            n * (2 * itemsize + mask): "only the forward pass is counted: add the backward pass",
            n
            * (2 * itemsize + 2 * mask): "one tensor per pass is missing: each pass reads one and writes one",
            n
            * (3 * itemsize + 2 * mask): "one data tensor is missing: forward reads x and writes y, backward "
            "reads dL/dy and writes dL/dx",
            n * (4 * itemsize + 2 * mask) * 8: "the answer is in bits: count bytes",
        }
        hint = wrong.get(got, "count the tensors each pass reads and writes, and the mask in each pass")
        if mask == 0 and got != want:
            hint = f"with no mask (mask_itemsize=0) the traffic is 4 * n * itemsize = {want}: {hint}"
        raise AssertionError(f"{call} returned {got}, expected {want} bytes: {hint}")
    print("check_dropout_traffic: correct (x, y, both gradients, and the mask twice when one is stored).")
