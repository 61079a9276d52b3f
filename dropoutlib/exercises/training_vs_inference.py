"""Checks for the exercises of chapter 3, "Training versus inference".

Each ``check_*`` takes the student's answer, prints one line when it is right, and otherwise raises an
``AssertionError`` whose message names the mistake. A stub (returning ``None``, raising
``NotImplementedError``) never passes.

Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` the probability of keeping it.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from dropoutlib.exercises._answers import as_number, call_answer, require_function

__all__ = [
    "check_all_ones_unit_std",
    "check_dropout_module_modes",
    "check_dropout_unit_test",
    "check_keep_prob_conversion",
    "check_test_time_weight_scaling",
]


def check_keep_prob_conversion(keep_prob_to_p: Callable[[float], float]) -> None:
    """Check a function that converts TensorFlow 1's ``keep_prob`` into PyTorch's ``p``.

    ``tf.nn.dropout(x, keep_prob)`` keeps each unit with probability ``keep_prob``;
    ``torch.nn.Dropout(p)`` drops each unit with probability ``p``. So ``p = 1 - keep_prob``.

    Example:
        >>> check_keep_prob_conversion(lambda keep_prob: 1 - keep_prob)
        Correct: keep_prob = 0.8 becomes p = 0.2 (p drops, keep_prob keeps).
    """
    require_function(keep_prob_to_p, "keep_prob_to_p")
    for keep_prob in (0.8, 0.9, 0.25, 0.5, 1.0):
        got = as_number(call_answer(keep_prob_to_p, keep_prob), f"keep_prob_to_p({keep_prob})")
        want = 1.0 - keep_prob
        if math.isclose(got, want, abs_tol=1e-9):
            continue
        if math.isclose(got, keep_prob):
            raise AssertionError(
                f"keep_prob_to_p({keep_prob}) returned keep_prob unchanged: TF1's keep_prob is the "
                f"probability of KEEPING a unit, PyTorch's p the probability of DROPPING it"
            )
        if math.isclose(got, 1.0 / keep_prob):
            raise AssertionError(
                f"keep_prob_to_p({keep_prob}) returned 1 / keep_prob = {got:.4g}: that is the factor "
                f"inverted dropout multiplies kept units by, not a probability"
            )
        if not 0.0 <= got <= 1.0:
            raise AssertionError(
                f"keep_prob_to_p({keep_prob}) returned {got:.4g}, which is not a probability"
            )
        raise AssertionError(f"keep_prob_to_p({keep_prob}) returned {got:.4g}, expected {want:.4g}")
    print("Correct: keep_prob = 0.8 becomes p = 0.2 (p drops, keep_prob keeps).")


def check_test_time_weight_scaling(scale_for_test: Callable[[torch.Tensor, float], torch.Tensor]) -> None:
    """Check the test-time weight rule of a layer trained with standard (non-inverted) dropout.

    In training, standard dropout passes ``m * x`` with ``m ~ Bernoulli(q)`` and no rescaling, so the
    next layer sees ``E[W (m * x)] = q W x``. At test time nothing is dropped; to match, the weights
    are multiplied by the keep probability: ``W_test = (1 - p) W``. The function must return a new
    tensor and leave ``weight`` unchanged.

    Example:
        >>> check_test_time_weight_scaling(lambda weight, p: (1 - p) * weight)
        Correct: W_test = (1 - p) W, the weights times the keep probability.
    """
    require_function(scale_for_test, "scale_for_test")
    generator = torch.Generator().manual_seed(3)
    weight = torch.randn(4, 6, generator=generator)
    for p in (0.2, 0.7, 0.0, 0.5):
        q = 1.0 - p
        original = weight.clone()
        got = call_answer(scale_for_test, weight, p)
        if not torch.equal(weight, original):
            raise AssertionError(
                f"scale_for_test(weight, p={p}) changed `weight` in place: return a new tensor "
                f"(e.g. `(1 - p) * weight`), the trained weights may still be needed"
            )
        if not isinstance(got, torch.Tensor):
            raise AssertionError(f"return a torch.Tensor, got {type(got).__name__}")
        if got.shape != weight.shape:
            raise AssertionError(
                f"the scaled weight has shape {tuple(got.shape)}, expected {tuple(weight.shape)}"
            )
        got = got.detach().to(weight.dtype)
        if torch.allclose(got, q * weight, rtol=1e-5, atol=1e-7):
            continue
        if torch.allclose(got, p * weight, rtol=1e-5, atol=1e-7):
            raise AssertionError(
                f"at p={p} you multiplied the weights by p, the DROP probability: multiply by the "
                f"keep probability 1 - p (texts that write 'multiply by p' use p for keeping)"
            )
        if q > 0 and torch.allclose(got, weight / q, rtol=1e-5, atol=1e-7):
            raise AssertionError(
                f"at p={p} you divided the weights by 1 - p: dividing by the keep probability is "
                f"what inverted dropout does to activations in training; at test time standard "
                f"dropout multiplies the weights by 1 - p"
            )
        if p > 0 and torch.allclose(got, weight / p, rtol=1e-5, atol=1e-7):
            raise AssertionError(
                f"at p={p} you divided the weights by p: the test-time rule multiplies them by 1 - p"
            )
        if torch.allclose(got, weight) and p > 0:
            raise AssertionError(
                f"at p={p} the weights came back unchanged: that is right for inverted dropout, but "
                f"this layer was trained with standard dropout, which needs W_test = (1 - p) W"
            )
        raise AssertionError(f"at p={p} the scaled weights are not (1 - p) * weight")
    print("Correct: W_test = (1 - p) W, the weights times the keep probability.")


def _module_output(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    try:
        with torch.no_grad():
            out = model(x)
    except NotImplementedError:
        raise AssertionError("forward raises NotImplementedError: write it first") from None
    if not isinstance(out, torch.Tensor):
        raise AssertionError(f"forward should return a tensor, got {type(out).__name__}")
    return out


def check_dropout_module_modes(module_class: type[nn.Module]) -> None:
    """Check an MLP module class whose dropout must follow ``model.train()`` / ``model.eval()``.

    The class is built as ``module_class(in_features, hidden, out_features, p)`` with dropout right
    before its output layer. The check asks that, in evaluation mode, two calls on one input give the
    same output; in training mode, two calls differ; with ``p = 0`` training mode is deterministic
    too; and, averaged over many training-mode calls, the output matches the evaluation-mode output
    (inverted dropout keeps the expectation). Global RNG state is saved and restored.

    Example:
        >>> import torch.nn.functional as F
        >>> class MLP(nn.Module):
        ...     def __init__(self, in_features, hidden, out_features, p=0.5):
        ...         super().__init__()
        ...         self.p, self.hidden = p, nn.Linear(in_features, hidden)
        ...         self.out = nn.Linear(hidden, out_features)
        ...     def forward(self, x):
        ...         h = torch.relu(self.hidden(x))
        ...         return self.out(F.dropout(h, self.p, training=self.training))
        >>> check_dropout_module_modes(MLP)
        Correct: deterministic in eval mode, random in train mode, same output on average.
    """
    if not (inspect.isclass(module_class) and issubclass(module_class, nn.Module)):
        raise TypeError(
            f"pass your module CLASS (a subclass of torch.nn.Module), got {module_class!r} "
            f"({type(module_class).__name__})"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            model = module_class(16, 64, 3, 0.5)
            still = module_class(16, 64, 3, 0.0)
        except NotImplementedError:
            raise AssertionError("__init__ raises NotImplementedError: write it first") from None
        except TypeError as error:
            raise AssertionError(
                f"could not build module_class(in_features, hidden, out_features, p): {error}"
            ) from None
        x = torch.randn(8, 16)
        model.eval()
        if not torch.equal(_module_output(model, x), _module_output(model, x)):
            raise AssertionError(
                "in eval mode two calls gave different outputs: dropout is still active. "
                "F.dropout defaults to training=True; pass training=self.training (or use nn.Dropout)"
            )
        eval_out = _module_output(model, x).double()
        model.train()
        if torch.equal(_module_output(model, x), _module_output(model, x)):
            raise AssertionError(
                "in train mode two calls gave the same output: dropout never drops (was it removed, "
                "or training=False hard-coded?)"
            )
        still.train()
        if not torch.equal(_module_output(still, x), _module_output(still, x)):
            raise AssertionError(
                "built with p=0, the module still changes its output between calls in train mode: "
                "it ignores its p argument"
            )
        n_calls = 2000  # as many masks, drawn in one call: the batch holds n_calls copies of x
        outs = _module_output(model, x.repeat(n_calls, 1)).double().reshape(n_calls, *eval_out.shape)
        z = (outs.mean(0) - eval_out) / (outs.std(0) / math.sqrt(n_calls) + 1e-12)
        if z.abs().max() > 6:
            raise AssertionError(
                "averaged over many train-mode calls, the output does not match the eval-mode output: "
                "are the kept units scaled by 1 / (1 - p), and is dropout right before the output layer?"
            )
    print("Correct: deterministic in eval mode, random in train mode, same output on average.")


def check_all_ones_unit_std(unit_std: Callable[[int, float], float]) -> None:
    """Check the standard deviation of the all-ones unit's training output under inverted dropout.

    A bias-free unit with ``n`` inputs of activation 1 and weights 1, behind ``nn.Dropout(p)``,
    outputs ``K / q`` in training, ``K ~ Binomial(n, q)``; its std is ``sqrt(n p q) / q =
    sqrt(n p / q)``.

    Example:
        >>> check_all_ones_unit_std(lambda n, p: (n * p / (1 - p)) ** 0.5)
        Correct: std = sqrt(n p / (1 - p)); 100 for n = 10,000 at p = 0.5.
    """
    require_function(unit_std, "unit_std")
    for n, p in ((100, 0.4), (10_000, 0.5), (50, 0.2), (1, 0.9), (30, 0.0)):
        q = 1.0 - p
        got = as_number(call_answer(unit_std, n, p), f"unit_std({n}, {p})")
        want = math.sqrt(n * p / q)
        if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12):
            continue
        where = f"unit_std({n}, {p}) = {got:.4g}, expected {want:.4g}"
        if math.isclose(got, math.sqrt(n * p * q), rel_tol=1e-6):
            raise AssertionError(
                f"{where}: sqrt(n p q) is the std of the number of kept inputs K, but each kept input "
                f"contributes 1/q, so the output is K/q: divide that std by q"
            )
        if math.isclose(got, n * p / q, rel_tol=1e-6):
            raise AssertionError(f"{where}: that is the variance; take its square root")
        if math.isclose(got, n * p * q, rel_tol=1e-6):
            raise AssertionError(
                f"{where}: n p q is the variance of the number of kept inputs, not the std of K/q"
            )
        if p > 0 and math.isclose(got, math.sqrt(n * q / p), rel_tol=1e-6):
            raise AssertionError(f"{where}: p and q are swapped (p drops, q = 1 - p keeps)")
        raise AssertionError(where)
    print("Correct: std = sqrt(n p / (1 - p)); 100 for n = 10,000 at p = 0.5.")


# --- a unit test that catches the classic factor bugs ------------------------------------------------


class _BuggyDropout(nn.Module):
    """A dropout layer with one bug: it keeps a unit with probability ``keep(p)``, multiplies the
    kept units by ``scale(p)`` in training, and multiplies its input by ``eval_scale(p)`` in
    evaluation mode (or, with ``drops_in_eval``, keeps behaving as in training)."""

    def __init__(self, p: float, keep: Callable[[float], float], scale: Callable[[float], float],
                 eval_scale: Callable[[float], float] = lambda p: 1.0,
                 drops_in_eval: bool = False) -> None:
        super().__init__()
        self.p = p
        self._keep, self._scale, self._eval_scale = keep, scale, eval_scale
        self._drops_in_eval = drops_in_eval

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or self._drops_in_eval:
            keep = self._keep(self.p)
            if keep >= 1:  # no division by zero in the buggy scales at p = 0 or 1
                return x * 1.0
            mask = (torch.rand_like(x) < keep).to(x.dtype)
            return x * mask * (self._scale(self.p) if keep > 0 else 0.0)
        return x * self._eval_scale(self.p)


class _PlainDropout(nn.Module):
    """A correct dropout layer that is not a ``torch.nn.Dropout``: another class, another repr, and
    exactly ``nn.Dropout``'s outputs (it calls ``F.dropout``, so the same seed gives the same mask).
    A test that fails it while passing ``nn.Dropout`` looks at the class or the repr, not at what the
    layer computes."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p, self.inplace = p, False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.dropout(x, self.p, training=self.training)

    def extra_repr(self) -> str:
        return f"drop probability {self.p}"


