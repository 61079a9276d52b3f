"""Chapter 1's exercise checks: reference solutions pass, typical mistakes fail by name, stubs fail."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dropoutlib.exercises.overfitting import (
    check_collapsed_line,
    check_draws_needed,
    check_expected_kept_units,
    check_mask_probability,
    check_subnetwork_count,
    check_total_variation,
    check_underfitting,
)
from dropoutlib.experiments.overfitting import total_variation

CHECKS = [check_subnetwork_count, check_mask_probability, check_expected_kept_units,
          check_total_variation, check_draws_needed]


@pytest.mark.parametrize("check", CHECKS)
def test_a_non_number_is_named(check):
    with pytest.raises(AssertionError, match="should return a number"):
        check(lambda *args: "42")


# --- counting sub-networks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [lambda hidden: 2 ** sum(hidden), lambda hidden: math.prod(2**h for h in hidden),
     lambda hidden: 2.0 ** sum(hidden)],
)
def test_subnetwork_count_references_pass(answer, capsys):
    check_subnetwork_count(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda hidden: 2 ** len(hidden), "you counted layers"),
        (lambda hidden: 2 * sum(hidden), "multiply"),
        (lambda hidden: 2 ** (sum(hidden) + 2), "input or output unit"),
        (lambda hidden: sum(hidden), "number of droppable units"),
        (lambda hidden: math.comb(sum(hidden), sum(hidden) // 2), "exactly half"),
        (lambda hidden: sum(hidden) ** 2, "expected 2\\*\\*"),
        (lambda hidden: torch.tensor(2.0) ** sum(hidden), "overflowed"),
    ],
)
def test_subnetwork_count_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_subnetwork_count(answer)


# --- probability of one mask -------------------------------------------------------------------------


def _reference_mask_probability(mask, p):
    kept = int(mask.sum())
    return (1 - p) ** kept * p ** (len(mask) - kept)


def _vectorized_mask_probability(mask, p):
    return torch.where(mask.bool(), 1 - p, p).prod()


@pytest.mark.parametrize("answer", [_reference_mask_probability, _vectorized_mask_probability])
def test_mask_probability_references_pass(answer, capsys):
    check_mask_probability(answer)
    assert "q**k * p**(n - k)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda m, p: (1 - p) ** int(m.sum()), "the .* dropped units must also be dropped"),
        (lambda m, p: p ** int(m.sum()) * (1 - p) ** (len(m) - int(m.sum())), "swapped"),
        (lambda m, p: math.comb(len(m), int(m.sum())) * _reference_mask_probability(m, p),
         "ANY arrangement"),
        (lambda m, p: 0.5 ** len(m), "only at p = 0.5"),
        (lambda m, p: 2.0 * _reference_mask_probability(m, p) + 1.0, "not a probability"),
        (lambda m, p: _reference_mask_probability(m, p) / 2, "expected q\\*\\*k"),
    ],
)
def test_mask_probability_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_mask_probability(answer)


def test_the_published_mistake_is_called_out():
    with pytest.raises(AssertionError, match="published mistake"):
        check_mask_probability(lambda m, p: (1 - p) ** int(m.sum()))


# --- expected number of kept units -------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [lambda hidden, p: sum(hidden) * (1 - p), lambda hidden, p: np.sum(hidden) * (1 - p),
     lambda hidden, p: sum(h * (1 - p) for h in hidden)],
)
def test_expected_kept_references_pass(answer, capsys):
    check_expected_kept_units(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda hidden, p: sum(hidden) * p, "DROPPED"),
        (lambda hidden, p: len(hidden) * (1 - p), "number of layers"),
        (lambda hidden, p: sum(hidden) / (1 - p), "inverted"),
        (lambda hidden, p: (1 - p) ** sum(hidden), "ALL units are kept"),
        (lambda hidden, p: sum(hidden) * (1 - p) + 1, "expected n \\* \\(1 - p\\)"),
    ],
)
def test_expected_kept_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_expected_kept_units(answer)


# --- total variation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        lambda v: (v[1:] - v[:-1]).abs().sum(),
        lambda v: v.diff().abs().sum().item(),
        lambda v: float(np.abs(np.diff(np.asarray(v))).sum()),
        lambda v: sum(abs(float(b) - float(a)) for a, b in zip(v[:-1], v[1:], strict=True)),
    ],
)
def test_total_variation_references_pass(answer, capsys):
    check_total_variation(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda v: v.diff().sum(), "SIGNED differences"),
        (lambda v: v.diff().pow(2).sum(), "SQUARED"),
        (lambda v: v.diff().abs().mean(), "MEAN absolute difference"),
        (lambda v: v.abs().sum(), "size of the curve"),
        (lambda v: v.max() - v.min(), "range"),
        (lambda v: 2 * v.diff().abs().sum(), "expected"),
    ],
)
def test_total_variation_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_total_variation(answer)


def test_total_variation_check_does_not_let_the_answer_change_its_curves():
    def destructive(values):
        result = values.diff().abs().sum()
        values.zero_()
        return result

    check_total_variation(destructive)  # each call gets its own copy: still correct


# --- too much dropout: underfitting ------------------------------------------------------------------



def _underfits(fit, line_train, line_tv):
    return fit.train_loss > line_train and fit.roughness < line_tv


@pytest.mark.parametrize(
    "answer",
    [
        _underfits,
        lambda fit, lt, lv: np.bool_(fit.train_loss > lt) & np.bool_(fit.roughness < lv),
        lambda fit, lt, lv: torch.tensor(fit.train_loss > lt and total_variation(fit.prediction) < lv),
        lambda fit, lt, lv: not (fit.train_loss <= lt or fit.roughness >= lv),
    ],
)
def test_underfitting_references_pass(answer, capsys):
    check_underfitting(answer)
    assert "Correct" in capsys.readouterr().out


UNDERFITTING_MISTAKES = [
    (lambda f, lt, lv: f.train_loss > lt, "training loss only"),
    (lambda f, lt, lv: f.roughness < lv, "total variation only"),
    (lambda f, lt, lv: f.train_loss < lt and f.roughness < lv, "training-loss comparison is reversed"),
    (lambda f, lt, lv: f.train_loss > lt and f.roughness > lv, "total-variation comparison is reversed"),
    (lambda f, lt, lv: f.test_loss > lt and f.roughness < lv, "TEST loss"),
    (lambda f, lt, lv: f.train_loss > lt or f.roughness < lv, "EITHER sign"),
    (lambda f, lt, lv: f.train_loss < lt and f.roughness > lv, "you flag the OVERFIT"),
    (lambda f, lt, lv: False, "never says True"),
    (lambda f, lt, lv: True, "always says True"),
    (lambda f, lt, lv: f.train_loss > 2 * lt and f.roughness < lv, "your function says False, expected True"),
]


@pytest.mark.parametrize(("answer", "message"), UNDERFITTING_MISTAKES)
def test_underfitting_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_underfitting(answer)


def test_underfitting_messages_are_distinct():
    fragments = [message for _, message in UNDERFITTING_MISTAKES]
    assert len(set(fragments)) == len(fragments)
    messages = set()
    for answer, _ in UNDERFITTING_MISTAKES:
        with pytest.raises(AssertionError) as caught:
            check_underfitting(answer)
        messages.add(str(caught.value))
    assert len(messages) == len(UNDERFITTING_MISTAKES)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda f, lt, lv: f, "should return True or False, got ToyFit"),
        (lambda f, lt, lv: 1, "should return True or False, got 1"),
        (lambda f, lt, lv: "yes", "should return True or False"),
    ],
)
def test_underfitting_wants_a_verdict(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_underfitting(answer)


def test_the_chapter_fits_at_high_p_underfit():
    """The cases of the check are made-up fits: the rule also holds for the chapter's numbers."""
    from dropoutlib.exercises.overfitting import _LINE_TRAIN, _underfitting_cases

    cases = _underfitting_cases()
    assert [round(f.roughness, 4) for f in cases] == [6.59, 0.198, 2.7, 5.1, 2.0, 1.38]
    assert sum(_underfits(f, _LINE_TRAIN, 3.0) for f in cases) == 2


