"""A chapter's claims, written once: the chapter's check cell and the multi-seed tests call the same code.

An experiment module turns what it measured into a list of :class:`Claim` (what the prose says, whether
the measurement bears it out, and the numbers that decide it). The chapter shows the list in one
collapsed check cell through :func:`check`; ``tests/chapters/test_<slug>_claims.py`` calls the same
function for other seeds. So each threshold is written once, in the experiment module, and the two can
never drift apart.

Example:
    >>> claims = [below("the training loss is near zero", 0.0004, 0.01),
    ...           above("dropout keeps the loss at the noise level", 0.21, 0.02)]
    >>> check(claims)
    ✓ the training loss is near zero (0.0004 < 0.01)
    ✓ dropout keeps the loss at the noise level (0.21 > 0.02)
    >>> check([below("dropout lowers the test loss", 0.31, 0.25)])
    Traceback (most recent call last):
    ...
    AssertionError: 1 of 1 claims do not hold:
    - dropout lowers the test loss (0.31 < 0.25)
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["Claim", "above", "below", "check"]


@dataclass(frozen=True)
class Claim:
    """One claim: ``statement`` (what the prose says), whether it ``holds``, and the ``evidence``.

    ``evidence`` is the measured numbers set against the threshold they must meet, for a reader (in
    the chapter's check cell) and for whoever reads a failed test.
    """

    statement: str
    holds: bool
    evidence: str

    def __post_init__(self) -> None:
        if not isinstance(self.statement, str) or not self.statement:
            raise TypeError(f"statement must be a non-empty str, got statement={self.statement!r}")
        if not isinstance(self.holds, bool | np.bool_):
            raise TypeError(f"holds must be True or False, got holds={self.holds!r}")
        object.__setattr__(self, "holds", bool(self.holds))
        if not isinstance(self.evidence, str):
            raise TypeError(f"evidence must be a str, got evidence={self.evidence!r}")

    def __str__(self) -> str:
        return f"{'✓' if self.holds else '✗'} {self.statement} ({self.evidence})"


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {name}={value!r}")
    return float(value)


def below(statement: str, value: float, bound: float, digits: int = 4) -> Claim:
    """The claim that ``value < bound``; the evidence shows both to ``digits`` significant digits."""
    value, bound = _number(value, "value"), _number(bound, "bound")
    return Claim(statement, value < bound, f"{value:.{digits}g} < {bound:.{digits}g}")


def above(statement: str, value: float, bound: float, digits: int = 4) -> Claim:
    """The claim that ``value > bound``; the evidence shows both to ``digits`` significant digits."""
    value, bound = _number(value, "value"), _number(bound, "bound")
    return Claim(statement, value > bound, f"{value:.{digits}g} > {bound:.{digits}g}")


def check(claims: Iterable[Claim]) -> None:
    """Print one line per claim, or raise ``AssertionError`` naming every claim that does not hold."""
    claims = list(claims) if isinstance(claims, Iterable) else claims
    if not claims or not all(isinstance(claim, Claim) for claim in claims):
        raise TypeError(f"claims must be a non-empty list of Claim, got {claims!r}")
    failed = [claim for claim in claims if not claim.holds]
    if failed:
        lines = "\n".join(f"- {claim.statement} ({claim.evidence})" for claim in failed)
        raise AssertionError(f"{len(failed)} of {len(claims)} claims do not hold:\n{lines}")
    for claim in claims:
        print(claim)
