"""Bad arguments fail loudly, with a message naming the argument and the value it got."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dropoutlib import numpy_ref
from dropoutlib._validation import (
    check_floating,
    check_generator,
    check_positive_int,
    check_probability,
)
from dropoutlib.nn.dropout import (
    Dropout,
    StandardDropout,
    dropout,
    dropout_mask,
    keep_mask,
    scale_weights_for_inference,
    standard_dropout,
)

FAST = settings(max_examples=50, deadline=None)

NOT_REAL = [None, "0.5", "a", True, False, torch.tensor(0.5), [0.5], 0.5j, object()]
OUT_OF_RANGE = [-0.1, 1.5, -1e-12, 1 + 1e-12, math.inf, -math.inf, 2, -1]


@pytest.mark.parametrize("value", [0, 1, 0.0, 0.5, 1.0, np.float32(0.25), np.float64(0.75)])
def test_check_probability_accepts_probabilities(value: object) -> None:
    result = check_probability(value)
    assert type(result) is float
    assert result == float(value)  # type: ignore[arg-type]


def test_check_probability_accepts_fractions() -> None:
    assert check_probability(Fraction(1, 4)) == 0.25


@pytest.mark.parametrize("value", NOT_REAL, ids=lambda v: "object" if type(v) is object else repr(v))
def test_check_probability_rejects_non_real_with_type_error(value: object) -> None:
    with pytest.raises(TypeError, match=r"^p must be a real number, got p=") as info:
        check_probability(value)
    assert repr(value) in str(info.value)
    assert type(value).__name__ in str(info.value)


@pytest.mark.parametrize("value", [*OUT_OF_RANGE, math.nan], ids=repr)
def test_check_probability_rejects_out_of_range_and_nan(value: float) -> None:
    with pytest.raises(ValueError, match=r"^p must be a probability in \[0, 1\], got p=") as info:
        check_probability(value)
    assert str(info.value).endswith(f"p={value!r}")


def test_check_probability_message_uses_the_given_name() -> None:
    with pytest.raises(ValueError, match=r"input_p must be a probability.*input_p=2"):
        check_probability(2, name="input_p")


@FAST
@given(st.floats(allow_nan=False))
def test_check_probability_accepts_exactly_the_unit_interval(value: float) -> None:
    if 0.0 <= value <= 1.0:
        assert check_probability(value) == value
    else:
        with pytest.raises(ValueError, match=r"p="):
            check_probability(value)


@pytest.mark.parametrize(
    "dtype", [torch.int64, torch.int32, torch.uint8, torch.bool, torch.complex64]
)
def test_check_floating_rejects_non_floating_dtypes(dtype: torch.dtype) -> None:
    tensor = torch.zeros(3, dtype=dtype)
    message = rf"input must be a floating-point tensor, got dtype {dtype}"
    with pytest.raises(TypeError, match=message):
        check_floating(tensor)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_check_floating_accepts_floating_dtypes(dtype: torch.dtype) -> None:
    check_floating(torch.zeros(3, dtype=dtype))


@pytest.mark.parametrize("value", [[1.0, 2.0], np.ones(3), 1.0, None])
def test_check_floating_rejects_non_tensors(value: object) -> None:
    with pytest.raises(TypeError, match=rf"x must be a torch.Tensor, got {type(value).__name__}"):
        check_floating(value, name="x")


def test_check_positive_int() -> None:
    assert check_positive_int(3, "n") == 3
    assert check_positive_int(np.int64(2), "n") == 2
    with pytest.raises(ValueError, match=r"n must be a positive integer, got n=0"):
        check_positive_int(0, "n")
    with pytest.raises(ValueError, match=r"n=-3"):
        check_positive_int(-3, "n")
    for bad in [True, 2.0, "2", None]:
        with pytest.raises(TypeError, match=r"n must be an integer, got n="):
            check_positive_int(bad, "n")


def test_check_generator() -> None:
    check_generator(None)
    check_generator(torch.Generator())
    for bad in [0, np.random.default_rng(0), "cpu"]:
        with pytest.raises(TypeError, match=r"generator must be a torch.Generator or None"):
            check_generator(bad)


# The public functions all use these checks.

PUBLIC_CALLS = {
    "dropout": lambda p: dropout(torch.ones(3), p),
    "dropout_eval": lambda p: dropout(torch.ones(3), p, training=False),
    "dropout_inplace": lambda p: dropout(torch.ones(3), p, inplace=True),
    "standard_dropout": lambda p: standard_dropout(torch.ones(3), p),
    "keep_mask": lambda p: keep_mask(torch.ones(3), p),
    "dropout_mask": lambda p: dropout_mask(torch.ones(3), p),
    "scale_weights_for_inference": lambda p: scale_weights_for_inference(torch.ones(3), p),
    "Dropout": lambda p: Dropout(p),
    "StandardDropout": lambda p: StandardDropout(p),
    "numpy_ref.dropout_forward": lambda p: numpy_ref.dropout_forward(
        np.ones(3), p, np.random.default_rng(0)
    ),
}


@pytest.mark.parametrize("call", PUBLIC_CALLS.values(), ids=PUBLIC_CALLS.keys())
@pytest.mark.parametrize("p", [1.5, -0.5, math.nan], ids=repr)
def test_public_api_rejects_bad_p_values(call, p: float) -> None:
    with pytest.raises(ValueError, match=rf"p must be a probability in \[0, 1\], got p={p!r}"):
        call(p)


@pytest.mark.parametrize("call", PUBLIC_CALLS.values(), ids=PUBLIC_CALLS.keys())
@pytest.mark.parametrize("p", ["0.5", None, True, torch.tensor(0.5)], ids=repr)
def test_public_api_rejects_non_real_p(call, p: object) -> None:
    with pytest.raises(TypeError, match=r"p must be a real number, got p="):
        call(p)


def test_nan_p_is_a_value_error_naming_p() -> None:
    with pytest.raises(ValueError, match=r"got p=nan"):
        dropout(torch.ones(3), math.nan)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_dropout_rejects_integer_input_naming_the_dtype(dtype: torch.dtype) -> None:
    x = torch.ones(3, dtype=dtype)
    for call in (dropout, standard_dropout, keep_mask):
        with pytest.raises(TypeError, match=rf"got dtype {dtype}"):
            call(x, 0.5)
    with pytest.raises(TypeError, match=rf"got dtype {dtype}"):
        dropout(x, 0.5, training=False)  # checked even when nothing would be computed
    with pytest.raises(TypeError, match=rf"weight must be a floating-point tensor.*{dtype}"):
        scale_weights_for_inference(x, 0.5)


def test_dropout_rejects_wrong_generator_type() -> None:
    with pytest.raises(TypeError, match=r"generator must be a torch.Generator or None, got"):
        dropout(torch.ones(3), 0.5, generator=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"generator"):
        standard_dropout(torch.ones(3), 0.5, generator=np.random.default_rng(0))  # type: ignore[arg-type]


def test_numpy_ref_rejects_integer_arrays_and_wrong_rng() -> None:
    with pytest.raises(TypeError, match=r"x must be a floating-point array, got dtype int64"):
        numpy_ref.dropout_forward(np.ones(3, dtype=np.int64), 0.5, np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"rng must be a numpy.random.Generator"):
        numpy_ref.dropout_forward(np.ones(3), 0.5, 0)  # type: ignore[arg-type]


# training= and inplace= must be True or False: F.dropout(x, 0.5, training="False") raises TypeError,
# and a truthy string must not silently turn dropout on.


def _training_calls() -> dict[str, object]:
    from dropoutlib.functional import (
        alpha_dropout,
        drop_path,
        dropblock,
        dropconnect_linear,
        fused_dropout,
        gaussian_dropout,
        spatial_dropout,
    )

    x4 = torch.ones(2, 3, 4, 4)
    return {
        "dropout": lambda **kw: dropout(x4, 0.5, **kw),
        "standard_dropout": lambda **kw: standard_dropout(x4, 0.5, **kw),
        "spatial_dropout": lambda **kw: spatial_dropout(x4, 0.5, **kw),
        "gaussian_dropout": lambda **kw: gaussian_dropout(x4, 0.5, **kw),
        "alpha_dropout": lambda **kw: alpha_dropout(x4, 0.5, **kw),
        "drop_path": lambda **kw: drop_path(x4, 0.5, **kw),
        "dropblock": lambda **kw: dropblock(x4, 0.5, **kw),
        "dropconnect_linear": lambda **kw: dropconnect_linear(
            torch.ones(2, 4), torch.ones(3, 4), None, 0.5, **kw
        ),
        "fused_dropout": lambda **kw: fused_dropout(x4, 0.5, **kw),
    }


TRAINING_CALLS = _training_calls()
NOT_BOOL = ["False", "True", 0, 1, None, np.bool_(True), torch.tensor(True)]


@pytest.mark.parametrize("name", TRAINING_CALLS)
@pytest.mark.parametrize("value", NOT_BOOL, ids=repr)
def test_functional_forms_refuse_a_non_bool_training(name: str, value: object) -> None:
    with pytest.raises(TypeError, match=r"training must be True or False, got training="):
        TRAINING_CALLS[name](training=value)


@pytest.mark.parametrize("name", ["dropout", "spatial_dropout"])
@pytest.mark.parametrize("value", NOT_BOOL, ids=repr)
def test_functional_forms_refuse_a_non_bool_inplace(name: str, value: object) -> None:
    with pytest.raises(TypeError, match=r"inplace must be True or False, got inplace="):
        TRAINING_CALLS[name](inplace=value)


@pytest.mark.parametrize("name", TRAINING_CALLS)
def test_functional_forms_accept_true_and_false(name: str) -> None:
    for value in (True, False):
        assert isinstance(TRAINING_CALLS[name](training=value), torch.Tensor)
