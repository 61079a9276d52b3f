r"""Checks for the exercises of chapter 12, "Uncertainty with Monte Carlo dropout".

Each ``check_*`` takes the student's function, prints one line when it is right, and otherwise raises
an ``AssertionError`` whose message names the mistake. A stub (returning ``None`` or ``...``, raising
``NotImplementedError``) never passes; something that is not a function is a ``TypeError``. The checks
draw their own random numbers and leave torch's global generator as they found it.

Notation: ``T`` passes, ``n`` examples, ``k`` classes; entropies in nats.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from dropoutlib.exercises._answers import as_number, call_answer, describe, require_function

__all__ = ["check_auroc", "check_expected_calibration_error", "check_mutual_information"]

_SEED = 12


def _entropy(probs: torch.Tensor) -> torch.Tensor:
    return torch.special.entr(probs).sum(dim=-1)


# --- mutual information --------------------------------------------------------------------------


def _mi_cases() -> list[tuple[str, torch.Tensor]]:
    """Sample tensors (T, n, k) of softmax probabilities, some with exact zeros and one with T = 1."""
    g = torch.Generator().manual_seed(_SEED)
    logits = 3 * torch.randn(20, 30, 5, generator=g, dtype=torch.float64)
    agree = torch.softmax(torch.randn(1, 8, 4, generator=g, dtype=torch.float64), -1).expand(6, 8, 4)
    onehot = torch.eye(3, dtype=torch.float64)[torch.randint(0, 3, (10, 7), generator=g)]
    return [
        ("20 passes on 30 examples, 5 classes", torch.softmax(logits, dim=-1)),
        ("6 passes that all agree", agree.clone()),
        ("10 one-hot passes (probabilities exactly 0 and 1)", onehot),
        ("a single pass (T = 1)", torch.softmax(logits[:1], dim=-1)),
    ]


def check_mutual_information(mutual_information: Callable[[torch.Tensor], Any]) -> None:
    r"""Check ``mutual_information(samples)``: the epistemic part of Monte Carlo dropout's uncertainty.

    ``samples`` has shape ``(T, n, k)``: the softmax probabilities of ``T`` passes for ``n`` examples.
    The answer must return, for each example, a tensor of shape ``(n,)`` in nats,

    .. math::

        I = H\Big[\frac1T\sum_t p_t\Big] - \frac1T \sum_t H[p_t], \qquad H[p] = -\sum_c p_c \log p_c,

    with :math:`0 \log 0 = 0`.

    Example:
        >>> def mutual_information(samples):
        ...     def h(p):
        ...         return -(p * torch.log(p.clamp_min(1e-30))).sum(dim=-1)
        ...     return h(samples.mean(dim=0)) - h(samples).mean(dim=0)
        >>> check_mutual_information(mutual_information)
        Correct: predictive entropy minus expected entropy, in nats, 0 when the passes agree.
    """
    require_function(mutual_information, "function mutual_information(samples)")
    with torch.random.fork_rng(devices=[]):
        for what, samples in _mi_cases():
            call = f"mutual_information(samples) for {what}"
            got = call_answer(mutual_information, samples.clone())
            if not isinstance(got, torch.Tensor):
                raise AssertionError(f"{call} returned {describe(got)}: return a tensor of shape (n,)")
            n = samples.shape[1]
            if got.shape != (n,):
                hint = (
                    " (one number per example: did you average over the examples too?)"
                    if got.numel() == 1
                    else ""
                )
                raise AssertionError(f"{call} has shape {tuple(got.shape)}, expected ({n},){hint}")
            got = got.detach().double()
            if torch.isnan(got).any():
                raise AssertionError(
                    f"{call} contains NaN: 0 * log(0) gives NaN in floating point; use the convention "
                    "0 log 0 = 0 (e.g. torch.special.entr, or clamp p before the log)"
                )
            predictive, expected = _entropy(samples.mean(dim=0)), _entropy(samples).mean(dim=0)
            want = predictive - expected
            if torch.allclose(got, want, atol=1e-6):
                continue
            if torch.allclose(got, -want, atol=1e-6):
                raise AssertionError(
                    f"{call} is negative: you computed expected minus predictive entropy; "
                    "the entropy of the average is the larger one (entropy is concave)"
                )
            if torch.allclose(got, want / math.log(2), atol=1e-6):
                raise AssertionError(f"{call} is in bits (log base 2): use the natural log, nats")
            if torch.allclose(got, predictive, atol=1e-6):
                raise AssertionError(
                    f"{call} is the predictive entropy H[mean]: subtract the expected entropy, the "
                    "average of the entropies of the single passes"
                )
            if torch.allclose(got, expected, atol=1e-6):
                raise AssertionError(
                    f"{call} is the expected entropy (the aleatoric part): the mutual information "
                    "is the predictive entropy minus it"
                )
            wrong_axis = _entropy(samples.mean(dim=1, keepdim=True).expand_as(samples)[0])
            if got.shape == wrong_axis.shape and torch.allclose(got, wrong_axis, atol=1e-6):
                raise AssertionError(f"{call}: average over the passes (dim 0), not over the examples")
            worst = int((got - want).abs().argmax())
            raise AssertionError(
                f"{call}: example {worst} gets {float(got[worst]):.4f} nats, expected "
                f"{float(want[worst]):.4f}"
            )
    print("Correct: predictive entropy minus expected entropy, in nats, 0 when the passes agree.")


# --- expected calibration error ------------------------------------------------------------------


def _ece_reference(probs: torch.Tensor, labels: torch.Tensor, bins: int, *, weighted: bool = True) -> float:
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == labels).double()
    index = (torch.ceil(confidence * bins).long() - 1).clamp(0, bins - 1)
    total = 0.0
    filled = 0
    for b in range(bins):
        inside = index == b
        if inside.any():
            gap = abs(float(correct[inside].mean()) - float(confidence[inside].mean()))
            total += gap * (float(inside.double().mean()) if weighted else 1.0)
            filled += 1
    return total if weighted else total / filled


def _ece_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, int]]:
    g = torch.Generator().manual_seed(_SEED)
    n, k = 400, 4
    logits = 2.5 * torch.randn(n, k, generator=g, dtype=torch.float64)
    probs = torch.softmax(logits, dim=-1)
    # labels that agree with the prediction more often than the confidence says, but not always
    labels = torch.where(
        torch.rand(n, generator=g, dtype=torch.float64) < 0.8,
        probs.argmax(dim=1),
        torch.randint(0, k, (n,), generator=g),
    )
    sure = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.55, 0.45], [0.75, 0.25]], dtype=torch.float64)
    return [
        ("400 predictions, 4 classes, bins=10", probs, labels, 10),
        ("the same, bins=5", probs, labels, 5),
        ("confidences exactly 1.0 and 0.55, 0.75, bins=10", sure, torch.tensor([0, 1, 0, 0]), 10),
    ]


def check_expected_calibration_error(ece: Callable[[torch.Tensor, torch.Tensor, int], Any]) -> None:
    r"""Check ``ece(probs, labels, bins)``, the expected calibration error with equal-width bins.

    ``probs`` has shape ``(n, k)`` (rows sum to 1), ``labels`` shape ``(n,)``. The confidence of a
    prediction is its largest probability; it is correct when that class is the label. Bin ``b`` of
    ``bins`` holds the confidences in ``(b / bins, (b + 1) / bins]``; then

    .. math::

        \mathrm{ECE} = \sum_{b \text{ non-empty}} \frac{n_b}{n}\,\big|\mathrm{acc}_b - \mathrm{conf}_b\big| .

    Example:
        >>> from dropoutlib.uncertainty import expected_calibration_error
        >>> check_expected_calibration_error(expected_calibration_error)
        Correct: |accuracy - confidence| per bin, weighted by the bin's share of the examples.
    """
    require_function(ece, "function ece(probs, labels, bins)")
    with torch.random.fork_rng(devices=[]):
        for what, probs, labels, bins in _ece_cases():
            call = f"ece(probs, labels, bins={bins}) for {what}"
            got = call_answer(ece, probs.clone(), labels.clone(), bins)
            got = as_number(got, call)
            if math.isnan(got):
                raise AssertionError(f"{call} is NaN: skip the empty bins (their mean is 0 / 0)")
            want = _ece_reference(probs, labels, bins)
            if math.isclose(got, want, abs_tol=1e-6):
                continue
            if math.isclose(got, _ece_reference(probs, labels, bins, weighted=False), abs_tol=1e-6):
                raise AssertionError(
                    f"{call} = {got:.4f} is the plain average over bins: weight each bin by its "
                    f"share of the examples n_b / n (expected {want:.4f})"
                )
            if math.isclose(
                got,
                abs(float((probs.argmax(1) == labels).double().mean() - probs.max(1).values.mean())),
                abs_tol=1e-6,
            ):
                raise AssertionError(
                    f"{call} = {got:.4f} compares the overall accuracy and the overall mean confidence: "
                    "compare them bin by bin, then average the gaps"
                )
            true_class = probs.gather(1, labels[:, None])[:, 0]
            if math.isclose(
                got,
                _ece_reference(torch.stack([true_class, 1 - true_class], 1), torch.zeros_like(labels), bins),
                abs_tol=1e-6,
            ):
                raise AssertionError(
                    f"{call} = {got:.4f} uses the probability of the true class as the confidence: "
                    "the confidence is the largest probability (of the predicted class)"
                )
            raise AssertionError(
                f"{call} = {got:.4f}, expected {want:.4f}. Check the bin edges: a confidence of "
                "exactly 1.0 belongs to the last bin, and bin b is (b/bins, (b+1)/bins]"
            )
    print("Correct: |accuracy - confidence| per bin, weighted by the bin's share of the examples.")


# --- AUROC ---------------------------------------------------------------------------------------


def _auroc_reference(a: torch.Tensor, b: torch.Tensor) -> float:
    greater = (b[None, :] > a[:, None]).double().mean()
    ties = (b[None, :] == a[:, None]).double().mean()
    return float(greater + ties / 2)


def check_auroc(auroc: Callable[[torch.Tensor, torch.Tensor], Any]) -> None:
    r"""Check ``auroc(in_scores, out_scores)``: how well a score separates two sets of inputs.

    The answer must return the probability that a random out-of-distribution input scores higher than
    a random in-distribution one, ties counting one half (the area under the ROC curve):
    :math:`\frac{1}{n_{\text{in}} n_{\text{out}}}\sum_{i,j} \big(\mathbb 1[s^{\text{out}}_j > s^{\text{in}}_i]
    + \frac12 \mathbb 1[s^{\text{out}}_j = s^{\text{in}}_i]\big)`.

    Example:
        >>> from dropoutlib.experiments.mc_dropout import auroc
        >>> check_auroc(auroc)
        Correct: P(out > in) + P(tie) / 2, whatever the sizes of the two sets.
    """
    require_function(auroc, "function auroc(in_scores, out_scores)")
    with torch.random.fork_rng(devices=[]):
        g = torch.Generator().manual_seed(_SEED)
        cases = [
            (
                "overlapping scores, 50 in and 80 out",
                torch.randn(50, generator=g, dtype=torch.float64),
                0.7 + torch.randn(80, generator=g, dtype=torch.float64),
            ),
            (
                "scores with many ties (rounded to 0.5)",
                torch.round(2 * torch.randn(40, generator=g, dtype=torch.float64)) / 2,
                torch.round(2 * (0.5 + torch.randn(30, generator=g, dtype=torch.float64))) / 2,
            ),
            (
                "every out score above every in score",
                torch.rand(10, generator=g, dtype=torch.float64),
                2 + torch.rand(7, generator=g, dtype=torch.float64),
            ),
        ]
        for what, a, b in cases:
            call = f"auroc(in_scores, out_scores) for {what}"
            got = as_number(call_answer(auroc, a.clone(), b.clone()), call)
            want = _auroc_reference(a, b)
            if math.isclose(got, want, abs_tol=1e-9):
                continue
            if math.isclose(got, 1 - want, abs_tol=1e-9):
                raise AssertionError(
                    f"{call} = {got:.4f} is 1 minus the answer: count the pairs where the OUT score is "
                    "the higher one (higher uncertainty should mean out of distribution)"
                )
            strict = float((b[None, :] > a[:, None]).double().mean())
            if math.isclose(got, strict, abs_tol=1e-9) or math.isclose(
                got, strict + 2 * (want - strict), abs_tol=1e-9
            ):
                raise AssertionError(
                    f"{call} = {got:.4f}: ties must count one half, neither 0 nor 1 (expected {want:.4f})"
                )
            raise AssertionError(f"{call} = {got:.4f}, expected {want:.4f}")
    print("Correct: P(out > in) + P(tie) / 2, whatever the sizes of the two sets.")
