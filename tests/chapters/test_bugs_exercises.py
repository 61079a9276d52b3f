"""Chapter 11's exercise checks: reference solutions pass, typical mistakes fail by name, stubs fail."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dropoutlib.exercises.bugs import (
    check_eval_determinism_test,
    check_mc_predict,
    check_output_dropout_optimum,
)
from dropoutlib.experiments.bugs import careful_mc_predict, naive_mc_predict

CHECKS = [check_eval_determinism_test, check_mc_predict, check_output_dropout_optimum]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_checks_leave_the_global_generator_alone(check):
    references = {
        check_eval_determinism_test: chapter_is_deterministic,
        check_mc_predict: careful_mc_predict,
        check_output_dropout_optimum: lambda t, p: (1 - p) * t,
    }
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    check(references[check])
    assert torch.equal(torch.rand(3), expected)


# --- the determinism test ------------------------------------------------------------------------


def chapter_is_deterministic(model, x):
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return torch.equal(model(x), model(x))
    finally:
        model.train(was_training)


def with_tolerance(model, x):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        a, b = model(x), model(x)
    model.train(was_training)
    return torch.allclose(a, b, atol=1e-7)


def as_tensor_bool(model, x):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        same = (model(x) == model(x)).all()
    model.train(was_training)
    return same


@pytest.mark.parametrize("answer", [chapter_is_deterministic, with_tolerance, as_tensor_bool])
def test_determinism_references_pass(answer, capsys):
    check_eval_determinism_test(answer)
    assert "Correct" in capsys.readouterr().out


def in_training_mode(model, x):
    with torch.no_grad():
        return torch.equal(model(x), model(x))


def one_pass(model, x):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(x)
    model.train(was_training)
    return torch.equal(out, out)


def reseeds(model, x):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        torch.manual_seed(0)
        a = model(x)
        torch.manual_seed(0)
        b = model(x)
    model.train(was_training)
    return torch.equal(a, b)


def leaves_eval_mode(model, x):
    model.eval()
    with torch.no_grad():
        return torch.equal(model(x), model(x))


def with_gradient_step(model, x):
    result = chapter_is_deterministic(model, x)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    return result


def returns_a_string(model, x):
    return "yes" if chapter_is_deterministic(model, x) else "no"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (in_training_mode, "in training mode"),
        (one_pass, "compare at least two forward passes"),
        (reseeds, "without re-seeding"),
        (leaves_eval_mode, "left the model in another mode"),
        (with_gradient_step, "changed the model's"),
        (returns_a_string, "return True or False"),
        (lambda model, x: True, "ran the model 0 time"),
    ],
)
def test_determinism_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_eval_determinism_test(answer)


# --- Monte Carlo dropout that leaves BatchNorm alone ---------------------------------------------


def chapter_mc_predict(model, x, samples):
    modes = [m.training for m in model.modules()]
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.train()
    try:
        with torch.no_grad():
            return torch.stack([model(x).softmax(dim=-1) for _ in range(samples)]).mean(dim=0)
    finally:
        for m, mode in zip(model.modules(), modes, strict=True):
            m.training = mode


def vectorized(model, x, samples):
    """All samples in one pass: the batch holds `samples` copies of x (BatchNorm in eval mode allows it)."""
    modes = [m.training for m in model.modules()]
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.train()
    with torch.no_grad():
        probs = model(x.repeat(samples, 1)).softmax(dim=-1)
    for m, mode in zip(model.modules(), modes, strict=True):
        m.training = mode
    return probs.reshape(samples, len(x), -1).mean(dim=0)


@pytest.mark.parametrize("answer", [careful_mc_predict, chapter_mc_predict, vectorized])
def test_mc_references_pass(answer, capsys):
    check_mc_predict(answer)
    assert "Correct" in capsys.readouterr().out


def dropout_off(model, x, samples):
    model.eval()
    with torch.no_grad():
        return torch.stack([model(x).softmax(dim=-1) for _ in range(samples)]).mean(dim=0)


def dropout_left_on(model, x, samples):
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.train()
    with torch.no_grad():
        return torch.stack([model(x).softmax(dim=-1) for _ in range(samples)]).mean(dim=0)


def running_stats_updated(model, x, samples):
    result = chapter_mc_predict(model, x, samples)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.add_(0.1)
    return result


def mean_of_logits(model, x, samples):
    modes = [m.training for m in model.modules()]
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.train()
    with torch.no_grad():
        logits = torch.stack([model(x) for _ in range(samples)]).mean(dim=0)
    for m, mode in zip(model.modules(), modes, strict=True):
        m.training = mode
    return logits


def softmax_of_mean_logits(model, x, samples):
    return mean_of_logits(model, x, samples).softmax(dim=-1)


def one_sample_only(model, x, samples):
    return chapter_mc_predict(model, x, 1)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (naive_mc_predict, "ran BatchNorm in training mode"),
        (running_stats_updated, "changed BatchNorm's running statistics"),
        (dropout_off, "never ran a dropout layer in training mode"),
        (dropout_left_on, "left layers in training mode \\(Dropout\\)"),
        (mean_of_logits, "rows do not sum to 1"),
        (softmax_of_mean_logits, "softmax of the average logits"),
        (one_sample_only, "6 standard errors"),
        (lambda model, x, samples: chapter_mc_predict(model, x, samples)[:-1], "expected \\(12, 4\\)"),
        (lambda model, x, samples: chapter_mc_predict(model, x, samples).tolist(), "return a tensor"),
    ],
)
def test_mc_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_mc_predict(answer)


def ends_with_eval(model, x, samples):
    """Wrong: right while the model arrives in evaluation mode, but it never restores a training one."""
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.train()
    with torch.no_grad():
        probs = torch.stack([model(x).softmax(dim=-1) for _ in range(samples)]).mean(dim=0)
    model.eval()
    return probs


def restores_the_top_level_mode_only(model, x, samples):
    """Wrong: `model.train(was_training)` sets every layer to the top module's mode."""
    was_training = model.training
    probs = ends_with_eval(model, x, samples)
    model.train(was_training)
    return probs


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (ends_with_eval, "handed over in training mode.*ends with model\\.eval\\(\\)"),
        (restores_the_top_level_mode_only, "restore each module's own mode"),
    ],
)
def test_mc_answers_that_do_not_restore_each_mode_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_mc_predict(answer)


def test_mc_batch_dependence_is_named():
    def batch_dependent(model, x, samples):  # BatchNorm left alone, but the output mixes the batch
        probs = chapter_mc_predict(model, x, samples)
        return probs if len(x) > 1 else torch.full_like(probs, 1 / probs.shape[1])

    with pytest.raises(AssertionError, match="must not depend on its companions"):
        check_mc_predict(batch_dependent)


# --- the optimum under output dropout ------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        lambda t, p: (1 - p) * t,
        lambda t, p: t / (1 + p / (1 - p)) if p < 1 else 0.0,
        lambda t, p: torch.tensor((1 - p) * t),
    ],
)
def test_optimum_references_pass(answer, capsys):
    check_output_dropout_optimum(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda t, p: t, "the target itself"),
        (lambda t, p: t / (1 - p), "t / q"),
        (lambda t, p: p * t, "p is the DROP probability"),
        (lambda t, p: (1 - p) ** 2 * t, "not q\\^2"),
        (lambda t, p: (1 - p) * t + 0.1, "expected"),
        (lambda t, p: "q t", "should return a number"),
    ],
)
def test_optimum_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_output_dropout_optimum(answer)
