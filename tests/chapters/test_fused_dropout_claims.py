"""Chapter 14's claims, re-checked through the claims functions the chapter calls.

The chapter checks its claims for seed 0 (and the Philox seed 2024); here the same functions run for
five seeds and, for the mask statistics, a second p. Their thresholds live in
``dropoutlib.experiments.fused_dropout`` (for the masks: every statistic within ``MASK_Z`` = 4 standard
errors of what independent coins give). The claims about bytes kept, the rooflines and the committed
benchmark tables do not depend on a seed and are checked once.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

import dropoutlib
from dropoutlib.course.claims import check
from dropoutlib.experiments.fused_dropout import (
    FUSED_TARGETS,
    H100_ANCHOR,
    benchmark_claims,
    benchmark_tables,
    config_dropout_rates,
    counter_claims,
    kept_claims,
    kernel_claims,
    mask_claims,
    mask_memory_claims,
    mask_statistics,
    roofline_claims,
    rooflines,
    rule_claims,
    saved_bytes,
    transformer_dropout_elements,
)
from dropoutlib.fused import fused_dropout, philox_uniform, triton_available

SEEDS = [0, 1, 2, 3, 4]
P = 0.1  # the chapter's drop probability
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@pytest.mark.parametrize("p", [0.1, 0.5])
@pytest.mark.parametrize("seed", SEEDS)
def test_philox_masks_behave_like_independent_coins(seed, p):
    check(mask_claims(mask_statistics(seed, p, 100_000)))


@pytest.mark.parametrize("seed", SEEDS)
def test_numbers_are_computed_alone_in_any_order_and_kept_by_the_rule(seed):
    generator = torch.Generator().manual_seed(seed)
    n = 10_000
    u_all = philox_uniform(2024 + seed, torch.arange(n))
    picked = torch.randint(n, (4,), generator=generator)
    alone = philox_uniform(2024 + seed, picked)
    shuffled = torch.randperm(n, generator=generator)
    x = torch.randn(n, generator=generator)
    y = fused_dropout(x, P, seed=2024 + seed)
    check(counter_claims(2024 + seed, u_all, picked, alone, shuffled) + rule_claims(x, y, u_all, P))


def test_pytorch_keeps_a_mask_and_fused_dropout_nothing():
    methods = {
        "F.dropout": lambda t: F.dropout(t, P),
        "dropoutlib.dropout": lambda t: dropoutlib.dropout(t, P),
        "fused_dropout": lambda t: fused_dropout(t, P),
    }
    kept = {}
    for name, fn in methods.items():
        for dtype in (torch.float32, torch.bfloat16):
            x = torch.randn(4096, dtype=dtype, requires_grad=True)
            kept[name, dtype] = saved_bytes(fn, x) / x.numel()
    check(kept_claims(kept))


def test_the_goal_rules_out_a_byte_mask_not_a_bit_mask():
    n, bandwidth = H100_ANCHOR.size, H100_ANCHOR.copy_bandwidth
    roof = rooflines(n, 2, bandwidth)
    target_ms = H100_ANCHOR.forward_backward_ms["native"] / FUSED_TARGETS.forward_backward_speedup
    check(roofline_claims(roof, target_ms))


def test_the_committed_benchmark_tables():
    check(benchmark_claims(benchmark_tables()))


@pytest.mark.skipif(
    not triton_available() or not (torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"),
    reason="needs Triton, and a GPU or Triton's interpreter (TRITON_INTERPRET=1)",
)
@pytest.mark.parametrize("seed", SEEDS)
def test_the_kernel_equals_the_torch_backend(seed):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    generator = torch.Generator(device).manual_seed(seed)
    x = torch.randn(3000, device=device, generator=generator)
    grad_out = torch.randn(3000, device=device, generator=generator)
    results = {}
    for backend in ("triton", "torch"):
        xb = x.clone().requires_grad_()
        yb = fused_dropout(xb, P, seed=7 + seed, backend=backend)
        yb.backward(grad_out)
        results[backend] = (yb.detach(), xb.grad)
    x16 = x.to(torch.bfloat16)
    y16 = {b: fused_dropout(x16, P, seed=7 + seed, backend=b).float() for b in ("triton", "torch")}
    check(kernel_claims(results, y16))


def test_the_attention_masks_dominate_and_recent_models_use_no_dropout():
    elements = transformer_dropout_elements(batch=8, seq_len=2048, d_model=4096, n_heads=32)
    check(mask_memory_claims(elements, config_dropout_rates()))