# --- the demo as printed: a network without activations is a line -----------------------------------


def _collapse(model):
    slope, shift = torch.ones(1, 1), torch.zeros(1)
    for layer in model:
        if isinstance(layer, nn.Linear):
            slope, shift = layer.weight @ slope, layer.weight @ shift + layer.bias
    return slope.item(), shift.item()


def _collapse_by_evaluation(model):
    with torch.no_grad():
        b = model(torch.zeros(1, 1))
        return torch.cat([model(torch.ones(1, 1)) - b, b]).flatten()


def _linear_layers(model):
    return [layer for layer in model if isinstance(layer, nn.Linear)]


@pytest.mark.parametrize(
    "answer",
    [_collapse, _collapse_by_evaluation, lambda m: list(_collapse(m)),
     lambda m: np.array(_collapse(m)), lambda m: tuple(torch.tensor(v) for v in _collapse(m))],
)
def test_collapsed_line_references_pass(answer, capsys):
    check_collapsed_line(answer)
    assert "Correct" in capsys.readouterr().out


def _changes_the_weights(model):
    result = _collapse(model)
    with torch.no_grad():
        _linear_layers(model)[0].weight.mul_(2)
    return result


COLLAPSE_MISTAKES = [
    (lambda m: (_collapse(m)[0], 0.0), "returned the intercept 0"),
    (lambda m: (_collapse(m)[0], _linear_layers(m)[-1].bias.item()), "only the output layer's bias"),
    (lambda m: (_collapse(m)[0], sum(layer.bias.sum().item() for layer in _linear_layers(m))),
     "added up the biases as they are"),
    (lambda m: _collapse(m)[::-1], "returned \\(b, w\\)"),
    (lambda m: (sum(_collapse(m)), _collapse(m)[1]), "f\\(1\\) = w \\+ b"),
    (lambda m: (_collapse(m)[0], _collapse(m)[1] + 1), "right slope but intercept"),
    (lambda m: (1.0, 2.0), "product of the weight matrices"),
    (lambda m: m, "returned a model"),
    (lambda m: _collapse(m)[0], "should return two numbers"),
    (lambda m: (_collapse(m)[0], "b"), "should return a number"),
    (_changes_the_weights, "changed the model's weights"),
]