def _inverse(value: float) -> float:
    return 1.0 / value if value > 0 else 0.0


# (the buggy layer, what is wrong with it, whether p = 0.5 hides the bug)
_BUGGY_LAYERS = [
    (lambda p: _BuggyDropout(p, lambda p: 1 - p, _inverse),
     "scales the kept units by 1/p (\"the inverse of the dropout rate\") instead of 1/(1-p)", True),
    (lambda p: _BuggyDropout(p, lambda p: 1 - p, lambda p: 1.0),
     "forgets the 1/(1-p) scaling in training: check the kept values, or the mean", False),
    (lambda p: _BuggyDropout(p, lambda p: p, lambda p: _inverse(1 - p)),
     "drops a unit with probability 1-p instead of p: check the fraction of zeros", True),
    (lambda p: _BuggyDropout(p, lambda p: p, _inverse),
     "drops a fraction 1-p of the units and scales the survivors by 1/p: its mean is right, so a "
     "test of the mean alone cannot see it; check the fraction of zeros too", True),
    (lambda p: _BuggyDropout(p, lambda p: 1 - p, lambda p: _inverse(1 - p), drops_in_eval=True),
     "still drops in evaluation mode: call layer.eval() and check that the output equals the input",
     False),
    (lambda p: _BuggyDropout(p, lambda p: 1 - p, lambda p: _inverse(1 - p),
                             eval_scale=lambda p: 1 - p),
     "multiplies by 1-p in evaluation mode, a test-time weight factor on top of inverted "
     "dropout's scaling: in evaluation mode the output must equal the input", False),
]


