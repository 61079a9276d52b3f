"""torch.func (grad, vmap) over dropoutlib's functions: the autograd Functions support the transforms."""

from __future__ import annotations

import pytest
import torch

from dropoutlib.fused import FusedDropoutFunction, fused_dropout
from dropoutlib.nn.alpha import alpha_dropout
from dropoutlib.nn.dropconnect import dropconnect_linear
from dropoutlib.nn.dropout import DropoutFunction, dropout, dropout_mask, keep_mask, standard_dropout


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_func_grad_of_dropout_is_the_mask_over_q(p: float) -> None:
    x = torch.randn(50, 20, generator=torch.Generator().manual_seed(1))
    grad = torch.func.grad(lambda t: dropout(t, p, generator=torch.Generator().manual_seed(3)).sum())(x)
    mask = dropout_mask(x, p, generator=torch.Generator().manual_seed(3))
    assert 0 < int((mask == 0).sum()) < mask.numel()
    assert torch.equal(grad, mask)


def test_func_grad_of_standard_dropout_is_the_keep_mask() -> None:
    x = torch.randn(200)
    grad = torch.func.grad(
        lambda t: standard_dropout(t, 0.3, generator=torch.Generator().manual_seed(5)).sum()
    )(x)
    assert torch.equal(grad, keep_mask(x, 0.3, generator=torch.Generator().manual_seed(5)))


def test_func_grad_matches_backward_for_the_functions_built_on_dropout_function() -> None:
    x = torch.randn(4, 6, dtype=torch.float64)
    w = torch.randn(3, 6, dtype=torch.float64)
    cases = {
        "alpha_dropout": lambda t: alpha_dropout(t, 0.3, generator=torch.Generator().manual_seed(2)),
        "dropconnect_linear": lambda t: dropconnect_linear(
            x, t, None, 0.4, generator=torch.Generator().manual_seed(2)
        ),
    }
    for name, f in cases.items():
        arg = x if name == "alpha_dropout" else w
        leaf = arg.clone().requires_grad_(True)
        f(leaf).pow(2).sum().backward()
        assert torch.equal(torch.func.grad(lambda t, f=f: f(t).pow(2).sum())(arg), leaf.grad), name


def test_func_grad_of_fused_dropout_equals_its_backward() -> None:
    x = torch.randn(300)
    grad = torch.func.grad(lambda t: fused_dropout(t, 0.4, seed=11, backend="torch").sum())(x)
    leaf = x.clone().requires_grad_(True)
    fused_dropout(leaf, 0.4, seed=11, backend="torch").sum().backward()
    assert torch.equal(grad, leaf.grad)
    assert torch.equal(grad, fused_dropout(torch.ones(300), 0.4, seed=11, backend="torch"))


def test_vmap_of_dropout_function_with_a_fixed_mask() -> None:
    x = torch.randn(5, 8)
    mask = dropout_mask(x, 0.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.func.vmap(DropoutFunction.apply)(x, mask), x * mask)
    grads = torch.func.vmap(torch.func.grad(lambda t, m: DropoutFunction.apply(t, m).sum()))(x, mask)
    assert torch.equal(grads, mask)


def test_vmap_of_dropout_with_different_randomness_gives_a_mask_per_example() -> None:
    x = torch.ones(64, 100)
    y = torch.func.vmap(lambda t: dropout(t, 0.5), randomness="different")(x)
    assert set(y.unique().tolist()) <= {0.0, 2.0}
    assert not all(torch.equal(y[0], row) for row in y[1:])
    same = torch.func.vmap(lambda t: dropout(t, 0.5), randomness="same")(x)
    assert all(torch.equal(same[0], row) for row in same[1:])


def test_vmap_of_dropout_in_the_default_randomness_mode_raises_torchs_error() -> None:
    # Documented: vmap's default randomness="error" refuses any random draw; pass randomness=.
    with pytest.raises(RuntimeError, match=r"randomness"):
        torch.func.vmap(lambda t: dropout(t, 0.5))(torch.ones(4, 3))


def test_vmap_of_fused_dropout_equals_fused_dropout_of_the_stacked_batch() -> None:
    x = torch.randn(6, 7, 5)
    for in_dims in (0, 1, 2):
        y = torch.func.vmap(lambda t: fused_dropout(t, 0.5, seed=9, backend="torch"), in_dims=in_dims)(x)
        stacked = fused_dropout(x.movedim(in_dims, 0), 0.5, seed=9, backend="torch")
        assert torch.equal(y, stacked)
    per_example = torch.func.grad(lambda t: fused_dropout(t, 0.5, seed=9, backend="torch").sum())
    grads = torch.func.vmap(per_example)(x)
    assert torch.equal(grads, fused_dropout(torch.ones_like(x), 0.5, seed=9, backend="torch"))


def test_vmap_of_fused_dropout_with_same_randomness_is_refused_clearly() -> None:
    with pytest.raises(RuntimeError, match=r"fused_dropout.*randomness='same'"):
        torch.func.vmap(lambda t: fused_dropout(t, 0.5, seed=9), randomness="same")(torch.ones(3, 4))


def test_fused_function_keeps_saving_no_tensor() -> None:
    x = torch.randn(10, requires_grad=True)
    y = FusedDropoutFunction.apply(x, 0.5, 3, "torch")
    assert len(y.grad_fn.saved_tensors) == 0
