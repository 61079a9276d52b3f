"""Fused dropout: Philox is right, the mask is a function of the seed, and nothing is stored for backward.

The Triton kernel runs where Triton is installed: compiled on a GPU, or through Triton's interpreter on
the CPU (tests/conftest.py sets ``TRITON_INTERPRET=1`` when there is no GPU).
"""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn.functional as F

from dropoutlib.diagnostics import diagnose
from dropoutlib.fused import (
    FusedDropout,
    FusedDropoutFunction,
    fused_dropout,
    new_seed,
    philox_uniform,
    triton_available,
)

pytestmark = pytest.mark.usefixtures("one_thread")

# --- an independent Philox-4x32-10, in plain Python integers ----------------------------------------------


def philox4x32(counter: tuple[int, int, int, int], key: tuple[int, int], rounds: int = 10) -> tuple[int, ...]:
    """Salmon et al. (2011), written from the specification: one round maps (c0, c1, c2, c3) to
    (hi(B*c2) ^ c1 ^ k0, lo(B*c2), hi(A*c0) ^ c3 ^ k1, lo(A*c0)), then the key is bumped."""
    m = 0xFFFFFFFF
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for _ in range(rounds):
        pa, pb = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (pb >> 32) ^ c1 ^ k0, pb & m, (pa >> 32) ^ c3 ^ k1, pa & m
        k0, k1 = (k0 + 0x9E3779B9) & m, (k1 + 0xBB67AE85) & m
    return c0, c1, c2, c3


def reference_uniform(seed: int, offset: int) -> float:
    """Triton's tl.rand for one element: Philox on counter (offset_lo, offset_hi, 0, 0), key (seed)."""
    word = philox4x32((offset & 0xFFFFFFFF, offset >> 32, 0, 0), (seed & 0xFFFFFFFF, seed >> 32))[0]
    signed = word - 2**32 if word >= 2**31 else word
    folded = ~signed if signed < 0 else signed
    return float(torch.tensor(float(folded), dtype=torch.float32) * torch.tensor(4.6566127342e-10))


def test_reference_philox_reproduces_random123_known_answers():
    # Known-answer vectors of the Random123 library for philox4x32-10.
    assert philox4x32((0, 0, 0, 0), (0, 0)) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)
    m = 0xFFFFFFFF
    assert philox4x32((m, m, m, m), (m, m)) == (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)
    pi = (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344)
    assert philox4x32(pi, (0xA4093822, 0x299F31D0)) == (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**32 - 1, 2**32 + 5, 2**62 + 17])
def test_philox_uniform_matches_the_reference(seed):
    offsets = [0, 1, 2, 1023, 1024, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**40 + 3]
    got = philox_uniform(seed, torch.tensor(offsets)).tolist()
    assert got == [reference_uniform(seed, o) for o in offsets]


def test_philox_uniform_is_uniform_on_0_1():
    u = philox_uniform(3, torch.arange(200_000))
    assert u.dtype == torch.float32 and float(u.min()) >= 0.0 and float(u.max()) < 1.0
    n = u.numel()
    assert abs(float(u.mean()) - 0.5) < 5 * math.sqrt(1 / 12 / n)
    counts = torch.histc(u, bins=20, min=0.0, max=1.0)
    chi2 = float(((counts - n / 20) ** 2 / (n / 20)).sum())
    assert chi2 < 50, f"chi-square {chi2:.1f} with 19 degrees of freedom"  # P(chi2_19 > 50) ~ 1e-4


@pytest.mark.parametrize(
    ("seed", "offsets", "error", "match"),
    [
        (-1, torch.arange(3), ValueError, "seed=-1"),
        (2**63, torch.arange(3), ValueError, "seed="),
        (1.5, torch.arange(3), TypeError, "seed=1.5"),
        (True, torch.arange(3), TypeError, "seed=True"),
        (0, torch.rand(3), TypeError, "offsets must be an integer"),
        (0, torch.tensor([-2, 1]), ValueError, "minimum of -2"),
    ],
)
def test_philox_uniform_rejects_bad_arguments(seed, offsets, error, match):
    with pytest.raises(error, match=match):
        philox_uniform(seed, offsets)


# --- the dropout ----------------------------------------------------------------------------------------


