"""Chapter 12's exercise checks: reference solutions pass, typical mistakes fail by name, stubs fail."""

from __future__ import annotations

import math

import pytest
import torch
from stubs import STUBS

from dropoutlib.exercises.mc_dropout import (
    check_auroc,
    check_expected_calibration_error,
    check_mutual_information,
)
from dropoutlib.experiments.mc_dropout import auroc as library_auroc
from dropoutlib.uncertainty import expected_calibration_error

CHECKS = [check_auroc, check_expected_calibration_error, check_mutual_information]


def h(p):
    return torch.special.entr(p).sum(dim=-1)


def mutual_information(samples):
    return h(samples.mean(dim=0)) - h(samples).mean(dim=0)


def ece(probs, labels, bins=10):
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == labels).double()
    index = (confidence * bins).floor().long().clamp(max=bins - 1)  # floor binning: edges differ, fine
    total = 0.0
    for b in range(bins):
        inside = index == b
        if inside.any():
            total += inside.double().mean() * (correct[inside].mean() - confidence[inside].mean()).abs()
    return float(total)


def auroc(in_scores, out_scores):
    diff = out_scores[None, :] - in_scores[:, None]
    return float((diff > 0).double().mean() + (diff == 0).double().mean() / 2)


REFERENCES = {
    check_auroc: auroc,
    check_expected_calibration_error: ece,
    check_mutual_information: mutual_information,
}


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_reference_solutions_pass_and_leave_the_generator_alone(check, capsys):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    check(REFERENCES[check])
    assert capsys.readouterr().out.startswith("Correct")
    assert torch.equal(torch.rand(3), expected)


def test_the_library_functions_pass():
    check_auroc(library_auroc)
    check_expected_calibration_error(expected_calibration_error)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("stub", STUBS, ids=lambda s: s.__name__)
def test_stubs_fail(check, stub):
    with pytest.raises(AssertionError, match="NotImplementedError|forget the `return`"):
        check(stub)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_not_a_function_is_a_type_error(check):
    with pytest.raises(TypeError, match="a function"):
        check(42)


# --- mutual information: each typical mistake is named ---------------------------------------------

MI_MISTAKES = {
    "expected minus predictive": (lambda s: h(s).mean(0) - h(s.mean(0)), "expected minus predictive"),
    "bits": (lambda s: mutual_information(s) / math.log(2), "bits"),
    "predictive only": (lambda s: h(s.mean(0)), "is the predictive entropy"),
    "expected only": (lambda s: h(s).mean(0), "is the expected entropy"),
    "0 log 0": (lambda s: -(s.mean(0) * s.mean(0).log()).sum(-1) + (s * s.log()).sum(-1).mean(0), "NaN"),
    "averaged over examples": (lambda s: mutual_information(s).mean(), "average over the examples"),
    "plain log of the mean minus mean of log": (
        lambda s: -(s.mean(0).log() - s.log().mean(0)).mean(-1).clamp_min(0),
        "expected",
    ),
}


@pytest.mark.parametrize("name", MI_MISTAKES)
def test_mutual_information_mistakes_are_named(name):
    answer, message = MI_MISTAKES[name]
    with pytest.raises(AssertionError, match=message):
        check_mutual_information(answer)


# --- ECE ----------------------------------------------------------------------------------------------


def unweighted(probs, labels, bins=10):
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == labels).double()
    index = (torch.ceil(confidence * bins).long() - 1).clamp(0, bins - 1)
    gaps = [
        (correct[index == b].mean() - confidence[index == b].mean()).abs()
        for b in range(bins)
        if (index == b).any()
    ]
    return float(sum(gaps) / len(gaps))


def with_empty_bins(probs, labels, bins=10):
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == labels).double()
    index = (torch.ceil(confidence * bins).long() - 1).clamp(0, bins - 1)
    return float(
        sum(
            (index == b).double().mean() * (correct[index == b].mean() - confidence[index == b].mean()).abs()
            for b in range(bins)
        )
    )


def overall(probs, labels, bins=10):
    return float(((probs.argmax(1) == labels).double().mean() - probs.max(1).values.mean()).abs())


def true_class_confidence(probs, labels, bins=10):
    p = probs.gather(1, labels[:, None])[:, 0]
    return ece(torch.stack([p, 1 - p], 1), torch.zeros_like(labels), bins)


def unclamped_floor(probs, labels, bins=10):
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == labels).double()
    index = (confidence * bins).floor().long()  # a confidence of 1.0 falls outside every bin
    return float(
        sum(
            (index == b).double().mean() * (correct[index == b].mean() - confidence[index == b].mean()).abs()
            for b in range(bins)
            if (index == b).any()
        )
    )


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (unweighted, "plain average over bins"),
        (with_empty_bins, "NaN"),
        (overall, "overall accuracy"),
        (true_class_confidence, "true class"),
        (unclamped_floor, "exactly 1.0"),
    ],
)
def test_ece_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_expected_calibration_error(answer)


# --- AUROC --------------------------------------------------------------------------------------------


def reversed_auroc(a, b):
    return 1 - auroc(a, b)


def ties_as_zero(a, b):
    return float((b[None, :] > a[:, None]).double().mean())


def ties_as_one(a, b):
    return float((b[None, :] >= a[:, None]).double().mean())


def threshold_accuracy(a, b):
    threshold = torch.cat([a, b]).median()
    return float(((b > threshold).double().sum() + (a <= threshold).double().sum()) / (len(a) + len(b)))


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (reversed_auroc, "1 minus"),
        (ties_as_zero, "ties"),
        (ties_as_one, "ties"),
        (threshold_accuracy, "expected"),
    ],
)
def test_auroc_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_auroc(answer)
