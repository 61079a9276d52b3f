"""Chapter 3 exercise checks: references pass, typical mistakes fail by name, stubs fail."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from stubs import STUBS
from torch import nn

from dropoutlib.exercises.inference import (
    check_all_ones_unit_std,
    check_dropout_module_modes,
    check_keep_prob_conversion,
    check_test_time_weight_scaling,
)

# --- keep_prob -> p ----------------------------------------------------------------------------------


def test_keep_prob_reference_passes(capsys):
    check_keep_prob_conversion(lambda keep_prob: 1 - keep_prob)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda k: k, "unchanged"),
        (lambda k: 1 / k, "1 / keep_prob"),
        (lambda k: 2 - k, "not a probability"),
        (lambda k: (1 - k) / 2, "expected"),
        (lambda k: "0.2", "should return a number"),
    ],
)
def test_keep_prob_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_keep_prob_conversion(answer)


@pytest.mark.parametrize("stub", STUBS)
def test_keep_prob_stubs_fail(stub):
    with pytest.raises(AssertionError):
        check_keep_prob_conversion(stub)


def test_keep_prob_rejects_a_non_function():
    with pytest.raises(TypeError, match="a function"):
        check_keep_prob_conversion(0.2)


# --- test-time weight scaling ------------------------------------------------------------------------


def _in_place(weight, p):
    weight.mul_(1 - p)
    return weight


@pytest.mark.parametrize(
    "answer", [lambda w, p: (1 - p) * w, lambda w, p: w * (1 - p), lambda w, p: w - p * w]
)
def test_weight_scaling_references_pass(answer, capsys):
    check_test_time_weight_scaling(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda w, p: p * w, "multiplied the weights by p"),
        (lambda w, p: w / (1 - p), "divided the weights by 1 - p"),
        (lambda w, p: w / p, "divided the weights by p"),
        (lambda w, p: w.clone(), "unchanged"),
        (_in_place, "in place"),
        (lambda w, p: ((1 - p) * w).tolist(), "torch.Tensor"),
        (lambda w, p: ((1 - p) * w).T, "shape"),
        (lambda w, p: (1 - p) * w + 1, "not \\(1 - p\\) \\* weight"),
    ],
)
def test_weight_scaling_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_test_time_weight_scaling(answer)


@pytest.mark.parametrize("stub", STUBS)
def test_weight_scaling_stubs_fail(stub):
    with pytest.raises(AssertionError):
        check_test_time_weight_scaling(stub)


def test_weight_scaling_rejects_a_class():
    with pytest.raises(TypeError):
        check_test_time_weight_scaling(nn.Linear)


# --- module that respects the mode -------------------------------------------------------------------


class _Base(nn.Module):
    def __init__(self, in_features, hidden, out_features, p=0.5):
        super().__init__()
        self.p = p
        self.hidden = nn.Linear(in_features, hidden)
        self.out = nn.Linear(hidden, out_features)

    def features(self, x):
        return torch.relu(self.hidden(x))


class Reference(_Base):
    def forward(self, x):
        h = self.features(x)
        if self.training and self.p > 0:
            h = h * (torch.rand_like(h) >= self.p).to(h.dtype) / (1 - self.p)
        return self.out(h)


class WithFunctional(_Base):
    def forward(self, x):
        return self.out(F.dropout(self.features(x), self.p, training=self.training))


class WithModule(_Base):
    def __init__(self, in_features, hidden, out_features, p=0.5):
        super().__init__(in_features, hidden, out_features, p)
        self.drop = nn.Dropout(p)

    def forward(self, x):
        return self.out(self.drop(self.features(x)))


class Leaky(_Base):
    def forward(self, x):
        return self.out(F.dropout(self.features(x), self.p))


class NeverDrops(_Base):
    def forward(self, x):
        return self.out(F.dropout(self.features(x), self.p, training=False))


class HardCodedP(_Base):
    def forward(self, x):
        return self.out(F.dropout(self.features(x), 0.5, training=self.training))


class Unscaled(_Base):
    def forward(self, x):
        h = self.features(x)
        if self.training:
            h = h * (torch.rand_like(h) >= self.p).to(h.dtype)
        return self.out(h)


class WrongSignature(nn.Module):
    def __init__(self):
        super().__init__()


class StubForward(_Base):
    def forward(self, x):
        raise NotImplementedError


class StubReturnsNone(_Base):
    def forward(self, x):
        return None


class StubInit(nn.Module):
    def __init__(self, in_features, hidden, out_features, p=0.5):
        raise NotImplementedError


@pytest.mark.parametrize("answer", [Reference, WithFunctional, WithModule])
def test_module_references_pass(answer, capsys):
    check_dropout_module_modes(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (Leaky, "in eval mode two calls gave different outputs"),
        (NeverDrops, "in train mode two calls gave the same output"),
        (HardCodedP, "ignores its p argument"),
        (Unscaled, "scaled by 1 / \\(1 - p\\)"),
        (WrongSignature, "could not build"),
    ],
)
def test_module_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_dropout_module_modes(answer)


@pytest.mark.parametrize("stub", [StubForward, StubReturnsNone, StubInit])
def test_module_stubs_fail(stub):
    with pytest.raises(AssertionError):
        check_dropout_module_modes(stub)


@pytest.mark.parametrize("answer", [Reference(4, 8, 2), lambda x: x, "MLP"])
def test_module_check_wants_a_module_class(answer):
    with pytest.raises(TypeError, match="CLASS"):
        check_dropout_module_modes(answer)


def test_module_check_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_dropout_module_modes(Reference)
    assert torch.equal(torch.rand(3), expected)


# --- std of the all-ones unit -----------------------------------------------------------------------


def test_unit_std_reference_passes(capsys):
    check_all_ones_unit_std(lambda n, p: math.sqrt(n * p / (1 - p)))
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda n, p: math.sqrt(n * p * (1 - p)), "std of the number of kept inputs"),
        (lambda n, p: n * p / (1 - p), "variance; take its square root"),
        (lambda n, p: n * p * (1 - p), "variance of the number of kept inputs"),
        (lambda n, p: math.sqrt(n * (1 - p) / p), "swapped"),
        (lambda n, p: math.sqrt(n), "expected"),
    ],
)
def test_unit_std_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_all_ones_unit_std(answer)


@pytest.mark.parametrize("stub", STUBS)
def test_unit_std_stubs_fail(stub):
    with pytest.raises(AssertionError):
        check_all_ones_unit_std(stub)
