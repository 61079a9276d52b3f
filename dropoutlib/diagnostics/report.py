"""What a check returns (:class:`CheckResult`) and what :func:`~dropoutlib.diagnostics.diagnose` returns."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "STATUSES",
    "CheckResult",
    "DropoutBugError",
    "Report",
]
_MAX_LISTED = 6


# ----------------------------------------------------------------------------------------------------
# Results


#: The three outcomes of a check, as :attr:`CheckResult.status` spells them.
STATUSES: tuple[str, ...] = ("pass", "fail", "skip")


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: its ``name``, whether it ``passed``, a ``message`` and its ``status``.

    ``status`` is one of ``"pass"`` (the check measured something and found no bug), ``"fail"`` (it
    found one: the message says what was measured, which bug that suggests and the fix) or ``"skip"``
    (there was nothing it could measure, e.g. mask checks on a model without dropout, or dropout it
    cannot see; the message says what was not measured). ``passed`` means *not failed*: True for
    ``"pass"`` and ``"skip"``, False for ``"fail"`` (so code written before ``status`` existed, and
    :meth:`Report.raise_on_failure`, treat a skip as no bug found). Read ``status`` to tell a pass from a
    skip. Without ``status`` it follows ``passed`` (``"pass"`` or ``"fail"``). ``str`` gives one line,
    ``"PASS name: message"``, ``"FAIL name: message"`` or ``"SKIP name: message"``.

    Example:
        >>> print(CheckResult("eval_mode", False, "1 of 3 modules is in training mode."))
        FAIL eval_mode: 1 of 3 modules is in training mode.
        >>> skipped = CheckResult("drop_rate", True, "no dropout layers found.", status="skip")
        >>> print(skipped)
        SKIP drop_rate: no dropout layers found.
        >>> skipped.passed, skipped.status
        (True, 'skip')
    """

    name: str
    passed: bool
    message: str
    status: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty str, got name={self.name!r}")
        if not isinstance(self.passed, bool):
            raise TypeError(f"passed must be True or False, got passed={self.passed!r}")
        if not isinstance(self.message, str):
            raise TypeError(f"message must be a str, got message={self.message!r}")
        status = self.status
        if status is None:
            status = "pass" if self.passed else "fail"
        elif not isinstance(status, str) or status not in STATUSES:
            raise ValueError(f"status must be None or one of {STATUSES}, got status={status!r}")
        elif self.passed != (status != "fail"):
            raise ValueError(
                f"passed=True goes with status 'pass' or 'skip', passed=False with 'fail'; got "
                f"passed={self.passed!r} and status={status!r}"
            )
        object.__setattr__(self, "status", status)

    @classmethod
    def skip(cls, name: str, message: str) -> CheckResult:
        """A result with ``status="skip"`` (and ``passed=True``): the check had nothing to measure."""
        return cls(name, True, message, status="skip")

    def __str__(self) -> str:
        return f"{self.status.upper()} {self.name}: {self.message}"


class DropoutBugError(AssertionError):
    """Raised by :meth:`Report.raise_on_failure` when at least one check failed; lists every failure.

    A subclass of ``AssertionError``, so a failed diagnosis inside a test reads as a failed assertion.

    Example:
        >>> issubclass(DropoutBugError, AssertionError)
        True
    """


@dataclass(frozen=True)
class Report:
    """The results of several checks (what :func:`diagnose` returns).

    ``passed`` is True when no check failed (a skipped check is no failure); ``failures`` holds the
    results whose status is ``"fail"`` and ``skipped`` those whose status is ``"skip"`` (read them: a
    skip means something was not measured); ``str`` gives one line per check; :meth:`raise_on_failure`
    turns failures, and only failures, into a :class:`DropoutBugError`.

    Example:
        >>> report = Report((CheckResult("a", True, "fine."), CheckResult("b", False, "broken.")))
        >>> report.passed, [r.name for r in report.failures]
        (False, ['b'])
        >>> print(report)
        PASS a: fine.
        FAIL b: broken.
    """

    results: tuple[CheckResult, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        results = self.results
        if isinstance(results, CheckResult) or not isinstance(results, tuple | list):
            raise TypeError(
                f"results must be a tuple of CheckResult, got results={results!r} ({type(results).__name__})"
            )
        for i, result in enumerate(results):
            if not isinstance(result, CheckResult):
                raise TypeError(
                    f"results[{i}] must be a CheckResult, got {result!r} ({type(result).__name__})"
                )
        object.__setattr__(self, "results", tuple(results))

    @property
    def passed(self) -> bool:
        """True when no check failed: each passed or was skipped (and for an empty report)."""
        return all(result.status != "fail" for result in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        """The results of the checks that failed, in order."""
        return tuple(result for result in self.results if result.status == "fail")

    @property
    def skipped(self) -> tuple[CheckResult, ...]:
        """The results of the checks that had nothing to measure (status ``"skip"``), in order."""
        return tuple(result for result in self.results if result.status == "skip")

    def __str__(self) -> str:
        if not self.results:
            return "(no checks were run)"
        return "\n".join(str(result) for result in self.results)

    def raise_on_failure(self) -> None:
        """Raise :class:`DropoutBugError` listing every failed check; do nothing when none failed.

        Example:
            >>> Report((CheckResult("a", True, "fine."),)).raise_on_failure()
            >>> Report((CheckResult("b", False, "broken."),)).raise_on_failure()
            Traceback (most recent call last):
            ...
            dropoutlib.diagnostics.report.DropoutBugError: 1 of 1 dropout checks failed:
            FAIL b: broken.
        """
        failures = self.failures
        if failures:
            lines = "\n".join(str(result) for result in failures)
            raise DropoutBugError(f"{len(failures)} of {len(self.results)} dropout checks failed:\n{lines}")


def _listed(items: list[str]) -> str:
    if len(items) <= _MAX_LISTED:
        return ", ".join(items)
    return ", ".join(items[:_MAX_LISTED]) + f" and {len(items) - _MAX_LISTED} more"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
