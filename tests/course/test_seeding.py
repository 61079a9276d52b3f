"""seed_everything: one seed fixes Python's, NumPy's and torch's global generators."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from dropoutlib.course.seeding import MAX_SEED, seed_everything


def draws() -> tuple[float, float, torch.Tensor]:
    return random.random(), float(np.random.rand()), torch.rand(5)  # noqa: NPY002


def test_same_seed_same_draws_from_every_global_generator() -> None:
    seed_everything(123)
    first = draws()
    seed_everything(123)
    second = draws()
    assert first[:2] == second[:2]
    assert torch.equal(first[2], second[2])


def test_different_seeds_give_different_draws() -> None:
    seed_everything(0)
    first = draws()
    seed_everything(1)
    second = draws()
    assert first[0] != second[0]
    assert first[1] != second[1]
    assert not torch.equal(first[2], second[2])


def test_returns_a_fresh_generator_seeded_with_seed() -> None:
    generator = seed_everything(7)
    assert isinstance(generator, torch.Generator)
    assert torch.equal(torch.rand(4, generator=generator), torch.rand(4, generator=torch.manual_seed(7)))


def test_returned_generator_does_not_advance_the_global_stream() -> None:
    generator = seed_everything(3)
    torch.rand(100, generator=generator)
    after_private_draws = torch.rand(3)
    seed_everything(3)
    assert torch.equal(after_private_draws, torch.rand(3))


def test_model_initialisation_is_fixed_by_the_seed() -> None:
    seed_everything(5)
    a = torch.nn.Linear(4, 3).weight.detach().clone()
    seed_everything(5)
    assert torch.equal(a, torch.nn.Linear(4, 3).weight)


@pytest.mark.parametrize("seed", [0, 1, 2**31, MAX_SEED, np.int64(9)])
def test_accepts_every_valid_seed(seed: int) -> None:
    seed_everything(seed)


@pytest.mark.parametrize(
    ("seed", "error", "fragment"),
    [
        (-1, ValueError, "seed=-1"),
        (MAX_SEED + 1, ValueError, f"seed={MAX_SEED + 1}"),
        (1.5, TypeError, "seed=1.5 (float)"),
        (True, TypeError, "seed=True (bool)"),
        ("0", TypeError, "seed='0' (str)"),
        (None, TypeError, "seed=None"),
    ],
)
def test_bad_seed_is_refused_naming_the_value(seed: object, error: type, fragment: str) -> None:
    with pytest.raises(error, match="seed must be") as info:
        seed_everything(seed)  # type: ignore[arg-type]
    assert fragment in str(info.value)
