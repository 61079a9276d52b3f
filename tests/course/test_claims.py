"""course.claims: what a chapter's check cell prints, what a failed claim says, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from dropoutlib.course.book import table
from dropoutlib.course.claims import Claim, above, below, check


def test_check_prints_one_line_per_claim(capsys):
    check([below("the loss is small", 0.001, 0.01), above("the gap is large", 3, 2)])
    assert capsys.readouterr().out.splitlines() == [
        "✓ the loss is small (0.001 < 0.01)",
        "✓ the gap is large (3 > 2)",
    ]


def test_check_names_every_claim_that_fails(capsys):
    claims = [below("a", 2.0, 1.0), above("b", 5.0, 1.0), Claim("c", False, "by hand")]
    with pytest.raises(AssertionError) as error:
        check(claims)
    assert str(error.value) == "2 of 3 claims do not hold:\n- a (2 < 1)\n- c (by hand)"
    assert capsys.readouterr().out == "", "nothing is printed when a claim fails"


def test_bounds_are_strict_and_numpy_values_work():
    assert not below("equal", 1.0, 1.0).holds and not above("equal", 1.0, 1.0).holds
    claim = above("numpy", np.float64(0.5), np.float32(0.25))
    assert claim.holds is True and claim.evidence == "0.5 > 0.25"
    assert Claim("numpy bool", np.bool_(True), "").holds is True


@pytest.mark.parametrize("bad", [[], ["not a claim"], None])
def test_check_refuses_what_is_not_a_list_of_claims(bad):
    with pytest.raises(TypeError, match="claims must be a non-empty list of Claim"):
        check(bad)


def test_claims_refuse_bad_fields():
    with pytest.raises(TypeError, match="holds must be True or False"):
        Claim("s", 1, "e")
    with pytest.raises(TypeError, match="statement must be a non-empty str"):
        Claim("", True, "e")
    with pytest.raises(TypeError, match="value must be a real number"):
        below("s", "0.1", 1)


def test_table_rounds_and_labels_rows():
    frame = table([{"p": 0.5, "loss": 0.123456, "n": 3}], index="p", digits=3)
    assert frame.index.name == "p" and frame.loc[0.5, "loss"] == 0.123 and frame.loc[0.5, "n"] == 3
    with pytest.raises(ValueError, match="index must name a column"):
        table([{"a": 1}], index="b")
    with pytest.raises(TypeError, match="rows must be a non-empty sequence"):
        table({"a": 1})
