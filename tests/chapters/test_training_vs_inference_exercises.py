"""Chapter 3 exercise checks: references pass, typical mistakes fail by name, stubs fail."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from stubs import STUBS
from torch import nn

from dropoutlib.exercises.training_vs_inference import (
    check_all_ones_unit_std,
    check_dropout_module_modes,
    check_dropout_unit_test,
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


# --- a unit test for a dropout layer ------------------------------------------------------------------
# (the students' tests are called `unit_test_*` here, so that pytest does not collect them)


def _train_output(make_dropout, p, n=100_000):
    layer = make_dropout(p)
    layer.train()
    return layer, layer(torch.ones(n))


def unit_test_reference(make_dropout):
    p, n = 0.2, 100_000
    layer, out = _train_output(make_dropout, p, n)
    dropped = (out == 0).float().mean().item()
    assert abs(dropped - p) < 5 * math.sqrt(p * (1 - p) / n), f"dropped {dropped:.4f}, expected {p}"
    kept = out[out != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - p))), "kept units must be scaled by 1/(1-p)"
    layer.eval()
    x = torch.randn(50)
    assert torch.equal(layer(x), x), "evaluation mode must return the input"


def unit_test_statistics(make_dropout):
    """Another right answer: mean, fraction of zeros and eval mode, at two values of p."""
    for p in (0.1, 0.7):
        n = 200_000
        layer, out = _train_output(make_dropout, p, n)
        assert abs(out.mean().item() - 1) < 5 * math.sqrt(p / (1 - p) / n)
        assert abs((out == 0).float().mean().item() - p) < 5 * math.sqrt(p * (1 - p) / n)
        layer.eval()
        assert torch.equal(layer(torch.ones(10)), torch.ones(10))


def test_unit_test_references_pass(capsys):
    for answer in (unit_test_reference, unit_test_statistics):
        check_dropout_unit_test(answer)
        assert "catches all 6 buggy layers" in capsys.readouterr().out


def unit_test_at_half(make_dropout):
    p = 0.5
    layer, out = _train_output(make_dropout, p)
    assert abs((out == 0).float().mean().item() - p) < 0.01
    kept = out[out != 0]
    assert torch.allclose(kept, torch.full_like(kept, 2.0))
    layer.eval()
    assert torch.equal(layer(torch.ones(5)), torch.ones(5))


def unit_test_mean_only(make_dropout):
    p = 0.2
    layer, out = _train_output(make_dropout, p)
    assert abs(out.mean().item() - 1) < 0.02
    layer.eval()
    assert torch.equal(layer(torch.ones(5)), torch.ones(5))


def unit_test_zeros_and_a_ceiling(make_dropout):
    p = 0.2
    layer, out = _train_output(make_dropout, p)
    assert abs((out == 0).float().mean().item() - p) < 0.01
    assert out.max().item() <= 1 / (1 - p) + 1e-6, "no unit may be scaled beyond 1/(1-p)"
    layer.eval()
    assert torch.equal(layer(torch.ones(5)), torch.ones(5))


def unit_test_training_only(make_dropout):
    p = 0.2
    _, out = _train_output(make_dropout, p)
    assert abs((out == 0).float().mean().item() - p) < 0.01
    kept = out[out != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1.25))


def unit_test_eval_not_dropping(make_dropout):
    p = 0.2
    layer, out = _train_output(make_dropout, p)
    assert abs((out == 0).float().mean().item() - p) < 0.01
    kept = out[out != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1.25))
    layer.eval()
    assert (layer(torch.ones(1000)) != 0).all()


def unit_test_too_strict(make_dropout):
    p = 0.2
    _, out = _train_output(make_dropout, p, n=1_000)
    assert (out == 0).float().mean().item() == p, "exactly 20% dropped"


def unit_test_returns_a_verdict(make_dropout):
    _, out = _train_output(make_dropout, 0.2)
    return abs(out.mean().item() - 1) < 0.02


def unit_test_never_builds(make_dropout):
    assert True


def unit_test_checks_the_class(make_dropout):
    """Wrong: every buggy layer fails it for not being an nn.Dropout, whatever it computes."""
    assert isinstance(make_dropout(0.2), nn.Dropout), "not a dropout layer"


def unit_test_checks_the_repr(make_dropout):
    assert repr(make_dropout(0.2)) == "Dropout(p=0.2, inplace=False)"


def unit_test_checks_the_type_name(make_dropout):
    p = 0.2
    layer, out = _train_output(make_dropout, p)
    assert type(layer).__name__ == "Dropout"
    assert abs(out.mean().item() - 1) < 0.02


UNIT_TEST_MISTAKES = [
    (unit_test_at_half, "scales the kept units by 1/p .*uses only p = 0.5"),
    (unit_test_mean_only, "drops a fraction 1-p of the units and scales the survivors by 1/p"),
    (unit_test_zeros_and_a_ceiling, "forgets the 1/\\(1-p\\) scaling in training"),
    (unit_test_training_only, "still drops in evaluation mode"),
    (unit_test_eval_not_dropping, "multiplies by 1-p in evaluation mode"),
    (unit_test_too_strict, "fails the correct torch.nn.Dropout"),
    (unit_test_returns_a_verdict, "returned True"),
    (unit_test_never_builds, "never builds a layer"),
    (unit_test_checks_the_class, "fails a correct dropout layer that is not a torch.nn.Dropout.*class"),
    (unit_test_checks_the_repr, "fails a correct dropout layer that is not a torch.nn.Dropout.*repr"),
    (unit_test_checks_the_type_name, "fails a correct dropout layer that is not a torch.nn.Dropout"),
]


@pytest.mark.parametrize(("answer", "message"), UNIT_TEST_MISTAKES)
def test_unit_test_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_dropout_unit_test(answer)


def test_every_buggy_layer_is_really_wrong_and_p_half_hides_three():
    """Each buggy layer fails the reference test (at p = 0.2); the ones marked so look right at 0.5."""
    from dropoutlib.exercises.training_vs_inference import _BUGGY_LAYERS

    for build, bug, hidden_at_half in _BUGGY_LAYERS:
        with pytest.raises(AssertionError):
            unit_test_reference(build)
        layer = build(0.5)
        torch.manual_seed(0)
        out = layer.train()(torch.ones(100_000))
        looks_right = abs((out == 0).float().mean().item() - 0.5) < 0.01 and torch.allclose(
            out[out != 0], torch.tensor(2.0)) and torch.equal(layer.eval()(torch.ones(5)), torch.ones(5))
        assert looks_right == hidden_at_half, bug
    assert sum(hidden for _, _, hidden in _BUGGY_LAYERS) == 3


@pytest.mark.parametrize("stub", STUBS)
def test_unit_test_stubs_fail(stub):
    with pytest.raises(AssertionError, match="NotImplementedError|never builds a layer"):
        check_dropout_unit_test(stub)


def test_unit_test_check_leaves_the_global_rng_alone():
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    check_dropout_unit_test(unit_test_reference)
    assert torch.equal(torch.rand(3), expected)
