"""glue: delegates to myst_nb.glue in a kernel, and is a silent no-op without MyST-NB (Colab)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from dropoutlib.course import book
from dropoutlib.course.book import glue


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """A stand-in myst_nb that records its calls, inside a (pretend) IPython kernel."""
    calls: list[tuple] = []
    fake = types.ModuleType("myst_nb")
    fake.glue = lambda name, value, display=True: calls.append((name, value, display))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "myst_nb", fake)
    monkeypatch.setattr(book, "_in_ipython_kernel", lambda: True)
    return calls


def test_delegates_to_myst_nb_in_a_kernel(recorder: list[tuple]) -> None:
    assert glue("acc", 0.9812) == 0.9812
    assert glue("n", 3, display=True) == 3
    assert recorder == [("acc", 0.9812, False), ("n", 3, True)]


def test_a_numpy_scalar_is_recorded_as_the_python_number_it_holds(recorder: list[tuple]) -> None:
    value = np.float64(0.25)
    assert glue("x", value) is value
    [(_, recorded, _)] = recorder
    assert type(recorded) is float and repr(recorded) == "0.25"


def test_without_myst_nb_returns_the_value_silently(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # makes `import myst_nb` raise ImportError
    monkeypatch.setattr(book, "_in_ipython_kernel", lambda: True)
    value = {"a": 1}
    assert glue("anything", value) is value
    assert capsys.readouterr() == ("", "")


def test_outside_ipython_prints_nothing_even_with_myst_nb(
    recorder: list[tuple], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(book, "_in_ipython_kernel", lambda: False)
    assert glue("x", 1.5) == 1.5
    assert recorder == []
    assert capsys.readouterr() == ("", "")


def test_real_myst_nb_in_a_plain_python_process_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("myst_nb")
    assert glue("x", 0.25) == 0.25
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"name": ""}, ValueError, "name=''"),
        ({"name": 3}, ValueError, "name=3"),
        ({"display": "yes"}, TypeError, "display='yes'"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type, fragment: str) -> None:
    with pytest.raises(error) as info:
        glue(**({"name": "x", "value": 1} | kwargs))
    assert fragment in str(info.value)