def test_the_keep_rule_is_u_at_least_p_scaled_by_one_over_q():
    n = 3 * 2**16 + 7  # several blocks of the torch backend, and a partial one
    x = torch.randn(n)
    y = fused_dropout(x, 0.3, seed=9)
    keep = philox_uniform(9, torch.arange(n)) >= 0.3
    assert torch.equal(y != 0, keep & (x != 0))
    torch.testing.assert_close(y[keep], x[keep] / 0.7, rtol=1e-6, atol=0)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_drop_rate_and_mean_are_those_of_dropout(p):
    x = torch.ones(400_000)
    y = fused_dropout(x, p, seed=1)
    n, q = x.numel(), 1 - p
    assert abs(float((y == 0).float().mean()) - p) < 5 * math.sqrt(p * q / n)
    assert abs(float(y.mean()) - 1.0) < 5 * math.sqrt(p / q / n)
    assert torch.equal(y.unique(), torch.tensor([0.0, 1 / q]))


def test_the_backward_mask_is_the_forward_mask():
    x = torch.randn(64, 33, requires_grad=True)
    y = fused_dropout(x, 0.4, seed=2)
    grad_out = torch.randn_like(y)
    (grad,) = torch.autograd.grad(y, x, grad_out)
    kept = y != 0
    assert torch.equal(grad == 0, ~kept | (grad_out == 0))
    torch.testing.assert_close(grad[kept], grad_out[kept] / 0.6)


def test_gradcheck():
    x = torch.randn(6, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: fused_dropout(t, 0.3, seed=4), (x,))


def test_no_tensor_is_saved_for_backward():
    def saved_by(fn) -> int:
        count = 0

        def pack(tensor):
            nonlocal count
            count += 1
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn(torch.randn(100, requires_grad=True))
        return count

    assert saved_by(lambda x: fused_dropout(x, 0.5, seed=0)) == 0
    assert saved_by(lambda x: F.dropout(x, 0.5)) >= 1  # PyTorch's keeps its mask: the test can tell


def test_seeds_calls_and_generators():
    x = torch.randn(2000)
    assert torch.equal(fused_dropout(x, 0.5, seed=5), fused_dropout(x, 0.5, seed=5))
    assert not torch.equal(fused_dropout(x, 0.5, seed=5), fused_dropout(x, 0.5, seed=6))
    assert not torch.equal(fused_dropout(x, 0.5), fused_dropout(x, 0.5))  # a fresh seed per call
    a = fused_dropout(x, 0.5, generator=torch.Generator().manual_seed(3))
    b = fused_dropout(x, 0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    torch.manual_seed(11)
    c = fused_dropout(x, 0.5)
    torch.manual_seed(11)
    assert torch.equal(c, fused_dropout(x, 0.5))
    assert 0 <= new_seed() < 2**62


def test_the_mask_follows_row_major_order_for_any_layout():
    x = torch.randn(8, 6)
    y = fused_dropout(x.t(), 0.5, seed=3)  # a transposed view: the mask is laid over x.t().contiguous()
    assert y.shape == (6, 8)
    assert torch.equal(y, fused_dropout(x.t().contiguous(), 0.5, seed=3))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtypes_shapes_and_special_cases(dtype):
    x = torch.randn(3, 5, 7).to(dtype)
    y = fused_dropout(x, 0.25, seed=0)
    assert y.shape == x.shape and y.dtype == dtype
    assert fused_dropout(x, 0.25, training=False) is x
    assert fused_dropout(x, 0.0) is x
    assert torch.equal(fused_dropout(x, 1.0), torch.zeros_like(x))
    empty = torch.empty(0, 4, dtype=dtype)
    assert fused_dropout(empty, 0.5) is empty


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"p": 1.5}, ValueError, "p=1.5"),
        ({"p": "0.5"}, TypeError, "p='0.5'"),
        ({"input": torch.arange(4)}, TypeError, "floating-point"),
        ({"seed": -3}, ValueError, "seed=-3"),
        ({"seed": 2.0}, TypeError, "seed=2.0"),
        ({"generator": 3}, TypeError, "generator=3"),
        ({"backend": "cuda"}, ValueError, "backend='cuda'"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    args = {"input": torch.randn(4), "p": 0.5} | kwargs
    with pytest.raises(error, match=match):
        fused_dropout(args.pop("input"), args.pop("p"), **args)


def test_the_layer():
    layer = FusedDropout(0.2, backend="torch")
    assert repr(layer) == "FusedDropout(p=0.2, backend='torch')"
    x = torch.randn(16, 32)
    assert not torch.equal(layer(x), layer(x))
    assert torch.equal(layer.eval()(x), x)
    with pytest.raises(ValueError, match="p=2"):
        FusedDropout(2)
    with pytest.raises(ValueError, match="backend='gpu'"):
        FusedDropout(0.5, backend="gpu")


def test_the_diagnostics_pass_a_network_using_it():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(20, 64), torch.nn.ReLU(), FusedDropout(0.5), torch.nn.Linear(64, 3)
    )
    report = diagnose(model, torch.randn(256, 20))
    assert report.passed, str(report)


