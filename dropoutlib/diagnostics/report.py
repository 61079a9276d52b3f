"""What a check returns (:class:`CheckResult`) and what :func:`~dropoutlib.diagnostics.diagnose` returns."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "CheckResult",
    "DropoutBugError",
    "Report",
]
_MAX_LISTED = 6


# ----------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: its ``name``, whether it ``passed``, and a ``message`` for a person.

    When a check fails, the message says what was measured, which bug that suggests and the fix. ``str``
    gives one line, ``"PASS name: message"`` or ``"FAIL name: message"``.

    Example:
        >>> print(CheckResult("eval_mode", False, "1 of 3 modules is in training mode."))
        FAIL eval_mode: 1 of 3 modules is in training mode.
    """

    name: str
    passed: bool
    message: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty str, got name={self.name!r}")
        if not isinstance(self.passed, bool):
            raise TypeError(f"passed must be True or False, got passed={self.passed!r}")
        if not isinstance(self.message, str):
            raise TypeError(f"message must be a str, got message={self.message!r}")

    def __str__(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.message}"


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

    ``passed`` is True when every check passed; ``failures`` holds the results that did not; ``str``
    gives one line per check; :meth:`raise_on_failure` turns failures into a :class:`DropoutBugError`.

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
        """True when every check passed (and for an empty report)."""
        return all(result.passed for result in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        """The results of the checks that failed, in order."""
        return tuple(result for result in self.results if not result.passed)

    def __str__(self) -> str:
        if not self.results:
            return "(no checks were run)"
        return "\n".join(str(result) for result in self.results)

    def raise_on_failure(self) -> None:
        """Raise :class:`DropoutBugError` listing every failed check; do nothing when all passed.

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
