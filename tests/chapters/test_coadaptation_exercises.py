"""Chapter 5's exercise checks: reference solutions pass, typical mistakes fail by name, stubs fail."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from dropoutlib.exercises.coadaptation import (
    check_ablation_importance,
    check_copies_equilibrium,
    check_gini,
)
from dropoutlib.experiments.coadaptation import ablation_importance, gini


@pytest.mark.parametrize("check", [check_gini, check_copies_equilibrium])
def test_a_non_number_is_named(check):
    with pytest.raises(AssertionError, match="should return a number"):
        check(lambda *args: "0.5")


# --- importance by ablation ----------------------------------------------------------------------


def _ablation_losses(model, x, y, reduction="mean"):
    """Hidden activations (eval mode) and the loss of the network with each unit zeroed."""
    model.eval()
    with torch.no_grad():
        h = model[:-1](x)
        losses = []
        for j in range(h.shape[1]):
            ablated = h.clone()
            ablated[:, j] = 0
            losses.append(F.cross_entropy(model[-1](ablated), y, reduction=reduction))
        base = F.cross_entropy(model[-1](h), y, reduction=reduction)
    model.train()
    return torch.stack(losses), base


def chapter_solution(model, x, y):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        h = model[:-1](x)
        base = F.cross_entropy(model[-1](h), y)
        increases = []
        for j in range(h.shape[1]):
            ablated = h.clone()
            ablated[:, j] = 0
            increases.append(F.cross_entropy(model[-1](ablated), y) - base)
    model.train(was_training)
    return torch.stack(increases)


def as_numpy_list(model, x, y):
    return chapter_solution(model, x, y).numpy().tolist()


@pytest.mark.parametrize("answer", [ablation_importance, chapter_solution, as_numpy_list])
def test_ablation_references_pass(answer, capsys):
    check_ablation_importance(answer)
    assert "Correct" in capsys.readouterr().out


def wrong_sign(model, x, y):
    return -chapter_solution(model, x, y)


def ablated_losses(model, x, y):
    return _ablation_losses(model, x, y)[0]


def summed_losses(model, x, y):
    losses, base = _ablation_losses(model, x, y, reduction="sum")
    return losses - base


def accuracy_drop(model, x, y):
    model.eval()
    with torch.no_grad():
        h = model[:-1](x)
        base = (model[-1](h).argmax(1) == y).double().mean()
        drops = []
        for j in range(h.shape[1]):
            ablated = h.clone()
            ablated[:, j] = 0
            drops.append(base - (model[-1](ablated).argmax(1) == y).double().mean())
    model.train()
    return torch.stack(drops)


def bias_left_on(model, x, y):
    model.eval()
    with torch.no_grad():
        base = F.cross_entropy(model(x), y)
        increases = []
        for j in range(model[0].out_features):
            twin = copy.deepcopy(model)
            twin[0].weight[j] = 0  # the bias still feeds relu(b_j) to the next layer
            increases.append(F.cross_entropy(twin(x), y) - base)
    model.train()
    return torch.stack(increases)


def dropout_left_on(model, x, y):
    with torch.no_grad():
        h = model[:-1](x)  # training mode: the Dropout layer draws a mask
        base = F.cross_entropy(model[-1](h), y)
        increases = []
        for j in range(h.shape[1]):
            ablated = h.clone()
            ablated[:, j] = 0
            increases.append(F.cross_entropy(model[-1](ablated), y) - base)
    return torch.stack(increases)


def zeroes_weights_in_place(model, x, y):
    result = chapter_solution(model, x, y)
    with torch.no_grad():
        model[-1].weight[:, 0] = 0
    return result


def leaves_eval_mode(model, x, y):
    result = chapter_solution(model, x, y)
    model.eval()
    return result


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (wrong_sign, "wrong sign"),
        (ablated_losses, "subtract the loss of the full network"),
        (summed_losses, "summed the cross-entropy"),
        (accuracy_drop, "drop in accuracy"),
        (bias_left_on, "not its bias"),
        (dropout_left_on, "dropout was still active"),
        (zeroes_weights_in_place, "changed the model"),
        (leaves_eval_mode, "left the model in evaluation mode"),
        (lambda model, x, y: chapter_solution(model, x, y)[:-1], "for a layer of 6 hidden units"),
        (lambda model, x, y: chapter_solution(model, x, y).sum(), "for a layer of 6 hidden units"),
        (lambda model, x, y: "importance", "return a 1-D tensor"),
        (lambda model, x, y: chapter_solution(model, x, y) * 1.5, "expected"),
    ],
)
def test_ablation_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_ablation_importance(answer)


def test_ablation_check_does_not_disturb_the_global_generator():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    check_ablation_importance(ablation_importance)
    assert torch.equal(torch.rand(3), expected)


# --- Gini coefficient ----------------------------------------------------------------------------


def chapter_gini(values):
    v = torch.sort(values.clamp_min(0)).values
    n = len(v)
    ranks = torch.arange(1, n + 1, dtype=v.dtype)
    return float(((2 * ranks - n - 1) * v).sum() / (n * v.sum()))


def pairwise_gini(values):
    v = values.clamp_min(0)
    return (v[:, None] - v[None, :]).abs().sum() / (2 * len(v) * v.sum())


@pytest.mark.parametrize("answer", [gini, chapter_gini, pairwise_gini])
def test_gini_references_pass(answer, capsys):
    check_gini(answer)
    assert "Correct" in capsys.readouterr().out


def unsorted_gini(values):
    v = values.clamp_min(0)
    n = len(v)
    return float(((2 * torch.arange(1, n + 1) - n - 1) * v).sum() / (n * v.sum()))


def descending_gini(values):
    v = torch.sort(values.clamp_min(0), descending=True).values
    n = len(v)
    return float(((2 * torch.arange(1, n + 1) - n - 1) * v).sum() / (n * v.sum()))


def unclipped_gini(values):
    v = torch.sort(values).values
    n = len(v)
    return float(((2 * torch.arange(1, n + 1) - n - 1) * v).sum() / (n * v.sum()))


def sample_gini(values):
    return chapter_gini(values) * len(values) / (len(values) - 1)


def zero_based_ranks(values):
    v = torch.sort(values.clamp_min(0)).values
    n = len(v)
    return float(((2 * torch.arange(n) - n - 1) * v).sum() / (n * v.sum()))


def sorts_in_place(values):
    values.clamp_(min=0)
    return chapter_gini(values)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (unsorted_gini, "sorted increasingly"),
        (descending_gini, "INCREASING"),
        (unclipped_gini, "negative importances must count as 0"),
        (sample_gini, "n/\\(n-1\\)"),
        (zero_based_ranks, "from 1 to n"),
        (sorts_in_place, "in place"),
        (lambda values: float(values.std() / values.mean()), "expected"),
    ],
)
def test_gini_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_gini(answer)


# --- the copies' equilibrium ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [lambda n, p, c: c / (n + p / (1 - p)), lambda n, p, c: c * (1 - p) / (n * (1 - p) + p),
     lambda n, p, c: np.float64(c) / (n + p / (1 - p))],
)
def test_equilibrium_references_pass(answer, capsys):
    check_copies_equilibrium(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda n, p, c: c / n, "ignores dropout"),
        (lambda n, p, c: c / (n + p), "variance of m_i/q is p/q"),
        (lambda n, p, c: c / (n + (1 - p) / p), "swaps p and q|ZeroDivisionError"),
        (lambda n, p, c: c * (1 - p) / n, "multiplies c/n by q"),
        (lambda n, p, c: c / (n * (1 + p / (1 - p))), "once per weight"),
        (lambda n, p, c: c / (n + p / (1 - p)) ** 2, "expected c / \\(n \\+ p/q\\)"),
    ],
)
def test_equilibrium_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_copies_equilibrium(answer)


def test_swapped_p_and_q_is_named_before_division_by_zero():
    with pytest.raises(AssertionError, match="swaps p and q"):
        check_copies_equilibrium(lambda n, p, c: c / (n + (1 - p) / p) if p > 0 else c / n)
