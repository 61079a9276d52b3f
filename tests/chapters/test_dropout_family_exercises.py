"""Chapter 13's exercise checks: reference solutions pass, typical mistakes fail by name, stubs fail."""

from __future__ import annotations

import math

import pytest
import torch
from stubs import STUBS

from dropoutlib.exercises.dropout_family import (
    check_alpha_constants,
    check_drop_path,
    check_gaussian_dropout,
)
from dropoutlib.nn.alpha import SELU_SATURATION, alpha_dropout
from dropoutlib.nn.drop_path import drop_path
from dropoutlib.nn.gaussian import gaussian_dropout

S = SELU_SATURATION

# --- reference answers -----------------------------------------------------------------------------------


def chapter_gaussian(x, p, training=True):
    if not training or p == 0:
        return x
    return x * (1 + math.sqrt(p / (1 - p)) * torch.randn_like(x))


def gaussian_with_normal(x, p, training=True):
    if not training:
        return x
    return x * torch.normal(torch.ones_like(x), math.sqrt(p / (1 - p)))


def library_gaussian(x, p, training=True):
    return gaussian_dropout(x, p, training)


def chapter_alpha(p):
    q = 1 - p
    a = (q + S**2 * p * q) ** -0.5
    return a, -a * S * p


def alpha_as_tensor(p):
    return torch.tensor(chapter_alpha(p))


def chapter_drop_path(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    keep = (torch.rand((x.shape[0],) + (1,) * (x.ndim - 1)) >= p).to(x.dtype)
    return x * keep / (1 - p)


def library_drop_path(x, p, training=True):
    return drop_path(x, p, training)


@pytest.mark.parametrize("answer", [chapter_gaussian, gaussian_with_normal, library_gaussian])
def test_gaussian_references_pass(answer, capsys):
    check_gaussian_dropout(answer)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("answer", [chapter_alpha, alpha_as_tensor, lambda p: list(chapter_alpha(p))])
def test_alpha_references_pass(answer, capsys):
    check_alpha_constants(answer)
    assert "correct" in capsys.readouterr().out


def test_alpha_reference_gives_the_library_output():
    x = torch.randn(1000)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    a, b = chapter_alpha(0.2)
    kept = torch.empty(1000).bernoulli_(0.8, generator=g2)
    by_hand = a * (kept * x + (1 - kept) * S) + b
    assert torch.allclose(alpha_dropout(x, 0.2, generator=g1), by_hand, atol=1e-5)


@pytest.mark.parametrize("answer", [chapter_drop_path, library_drop_path])
def test_drop_path_references_pass(answer, capsys):
    check_drop_path(answer)
    assert "correct" in capsys.readouterr().out


CHECKS = {
    check_gaussian_dropout: chapter_gaussian,
    check_alpha_constants: chapter_alpha,
    check_drop_path: chapter_drop_path,
}


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_checks_do_not_disturb_the_global_generator(check):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    check(CHECKS[check])
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("stub", STUBS, ids=lambda s: s.__name__)
def test_stubs_fail(check, stub):
    with pytest.raises(AssertionError):
        check(stub)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_non_functions_are_type_errors(check):
    with pytest.raises(TypeError, match="a function"):
        check(0.5)


# --- Gaussian dropout mistakes ---------------------------------------------------------------------------


def gaussian_with(std):
    def answer(x, p, training=True):
        if not training or p == 0:
            return x
        return x * (1 + std(p) * torch.randn_like(x))

    return answer


def bernoulli(x, p, training=True):
    if not training or p == 0:
        return x
    return x * (torch.rand_like(x) >= p) / (1 - p)


def mean_q(x, p, training=True):
    if not training or p == 0:
        return x
    return x * ((1 - p) + math.sqrt(p / (1 - p)) * torch.randn_like(x))


def one_number_per_row(x, p, training=True):
    if not training or p == 0:
        return x
    return x * (1 + math.sqrt(p / (1 - p)) * torch.randn(x.shape[0], 1, dtype=x.dtype))


_STORED = {}


def stored_noise(x, p, training=True):
    if not training or p == 0:
        return x
    key = (tuple(x.shape), p)
    if key not in _STORED:
        _STORED[key] = 1 + math.sqrt(p / (1 - p)) * torch.randn_like(x)
    return x * _STORED[key]


def gaussian_in_place(x, p, training=True):
    if not training or p == 0:
        return x
    return x.mul_(1 + math.sqrt(p / (1 - p)) * torch.randn_like(x))


def gaussian_ignores_training(x, p, training=True):
    return chapter_gaussian(x, p)


def gaussian_detached(x, p, training=True):
    return chapter_gaussian(x.detach(), p, training)


def additive(x, p, training=True):
    if not training or p == 0:
        return x
    return x + math.sqrt(p / (1 - p)) * torch.randn_like(x)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (gaussian_with(lambda p: math.sqrt(p)), "that is p:"),
        (gaussian_with(lambda p: math.sqrt(p * (1 - p))), "that is p q"),
        (gaussian_with(lambda p: math.sqrt((1 - p) / p)), "swapped p and q"),
        (gaussian_with(lambda p: p / (1 - p)), "as the standard deviation"),
        (gaussian_with(lambda p: 1.0), "the variance is 1 whatever p"),
        (gaussian_with(lambda p: 0.9), "expected p/q"),
        (bernoulli, "that is Bernoulli dropout"),
        (mean_q, "about q"),
        (one_number_per_row, "every row is multiplied by one number"),
        (stored_noise, "exactly the same noise"),
        (gaussian_in_place, "changed x in place"),
        (gaussian_ignores_training, "training=False\\) changed the input"),
        (gaussian_detached, "not connected to x"),
        (additive, "you added noise"),
        (lambda x, p, training=True: x.numpy(), "return a torch.Tensor"),
    ],
)
def test_gaussian_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_gaussian_dropout(answer)


