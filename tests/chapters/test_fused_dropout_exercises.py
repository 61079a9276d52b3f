"""Chapter 14's exercise checks: reference solutions pass, typical mistakes fail by name, stubs fail."""

from __future__ import annotations

import pytest
import torch
from stubs import STUBS

from dropoutlib.exercises.fused_dropout import (
    check_dropout_traffic,
    check_philox_round,
    check_uniform_at,
)
from dropoutlib.experiments.fused_dropout import bytes_moved
from dropoutlib.fused import philox_uniform

M = 0xFFFFFFFF
A, B = 0xD2511F53, 0xCD9E8D57

# --- reference answers -----------------------------------------------------------------------------------


def chapter_round(counter, key):
    c0, c1, c2, c3 = counter
    k0, k1 = key
    pa, pb = A * c0, B * c2
    return (pb >> 32) ^ c1 ^ k0, pb & M, (pa >> 32) ^ c3 ^ k1, pa & M


def round_as_list(counter, key):
    return list(chapter_round(counter, key))


def chapter_uniform_at(seed, i, philox_round=chapter_round):
    counter, key = (i & M, i >> 32, 0, 0), (seed & M, seed >> 32)
    for _ in range(10):
        counter = philox_round(counter, key)
        key = ((key[0] + 0x9E3779B9) & M, (key[1] + 0xBB67AE85) & M)
    word = counter[0] - 2**32 if counter[0] >= 2**31 else counter[0]
    word = ~word if word < 0 else word
    return (torch.tensor(float(word)) * torch.tensor(4.6566127342e-10)).item()


def library_uniform_at(seed, i):
    return philox_uniform(seed, torch.tensor([i]))  # a one-element tensor is accepted


def chapter_traffic(n, itemsize, mask_itemsize):
    return n * (4 * itemsize + 2 * mask_itemsize)


def library_traffic(n, itemsize, mask_itemsize):
    return bytes_moved(n, itemsize, mask_itemsize=mask_itemsize, passes="forward_backward")


@pytest.mark.parametrize("answer", [chapter_round, round_as_list])
def test_round_references_pass(answer, capsys):
    check_philox_round(answer)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("answer", [chapter_uniform_at, library_uniform_at])
def test_uniform_references_pass(answer, capsys):
    check_uniform_at(answer)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("answer", [chapter_traffic, library_traffic])
def test_traffic_references_pass(answer, capsys):
    check_dropout_traffic(answer)
    assert "correct" in capsys.readouterr().out


# --- mistakes, each named --------------------------------------------------------------------------------


def round_no_mask(counter, key):
    c0, c1, c2, c3 = counter
    k0, k1 = key
    pa, pb = A * c0, B * c2
    return (pb >> 32) ^ c1 ^ k0, pb, (pa >> 32) ^ c3 ^ k1, pa


def round_hi_lo_swapped(counter, key):
    c0, c1, c2, c3 = counter
    k0, k1 = key
    pa, pb = A * c0, B * c2
    return (pb & M) ^ c1 ^ k0, pb >> 32, (pa & M) ^ c3 ^ k1, pa >> 32


def round_multipliers_swapped(counter, key):
    c0, c1, c2, c3 = counter
    k0, k1 = key
    pa, pb = B * c0, A * c2
    return (pb >> 32) ^ c1 ^ k0, pb & M, (pa >> 32) ^ c3 ^ k1, pa & M


def round_no_key(counter, key):
    c0, c1, c2, c3 = counter
    pa, pb = A * c0, B * c2
    return (pb >> 32) ^ c1, pb & M, (pa >> 32) ^ c3, pa & M


def round_keys_swapped(counter, key):
    c0, c1, c2, c3 = counter
    k0, k1 = key
    return chapter_round(counter, (k1, k0))


