"""Chapter 14's statistical claims, re-checked for five seeds through the code the chapter calls.

The chapter asserts, for its seed 0, that a Philox mask of 100,000 elements at p = 0.1 behaves like
independent coins: the drop fraction, the overlap with the next seed's mask (p^2) and the correlation
of neighbouring elements' numbers are each within four standard errors of what independence gives
(``mask_statistics(seed, p, n)``). The same thresholds hold for each of five seeds, and for a second p.
"""

from __future__ import annotations

import pytest

from dropoutlib.experiments.fused_dropout import mask_statistics

SEEDS = [0, 1, 2, 3, 4]
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@pytest.mark.parametrize("p", [0.1, 0.5])
@pytest.mark.parametrize("seed", SEEDS)
def test_philox_masks_behave_like_independent_coins(seed, p):
    stats = mask_statistics(seed, p, 100_000)
    for name, z in (
        ("drop fraction", stats.z_drop),
        ("overlap", stats.z_both),
        ("correlation", stats.z_corr),
    ):
        assert abs(z) < 4, f"seed {seed}, p = {p}: the {name} is {z:.2f} standard errors off"