# --- alpha constants mistakes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda p: chapter_alpha(p)[::-1], "returned \\(b, a\\)"),
        (lambda p: (chapter_alpha(p)[0], -chapter_alpha(p)[1]), "wrong sign"),
        (lambda p: (chapter_alpha(p)[0], -S * p), "forgets the factor a"),
        (lambda p: (chapter_alpha(p)[0], 0.0), "leaves the mean"),
        (lambda p: ((p + S**2 * p * (1 - p)) ** -0.5, 0.0), "swapped p and q"),
        (lambda p: ((1 - p + S**2 * p) ** -0.5, 0.0), "subtract the squared mean"),
        (lambda p: ((1 - p + S**2 * p * (1 - p)), 0.0), "not Var\\[u\\] itself"),
        (lambda p: ((1 - p + S**2 * p * (1 - p)) ** -1, 0.0), "not its inverse"),
        (lambda p: ((1 - p + S**2 * p * (1 - p)) ** 0.5, 0.0), "inverse of the standard deviation"),
        (lambda p: (1.0, 0.0), "expected a ="),
        (lambda p: chapter_alpha(p)[0], "return a pair"),
        (lambda p: ("a", "b"), "should return a number"),
    ],
)
def test_alpha_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_alpha_constants(answer)


# --- DropPath mistakes -----------------------------------------------------------------------------------


def path_with(make_keep, scale=lambda p: 1 / (1 - p)):
    def answer(x, p, training=True):
        if not training or p == 0:
            return x
        if p == 1:
            return x * 0
        return x * make_keep(x, p).to(x.dtype) * scale(p)

    return answer


def per_example_shape(x):
    return (x.shape[0],) + (1,) * (x.ndim - 1)


element_wise = path_with(lambda x, p: torch.rand_like(x) >= p)
same_features = path_with(lambda x, p: torch.rand((1,) + x.shape[1:]) >= p)
whole_batch = path_with(lambda x, p: torch.rand(()) >= p)
keeps_with_p = path_with(lambda x, p: torch.rand(per_example_shape(x)) < p)
two_d_only = path_with(lambda x, p: torch.rand(x.shape[0], 1) >= p)


def path_in_place(x, p, training=True):
    if not training or p == 0:
        return x
    return x.mul_((torch.rand(per_example_shape(x)) >= p) / (1 - p))


def path_no_p_one(x, p, training=True):
    if not training or p == 0:
        return x
    return x * (torch.rand(per_example_shape(x)) >= p) / (1 - p)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (element_wise, "zeroed single values"),
        (same_features, "zeroed single values"),
        (whole_batch, "dropped every example|dropped none"),
        (keeps_with_p, "about 1-p"),
        (path_with(lambda x, p: torch.rand(per_example_shape(x)) >= p, lambda p: 1.0), "forgets"),
        (path_with(lambda x, p: torch.rand(per_example_shape(x)) >= p, lambda p: 1 / p), "1/p"),
        (path_with(lambda x, p: torch.rand(per_example_shape(x)) >= p, lambda p: 1 - p), "1-p ="),
        (path_in_place, "changed x in place"),
        (path_no_p_one, "NaN"),
        (lambda x, p, training=True: chapter_drop_path(x, p), "training=False\\) changed the input"),
        (lambda x, p, training=True: chapter_drop_path(x.detach(), p, training), "not connected"),
        (two_d_only, "your function raised RuntimeError"),
    ],
)
def test_drop_path_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_drop_path(answer)


def test_drop_path_with_the_same_coins_every_call_is_named():
    stored = {}

    def answer(x, p, training=True):
        if not training or p == 0:
            return x
        key = (tuple(x.shape), p)
        if key not in stored:
            stored[key] = (torch.rand(per_example_shape(x)) >= p).to(x.dtype)
        return x * stored[key] / (1 - p)

    with pytest.raises(AssertionError, match="exactly the same examples"):
        check_drop_path(answer)