@pytest.mark.parametrize(("answer", "message"), COLLAPSE_MISTAKES)
def test_collapsed_line_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_collapsed_line(answer)


def test_collapsed_line_messages_are_distinct():
    messages = set()
    for answer, _ in COLLAPSE_MISTAKES:
        with pytest.raises(AssertionError) as caught:
            check_collapsed_line(answer)
        messages.add(str(caught.value).split(")) ", 1)[-1])
    assert len(messages) == len(COLLAPSE_MISTAKES)


# --- how many draws ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [lambda se, n, effect, z: math.ceil((z * se * math.sqrt(n) / effect) ** 2),
     lambda se, n, effect, z: int(np.ceil(n * (z * se / effect) ** 2))],
)
def test_draws_needed_references_pass(answer, capsys):
    check_draws_needed(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda se, n, effect, z: (z * se * math.sqrt(n) / effect) ** 2, "round UP"),
        (lambda se, n, effect, z: math.floor((z * se * math.sqrt(n) / effect) ** 2), "round UP"),
        (lambda se, n, effect, z: math.ceil((z * se / effect) ** 2), "spread of the MEAN"),
        (lambda se, n, effect, z: math.ceil(z * se * math.sqrt(n) / effect), "SQUARE"),
        (lambda se, n, effect, z: math.ceil((se * math.sqrt(n) / effect) ** 2), "use z"),
        (lambda se, n, effect, z: math.ceil((z * se * n / effect) ** 2), "expected"),
        (lambda se, n, effect, z: None, "forget the `return`"),
    ],
)
def test_draws_needed_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_draws_needed(answer)
