"""dropoutlib.experiments.bugs: argument checks, the arithmetic, and short runs of every experiment."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dropoutlib.course.data import load_digits, toy_regression
from dropoutlib.experiments.bugs import (
    REUSE_VARIANTS,
    ReusedMaskMLP,
    digits_value_regression,
    fresh_mask_loss,
    keep_prob_effect,
    mc_batchnorm_effect,
    mode_bug_effect,
    output_dropout_effect,
    reused_mask_effect,
    shrinkage,
    token_batch,
    transformer_claims,
    transformer_diagnosis,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits():
    return load_digits()


# --- shrinkage and the regression data -----------------------------------------------------------


def test_shrinkage_is_the_least_squares_slope_through_the_origin():
    t = torch.tensor([[1.0], [2.0], [-3.0]])
    assert shrinkage(0.8 * t, t) == pytest.approx(0.8)
    assert shrinkage(t, t) == 1.0
    noise = torch.tensor([[0.1], [-0.2], [0.3]])
    s = shrinkage(t + noise, t)
    assert s == pytest.approx(float((t + noise).flatten() @ t.flatten() / (t.flatten() @ t.flatten())))


def test_shrinkage_rejects_bad_arguments():
    with pytest.raises(TypeError, match="predictions must be a torch.Tensor"):
        shrinkage([1.0], torch.ones(1))
    with pytest.raises(ValueError, match="same shape"):
        shrinkage(torch.ones(2), torch.ones(3))
    with pytest.raises(ValueError, match="all zero"):
        shrinkage(torch.ones(2), torch.zeros(2))


def test_digit_value_regression_has_the_labels_as_targets(digits):
    data = digits_value_regression(0)
    assert torch.equal(data.x_train, digits.x_train) and torch.equal(data.x_test, digits.x_test)
    assert torch.equal(data.y_train[:, 0], digits.y_train.float())
    assert data.y_test.shape == (digits.n_test, 1) and data.y_test.dtype == torch.float32
    with pytest.raises(ValueError, match="seed"):
        digits_value_regression(-1)


# --- fresh-mask loss -----------------------------------------------------------------------------


def test_fresh_mask_loss_at_p_zero_is_the_evaluation_loss(digits):
    torch.manual_seed(0)
    model = ReusedMaskMLP(64, 16, 10, p=0.5, reuse="steps")
    model.eval()
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(model(digits.x_train), digits.y_train).item()
    assert fresh_mask_loss(model, digits, 0.0) == pytest.approx(loss, rel=1e-5)


def test_fresh_mask_loss_is_seeded_and_leaves_the_global_generator_alone(digits):
    model = ReusedMaskMLP(64, 16, 10, p=0.5, reuse="steps")
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    a = fresh_mask_loss(model, digits, 0.5, seed=3)
    assert torch.equal(torch.rand(3), expected)
    assert fresh_mask_loss(model, digits, 0.5, seed=3) == a
    assert fresh_mask_loss(model, digits, 0.5, seed=4) != a
    assert model.reuse == "steps" and model.training  # the model itself is not touched


def test_fresh_mask_loss_rejects_bad_arguments(digits):
    model = ReusedMaskMLP(64, 16, 10)
    with pytest.raises(TypeError, match="ReusedMaskMLP"):
        fresh_mask_loss(torch.nn.Linear(64, 10), digits, 0.5)
    with pytest.raises(TypeError, match="Split"):
        fresh_mask_loss(model, digits.x_train, 0.5)
    with pytest.raises(ValueError, match="probability"):
        fresh_mask_loss(model, digits, 1.5)
    with pytest.raises(ValueError, match="draws"):
        fresh_mask_loss(model, digits, 0.5, draws=0)


# --- the experiments, briefly --------------------------------------------------------------------


def test_mode_bug_effect_measures_both_forms_on_one_network(digits):
    r = mode_bug_effect(0, epochs=2, n_repeats=4, data=digits)
    assert r.forgotten_eval_accuracies.shape == (4,) and r.functional_accuracies.shape == (4,)
    assert 0 <= r.flip_fraction <= 1 and 0 <= r.eval_disagreement <= 1
    assert r.model.respect_training and not r.model.training
    again = mode_bug_effect(0, epochs=2, n_repeats=4, data=digits)
    assert again.eval_accuracy == r.eval_accuracy
    np.testing.assert_array_equal(again.forgotten_eval_accuracies, r.forgotten_eval_accuracies)
    assert "model=" not in repr(r)  # the repr stays short


def test_mode_bug_effect_rejects_bad_arguments(digits):
    with pytest.raises(ValueError, match="n_repeats"):
        mode_bug_effect(0, n_repeats=1, data=digits)
    with pytest.raises(TypeError, match="Split"):
        mode_bug_effect(0, data="digits")
    with pytest.raises(ValueError, match="probability"):
        mode_bug_effect(0, p=-0.1, data=digits)


def test_reused_mask_effect_trains_the_requested_variants(digits):
    runs = reused_mask_effect(0, epochs=3, eval_every=1, variants=("no dropout", "steps"), data=digits)
    assert list(runs) == ["no dropout", "steps"]
    assert runs["no dropout"].model.p == 0.0 and runs["steps"].model.reuse == "steps"
    assert len(runs["steps"].history.epoch) == 3
    assert runs["steps"].objective == runs["steps"].history.objective[-1]
    assert runs["steps"].fresh_loss > 0


@pytest.mark.parametrize("variants", [(), "steps", ("fresh", "typo")])
def test_reused_mask_effect_rejects_unknown_variants(variants):
    with pytest.raises(ValueError, match="variants"):
        reused_mask_effect(0, variants=variants)


def test_reuse_variants_are_the_four_trainings():
    assert REUSE_VARIANTS == ("no dropout", "fresh", "steps", "layers")


def test_keep_prob_effect_trains_p_and_one_minus_p(digits):
    r = keep_prob_effect(0, intended_p=0.3, epochs=1, data=digits)
    assert r.intended_p == 0.3 and r.used_p == pytest.approx(0.7)
    assert len(r.intended.test_acc) == len(r.used.test_acc) == 1
    with pytest.raises(ValueError, match="intended_p"):
        keep_prob_effect(0, intended_p=2.0)


def test_output_dropout_effect_puts_dropout_after_the_output_of_the_twin_only():
    r = output_dropout_effect(0, epochs=1)
    assert type(r.buggy_model[-1]).__name__ == "Dropout"
    assert type(r.correct_model[-1]).__name__ == "Linear"
    assert r.target_mean == pytest.approx(float(digits_value_regression(0).y_test.mean()))
    assert not r.buggy_model.training and not r.correct_model.training


def test_output_dropout_effect_accepts_another_regression():
    r = output_dropout_effect(0, p=0.5, hidden=8, epochs=2, data=toy_regression())
    assert r.p == 0.5 and np.isfinite(r.buggy_shrinkage)


def test_mc_batchnorm_effect_leaves_the_trained_model_intact(digits):
    r = mc_batchnorm_effect(0, epochs=1, samples=2, data=digits)
    assert not r.model.training
    assert 0 <= r.naive_grouped <= 1 and 0 <= r.careful_changed <= 1
    assert r.running_mean_shift > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"group_size": 1}, "group_size"),
        ({"group_size": 539}, "last group of one"),
        ({"request_class": 10}, "request_class"),
        ({"samples": 0}, "samples"),
    ],
)
def test_mc_batchnorm_effect_rejects_bad_arguments(digits, kwargs, message):
    with pytest.raises(ValueError, match=message):
        mc_batchnorm_effect(0, epochs=1, data=digits, **kwargs)


# --- diagnose on transformers --------------------------------------------------------------------


def test_token_batch_is_seeded_and_in_range():
    a, b = token_batch(seed=3), token_batch(seed=3)
    assert a.shape == (16, 16) and torch.equal(a, b)
    assert int(a.min()) >= 1 and int(a.max()) < 32
    assert not torch.equal(a, token_batch(seed=4))


def test_transformer_diagnosis_finds_what_the_chapter_says():
    pytest.importorskip("transformers")
    d = transformer_diagnosis(0)
    assert len(d.bert_layers) == 8 and len(d.bert_called) == 6
    assert all(".attention.self." not in name for name in d.bert_called)
    assert [r.status for r in d.planted.results] == ["pass", "pass", "pass", "fail"]
    assert all(c.holds for c in transformer_claims(d))


def test_transformer_claims_fail_when_the_bug_is_missed_or_the_attention_is_not_named():
    pytest.importorskip("transformers")
    d = transformer_diagnosis(0)
    missed = dataclasses.replace(d, planted=d.bert)
    assert not transformer_claims(missed)[-1].holds
    # a report that names SDPA, not MultiheadAttention, for the transformer
    unnamed = dataclasses.replace(d, encoder=d.bert)
    assert not transformer_claims(unnamed)[2].holds
    assert all(c.holds for c in transformer_claims(d))


def test_transformer_diagnosis_rejects_a_bad_p():
    with pytest.raises(ValueError, match="p"):
        transformer_diagnosis(0, p=1.5)