class _LayerMaker:
    """``make_dropout(p)`` for the student's test; remembers the values of p it was called with."""

    def __init__(self, build: Callable[[float], nn.Module]) -> None:
        self.build = build
        self.ps: list[float] = []

    def __call__(self, p: float) -> nn.Module:
        self.ps.append(float(p))
        return self.build(float(p))


def _run_unit_test(unit_test: Callable[..., Any], build: Callable[[float], nn.Module], seed: int,
                   what: str) -> tuple[BaseException | None, list[float]]:
    """Run the student's test on one layer: the exception it raised (None if it passed), and the ps."""
    maker = _LayerMaker(build)
    torch.manual_seed(seed)
    try:
        result = unit_test(maker)
    except NotImplementedError:
        raise AssertionError("your unit test raises NotImplementedError: write its body first") from None
    except Exception as error:  # any exception means that the test failed the layer
        return error, maker.ps
    if result is not None and result is not Ellipsis:
        raise AssertionError(
            f"your unit test returned {result!r} on {what}: a test says 'wrong' by raising "
            "AssertionError (write `assert ...`), and returns nothing when the layer is right"
        )
    return None, maker.ps


def check_dropout_unit_test(unit_test: Callable[..., Any]) -> None:
    """Check a unit test for dropout layers: it must pass ``nn.Dropout`` and fail every buggy layer.

    ``unit_test(make_dropout)`` builds a layer with ``make_dropout(p)``, for a drop probability ``p``
    of its choice, and raises ``AssertionError`` if the layer does not behave like
    ``torch.nn.Dropout(p)``: in training mode, zero each unit with probability ``p`` and multiply the
    kept units by ``1/(1-p)``; in evaluation mode (``layer.eval()``), return the input unchanged.
    The check runs the test on ``torch.nn.Dropout`` (with three seeds: a random layer needs a
    tolerance), on a correct layer of another class and repr (a test must judge what the layer
    computes, not its class or repr) and on six buggy layers: scale ``1/p``, no scale, drop with
    probability ``1-p``, drop ``1-p`` and scale ``1/p`` (the mean stays right), still dropping in
    evaluation mode, and a factor ``1-p`` in evaluation mode. Three of them are exactly right at
    ``p = 0.5``.

    Example:
        >>> def unit_test(make_dropout):
        ...     p, n = 0.2, 100_000
        ...     layer, x = make_dropout(p), torch.ones(n)
        ...     out = layer.train()(x)
        ...     dropped = (out == 0).float().mean().item()
        ...     assert abs(dropped - p) < 5 * math.sqrt(p * (1 - p) / n), f"dropped {dropped:.3f}"
        ...     assert torch.allclose(out[out != 0], torch.tensor(1 / (1 - p))), "kept units: 1/(1-p)"
        ...     assert torch.equal(layer.eval()(x), x), "eval mode must return the input"
        >>> check_dropout_unit_test(unit_test)
        Correct: your test passes nn.Dropout and catches all 6 buggy layers.
    """
    require_function(unit_test, "unit_test(make_dropout)")
    with torch.random.fork_rng(devices=[]):
        used = []
        for seed in (0, 1, 2):
            error, ps = _run_unit_test(unit_test, nn.Dropout, seed, "torch.nn.Dropout")
            used += ps
            if error is not None:
                detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
                raise AssertionError(
                    f"your unit test fails the correct torch.nn.Dropout (seed {seed}) with "
                    f"{detail}. The masks are random: compare fractions and means with a tolerance "
                    "of several standard errors, on enough units"
                )
        if not used:
            raise AssertionError(
                "your unit test never builds a layer with make_dropout(p): it accepts any layer"
            )
        for seed in (0, 1, 2):  # the seeds nn.Dropout passed with: the same masks, the same numbers
            error, _ = _run_unit_test(unit_test, _PlainDropout, seed, "a correct dropout layer")
            if error is not None:
                detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
                raise AssertionError(
                    "your unit test fails a correct dropout layer that is not a torch.nn.Dropout (its "
                    f"class is {_PlainDropout.__name__}, its repr {_PlainDropout(0.2)!r}, and it gives "
                    f"exactly nn.Dropout's outputs) with {detail}. A test that checks the class, the "
                    "type or the repr of the layer rejects the buggy layers for their name, not for what "
                    "they compute: test the fraction of zeros, the kept values and evaluation mode"
                )
        for build, bug, hidden_at_half in _BUGGY_LAYERS:
            error, ps = _run_unit_test(unit_test, build, 0, "a buggy layer")
            if error is None:
                hint = ""
                if hidden_at_half and ps and all(p == 0.5 for p in ps):
                    hint = (" (your test uses only p = 0.5, where p = 1-p and 1/p = 1/(1-p) = 2, so "
                            "this bug gives exactly the right numbers; test at a p such as 0.2)")
                raise AssertionError(f"your unit test accepts a layer that {bug}{hint}")
    print(f"Correct: your test passes nn.Dropout and catches all {len(_BUGGY_LAYERS)} buggy layers.")