# --- the Triton kernel ----------------------------------------------------------------------------------

needs_triton = pytest.mark.skipif(
    not triton_available() or not (torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"),
    reason="needs Triton, and a GPU or Triton's interpreter (TRITON_INTERPRET=1)",
)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@needs_triton
@pytest.mark.parametrize("n", [1, 1000, 1024, 1025, 5000])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_the_kernel_gives_the_torch_backend_s_mask_and_values(n, dtype):
    x = torch.randn(n, device=DEVICE).to(dtype).requires_grad_()
    a = fused_dropout(x, 0.3, seed=21, backend="triton")
    b = fused_dropout(x, 0.3, seed=21, backend="torch")
    grad_out = torch.randn_like(a)
    (ga,) = torch.autograd.grad(a, x, grad_out)
    (gb,) = torch.autograd.grad(b, x, grad_out)
    assert torch.equal(a == 0, b == 0) and torch.equal(ga == 0, gb == 0)
    if dtype == torch.bfloat16 and DEVICE == "cpu":
        # the interpreter rounds float32 -> bfloat16 toward zero, the GPU to nearest: one ulp at most
        torch.testing.assert_close(a, b, rtol=2**-7, atol=0)
        torch.testing.assert_close(ga, gb, rtol=2**-7, atol=0)
    else:
        assert torch.equal(a, b) and torch.equal(ga, gb)


@needs_triton
def test_the_kernel_draws_new_masks_for_new_seeds_and_handles_empty_input():
    x = torch.randn(4096, device=DEVICE)
    a, b = (fused_dropout(x, 0.5, seed=s, backend="triton") for s in (1, 2))
    assert not torch.equal(a == 0, b == 0)
    assert fused_dropout(x[:0], 0.5, backend="triton").numel() == 0


@needs_triton
def test_the_kernel_refuses_float64():
    with pytest.raises(TypeError, match="float64"):
        fused_dropout(torch.randn(4, dtype=torch.float64, device=DEVICE), 0.5, backend="triton")


def test_the_function_alone_saves_p_and_seed():
    x = torch.randn(10, requires_grad=True)
    y = FusedDropoutFunction.apply(x, 0.5, 77, "torch")
    assert y.grad_fn.p == 0.5 and y.grad_fn.seed == 77 and y.grad_fn.saved_tensors == ()


def _rng_untouched(call) -> bool:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    call()
    return torch.equal(before, torch.get_rng_state())


@pytest.mark.parametrize(
    "call",
    [
        lambda: FusedDropout(0.5, backend="torch").eval()(torch.randn(4, 8, generator=torch.Generator())),
        lambda: fused_dropout(torch.ones(4, 8), 0.0),
        lambda: fused_dropout(torch.ones(4, 8), 0.5, training=False),
        lambda: fused_dropout(torch.ones(4, 8), 1.0),
        lambda: fused_dropout(torch.empty(0, 8), 0.5),
    ],
    ids=["layer-eval", "p=0", "training=False", "p=1", "empty"],
)
def test_no_mask_needed_leaves_the_global_rng_untouched(call):
    assert _rng_untouched(call)


def test_no_mask_needed_leaves_a_given_generator_untouched():
    generator = torch.Generator().manual_seed(5)
    before = generator.get_state()
    fused_dropout(torch.ones(3), 0.5, training=False, generator=generator)
    fused_dropout(torch.ones(3), 0.0, generator=generator)
    assert torch.equal(before, generator.get_state())


def test_a_mask_does_draw_from_the_global_rng_and_arguments_are_still_checked():
    assert not _rng_untouched(lambda: fused_dropout(torch.ones(4, 8), 0.5))  # the test can tell
    with pytest.raises(ValueError, match="seed=-3"):
        fused_dropout(torch.ones(3), 0.5, training=False, seed=-3)
    with pytest.raises(ValueError, match="backend='gpu'"):
        fused_dropout(torch.ones(3), 0.0, backend="gpu")
