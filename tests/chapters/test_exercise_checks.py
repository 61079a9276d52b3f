"""What every check in dropoutlib.exercises promises, for every check, present and future:
an unfinished answer never passes, and something that is not an answer is a TypeError."""

from __future__ import annotations

import pytest
from stubs import STUBS

import dropoutlib.exercises as exercises

CHECKS = [getattr(exercises, name) for name in exercises.__all__]
TAKES_A_CLASS = {exercises.check_dropout_module_modes}  # the student hands in an nn.Module subclass
STUB_MESSAGE = "NotImplementedError|forget the `return`|never builds a layer"


def test_every_check_is_listed():
    assert len(CHECKS) >= 29 and all(check.__name__.startswith("check_") for check in CHECKS)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("stub", STUBS, ids=lambda s: s.__name__)
def test_a_stub_never_passes(check, stub):
    expected = TypeError if check in TAKES_A_CLASS else AssertionError
    with pytest.raises(expected, match="CLASS" if check in TAKES_A_CLASS else STUB_MESSAGE):
        check(stub)


@pytest.mark.parametrize("check", [c for c in CHECKS if c not in TAKES_A_CLASS], ids=lambda c: c.__name__)
@pytest.mark.parametrize("not_a_function", [3, "answer", None, int], ids=repr)
def test_what_is_not_a_function_is_a_type_error(check, not_a_function):
    with pytest.raises(TypeError, match="a function"):
        check(not_a_function)