def round_order_wrong(counter, key):
    w = chapter_round(counter, key)
    return w[2], w[3], w[0], w[1]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (round_no_mask, "0xFFFFFFFF"),
        (round_hi_lo_swapped, "hi and lo are exchanged"),
        (round_multipliers_swapped, "multipliers are exchanged"),
        (round_no_key, "the key is missing"),
        (round_keys_swapped, "key words are exchanged"),
        (round_order_wrong, "wrong order"),
        (lambda counter, key: 3, "tuple of four ints"),
        (lambda counter, key: (1.0, 2.0, 3.0, 4.0), "must be an int"),
    ],
)
def test_round_mistakes_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_philox_round(answer)


def uniform_swapped(seed, i):
    return chapter_uniform_at(i, seed)


def uniform_no_bump(seed, i):
    counter, key = (i & M, i >> 32, 0, 0), (seed & M, seed >> 32)
    for _ in range(10):
        counter = chapter_round(counter, key)
    word = counter[0] - 2**32 if counter[0] >= 2**31 else counter[0]
    word = ~word if word < 0 else word
    return (torch.tensor(float(word)) * torch.tensor(4.6566127342e-10)).item()


def uniform_low_seed(seed, i):
    return chapter_uniform_at(seed & M, i)


def uniform_low_index(seed, i):
    return chapter_uniform_at(seed, i & M)


def uniform_divide(seed, i):
    counter, key = (i & M, i >> 32, 0, 0), (seed & M, seed >> 32)
    for _ in range(10):
        counter = chapter_round(counter, key)
        key = ((key[0] + 0x9E3779B9) & M, (key[1] + 0xBB67AE85) & M)
    return counter[0] / 2**32


def uniform_seven_rounds(seed, i):
    counter, key = (i & M, i >> 32, 0, 0), (seed & M, seed >> 32)
    for _ in range(7):
        counter = chapter_round(counter, key)
        key = ((key[0] + 0x9E3779B9) & M, (key[1] + 0xBB67AE85) & M)
    word = counter[0] - 2**32 if counter[0] >= 2**31 else counter[0]
    word = ~word if word < 0 else word
    return (torch.tensor(float(word)) * torch.tensor(4.6566127342e-10)).item()


def uniform_torch_rand(seed, i):
    return torch.rand(1, generator=torch.Generator().manual_seed(seed)).item()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (uniform_swapped, "seed and index are exchanged"),
        (uniform_no_bump, "not bumped"),
        (uniform_low_seed, "high 32 bits of the seed"),
        (uniform_low_index, "high 32 bits of the index"),
        (uniform_divide, "conversion differs"),
        (uniform_seven_rounds, "7 rounds"),
        (uniform_torch_rand, "compare each step"),
        (lambda seed, i: 1.5, r"not in \[0, 1\)"),
        (lambda seed, i: "0.5", "should return a number"),
    ],
)
def test_uniform_mistakes_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_uniform_at(answer)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda n, s, m: n * (4 * s + m), "counted once"),
        (lambda n, s, m: n * 4 * s, "mask is left out"),
        (lambda n, s, m: n * (2 * s + m), "only the forward pass"),
        (lambda n, s, m: n * (2 * s + 2 * m), "one tensor per pass is missing"),
        (lambda n, s, m: n * (3 * s + 2 * m), "one data tensor is missing"),
        (lambda n, s, m: 8 * n * (4 * s + 2 * m), "in bits"),
        (lambda n, s, m: n * (4 * s + 2 * m) + 1, "count the tensors"),
    ],
)
def test_traffic_mistakes_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_dropout_traffic(answer)


# --- stubs and bad arguments -----------------------------------------------------------------------------

CHECKS = [check_philox_round, check_uniform_at, check_dropout_traffic]


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("stub", STUBS)
def test_stubs_fail(check, stub):
    with pytest.raises(AssertionError):
        check(stub)


@pytest.mark.parametrize("check", CHECKS)
def test_not_a_function(check):
    with pytest.raises(TypeError, match="a function"):
        check(42)
