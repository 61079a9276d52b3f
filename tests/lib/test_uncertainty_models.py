"""mc_predict on the models people have: transformers, stochastic depth, tuple and dict batches, models
that return tuples or dicts, in-place first layers, bfloat16, and the RNG of the devices it uses.

Every model is built here from torch alone (timm and torchvision are not installed: their stochastic-depth
layers are stood in for by small classes with the same names and the same behaviour).
"""

from __future__ import annotations

import contextlib
from collections import namedtuple
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from standins import DropPath, StochasticDepth
from torch import nn

from dropoutlib.course.models import mlp
from dropoutlib.uncertainty import entropy, mc_predict, stochastic_layers

pytestmark = pytest.mark.usefixtures("one_thread")


def modes(model: nn.Module) -> list[bool]:
    return [module.training for module in model.modules()]


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: t.detach().clone() for name, t in model.state_dict().items()}


def assert_passes_vary(samples: torch.Tensor) -> None:
    assert any(not torch.equal(samples[0], samples[t]) for t in range(1, samples.shape[0])), (
        "every pass came out identical: the model's dropout was not switched on"
    )


# --- 1. transformers: the fused fast path and the attention dropout ---------------------------------


class Classifier(nn.Module):
    """A small transformer classifier over sequences of feature vectors, ``batch_first=True``."""

    def __init__(self, dropout: float = 0.3, layers: int = 2, norm_first: bool = False) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            d_model=16, nhead=2, dim_feedforward=32, dropout=dropout, batch_first=True, norm_first=norm_first
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x).mean(dim=1))


class AttentionOnly(nn.Module):
    """The only dropout of this model is nn.MultiheadAttention's own ``dropout`` on the attention weights."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 2, dropout=0.5, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.attn(x, x, x, need_weights=False)
        return self.head(out.mean(dim=1))


@pytest.mark.parametrize("norm_first", [False, True])
def test_a_transformer_encoder_in_eval_mode_gives_passes_that_vary(norm_first):
    torch.manual_seed(0)
    model = Classifier(norm_first=norm_first).eval()
    x = torch.randn(4, 5, 16)
    before_modes, before_state = modes(model), state(model)
    with torch.no_grad():
        pred = mc_predict(model, x, samples=6, seed=0)
    assert_passes_vary(pred.samples)
    assert float(pred.mutual_information.max()) > 0
    assert modes(model) == before_modes
    for name, t in model.state_dict().items():
        assert torch.equal(t, before_state[name]), f"{name} changed"


def test_the_fast_path_and_the_nested_tensor_path_are_not_taken_during_the_passes():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.3, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=True).eval()
    x = torch.randn(3, 5, 16)
    mask = torch.zeros(3, 5, dtype=torch.bool)
    mask[0, 3:] = True  # padding: with the fast path on, the encoder would switch to nested tensors

    class Forward(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = model

        def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return self.encoder(x, src_key_padding_mask=mask)

    pred = mc_predict(Forward(), (x, mask), samples=4, seed=0, task="regression")
    assert_passes_vary(pred.samples)
    assert not model.training and not any(m.training for m in model.modules())


def test_the_attention_dropout_of_multihead_attention_is_switched_on():
    torch.manual_seed(0)
    model = AttentionOnly().eval()
    names = [name for name, _ in stochastic_layers(model)]
    assert names == ["attn"]
    pred = mc_predict(model, torch.randn(3, 6, 16), samples=5, seed=0)
    assert_passes_vary(pred.samples)
    assert modes(model) == [False, False, False, False]


def test_flags_are_restored_when_a_transformer_pass_raises():
    torch.manual_seed(0)
    model = nn.Sequential(Classifier(), nn.Identity())
    model.eval()
    model[0].encoder.layers[1].train()  # a mixture, to be put back exactly

    def explode(module, args):
        raise RuntimeError("boom")

    model[1].register_forward_pre_hook(explode)
    before = modes(model)
    with pytest.raises(RuntimeError, match="boom"):
        mc_predict(model, torch.randn(2, 5, 16), samples=3, seed=0)
    assert modes(model) == before


class FrozenDropout(nn.Module):
    """A "dropout" whose randomness is decided by a flag of its own (like a fused kernel that was compiled
    in eval mode): mc_predict switches its training flag on, and the passes still come out identical."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.sample = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, training=self.sample)



def test_identical_passes_despite_a_dropout_raise_a_clear_error():
    model = nn.Sequential(nn.Linear(4, 8), FrozenDropout(0.5), nn.Linear(8, 3))
    with pytest.raises(RuntimeError, match=r"identical.*(fused|training flag)"):
        mc_predict(model, torch.randn(5, 4), samples=4, seed=0)
    model[1].sample = True  # the same model, its dropout really on: fine
    assert_passes_vary(mc_predict(model, torch.randn(5, 4), samples=4, seed=0).samples)


def test_a_dropout_free_model_still_raises_and_rate_zero_stays_allowed():
    with pytest.raises(ValueError, match="at least one dropout layer"):
        mc_predict(nn.Linear(3, 2), torch.randn(2, 3), samples=2)
    pred = mc_predict(nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.0)), torch.randn(2, 3), samples=3)
    assert torch.equal(pred.samples[0], pred.samples[2])  # p = 0: identical by construction, no error


class SDPAttention(nn.Module):
    """Self-attention through F.scaled_dot_product_attention, its dropout_p read off its training flag (the
    way Hugging Face attention modules call it), and no dropout layer: nothing mc_predict can switch on."""

    def __init__(self, p: float = 0.4) -> None:
        super().__init__()
        self.qkv = nn.Linear(8, 24)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.p if self.training else 0.0)
        return out.mean(dim=1)


def test_a_model_whose_only_dropout_is_functional_gets_an_error_that_says_so():
    with pytest.raises(ValueError, match="scaled_dot_product_attention"):
        mc_predict(SDPAttention().eval(), torch.randn(3, 4, 8), samples=4, seed=0, task="regression")


# --- 2. stochastic depth layers of timm and torchvision (stand-ins with their names) ------------------




class DropBlock2d(nn.Module):
    """timm.layers.DropBlock2d, reduced to its behaviour here: drops feature-map entries in training."""

    def __init__(self, drop_prob: float = 0.1, block_size: int = 3) -> None:
        super().__init__()
        self.drop_prob, self.block_size = drop_prob, block_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.drop_prob, training=self.training)


class Residual(nn.Module):
    def __init__(self, drop: nn.Module) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.drop = drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.fc(x))


@pytest.mark.parametrize("layer", [DropPath(0.5), StochasticDepth(0.5), DropBlock2d(0.5)])
def test_stochastic_depth_layers_are_found_and_switched_on(layer):
    torch.manual_seed(0)
    model = nn.Sequential(Residual(layer), nn.Linear(6, 3)).eval()
    assert [name for name, _ in stochastic_layers(model)] == ["0.drop"]
    x = torch.randn(8, 6)
    pred = mc_predict(model, x, samples=6, seed=0)
    assert_passes_vary(pred.samples)
    assert not any(modes(model))


# --- 3. batches and outputs ---------------------------------------------------------------------------


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.drop = nn.Dropout(0.5)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(input_ids * attention_mask))


class Returns(nn.Module):
    """Returns its logits wrapped the way libraries do: a tuple, a dict, an object with ``.logits``."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 3))
        self.kind = kind

    def forward(self, x: torch.Tensor):
        logits = self.net(x)
        hidden = torch.zeros(x.shape[0], 7)
        if self.kind == "tuple":
            return logits, hidden
        if self.kind == "dict":
            return {"hidden": hidden, "logits": logits}
        if self.kind == "object":
            return SimpleNamespace(hidden=hidden, logits=logits)
        return {"hidden": hidden, "scores": logits}


def test_tuple_and_dict_batches_are_unpacked_into_the_call():
    torch.manual_seed(0)
    model = TwoInputs()
    ids, mask = torch.randn(5, 4), torch.ones(5, 4)
    by_tuple = mc_predict(model, (ids, mask), 4, seed=0)
    by_dict = mc_predict(model, {"input_ids": ids, "attention_mask": mask}, samples=4, seed=0)
    assert by_tuple.samples.shape == (4, 5, 3)
    assert torch.equal(by_tuple.samples, by_dict.samples)
    assert_passes_vary(by_dict.samples)


@pytest.mark.parametrize("kind", ["tuple", "dict", "object"])
def test_the_logits_are_picked_out_of_what_the_model_returns(kind):
    torch.manual_seed(0)
    model = Returns(kind)
    x = torch.randn(5, 4)
    pred = mc_predict(model, x, samples=3, seed=2)
    with torch.no_grad():
        expected = mc_predict(model.net, x, samples=3, seed=2)
    assert torch.equal(pred.samples, expected.samples)


def test_output_picks_the_tensor_and_without_it_an_unknown_output_is_a_clear_error():
    torch.manual_seed(0)
    model = Returns("other")
    x = torch.randn(5, 4)
    with pytest.raises(TypeError, match="output="):
        mc_predict(model, x, samples=2, seed=0)
    pred = mc_predict(model, x, samples=3, seed=2, output=lambda out: out["scores"])
    assert torch.equal(pred.samples, mc_predict(model.net, x, samples=3, seed=2).samples)
    with pytest.raises(TypeError, match="output"):
        mc_predict(model, x, samples=2, seed=0, output=lambda out: out["scores"].tolist())
    with pytest.raises(TypeError, match="output"):
        mc_predict(model, x, samples=2, seed=0, output="scores")


@pytest.mark.parametrize("batch", [[[1.0, 2.0]], "text", 3, {1: torch.ones(2)}])
def test_a_batch_that_is_none_of_tensor_tuple_dict_is_named(batch):
    with pytest.raises(TypeError, match="batch"):
        mc_predict(mlp(2, [4], 2, p=0.5), batch, samples=2)


# --- 4. the caller's batch is never modified ------------------------------------------------------------


def test_an_inplace_first_layer_leaves_the_callers_batch_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Dropout(0.5, inplace=True), nn.Linear(6, 3))
    x = torch.randn(10, 6)
    kept = x.clone()
    pred = mc_predict(model, x, samples=5, seed=0)
    assert torch.equal(x, kept), "mc_predict zeroed entries of the caller's input"
    assert_passes_vary(pred.samples)
    # every pass drew from the intact input: the same passes as without inplace
    reference = mc_predict(nn.Sequential(nn.Dropout(0.5), model[1]), x, samples=5, seed=0)
    assert torch.equal(pred.samples, reference.samples)


def test_inplace_layers_leave_dict_batches_alone():
    torch.manual_seed(0)

    class InPlace(TwoInputs):
        def forward(self, input_ids, attention_mask):
            attention_mask.mul_(2)
            return self.fc(F.dropout(input_ids, 0.5, self.drop.training, inplace=True))

    ids, mask = torch.randn(5, 4), torch.ones(5, 4)
    batch = {"input_ids": ids, "attention_mask": mask}
    mc_predict(InPlace(), batch, samples=3, seed=0)
    assert batch["input_ids"] is ids and torch.equal(mask, torch.ones(5, 4))
    assert not bool((ids == 0).any())


def test_inplace_layers_leave_namedtuple_batches_alone():
    Batch = namedtuple("Batch", ["input_ids", "attention_mask"])
    model = nn.Sequential(nn.Dropout(0.5, inplace=True), nn.Linear(4, 3))
    ids = torch.randn(5, 4)
    kept = ids.clone()

    class Call(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids)

    mc_predict(Call(), Batch(ids, torch.ones(5, 4)), samples=3, seed=0)
    assert torch.equal(ids, kept)


# --- 5. half precision ----------------------------------------------------------------------------------


def test_a_bfloat16_model_gives_float32_distributions():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.Dropout(0.3), nn.Linear(64, 50)).to(torch.bfloat16)
    x = torch.randn(32, 16, dtype=torch.bfloat16) * 4
    pred = mc_predict(model, x, samples=8, seed=0)
    assert pred.samples.dtype == torch.float32
    torch.testing.assert_close(pred.samples.sum(dim=-1), torch.ones(8, 32))
    assert bool((pred.mutual_information >= 0).all())
    assert pred.predictive_entropy.dtype == torch.float32


def test_entropy_of_bfloat16_probabilities_is_computed_in_float32():
    probs = torch.softmax(torch.randn(64, 50) * 4, dim=-1)
    low = probs.to(torch.bfloat16)  # rounding each p moves a row's sum by up to eps/2 = 2**-9
    result = entropy(low)
    assert result.dtype == torch.float32
    torch.testing.assert_close(result, torch.special.entr(low.float()).sum(dim=-1))
    with pytest.raises(ValueError, match="sum to 1"):  # the tolerance follows the dtype, no further
        entropy(torch.tensor([0.5, 0.52], dtype=torch.bfloat16))


# --- 6. the RNG: only the devices in use are seeded, and they are put back ------------------------------


@contextlib.contextmanager
def recording(monkeypatch):
    calls: dict[str, list] = {"fork_rng": [], "cuda_seed": []}
    original = torch.random.fork_rng

    def fork_rng(*args, **kwargs):
        calls["fork_rng"].append(kwargs.get("devices", args[0] if args else None))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.random, "fork_rng", fork_rng)
    for name in ("manual_seed", "manual_seed_all", "seed", "seed_all"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, name=name: calls["cuda_seed"].append(name))
    yield calls


def test_a_cpu_model_never_seeds_a_cuda_generator(monkeypatch):
    model, x = mlp(4, [8], 3, p=0.5), torch.randn(5, 4)
    with recording(monkeypatch) as calls:
        a = mc_predict(model, x, samples=4, seed=7)
        b = mc_predict(model, x, samples=4, seed=7)
    assert calls["cuda_seed"] == [], f"mc_predict touched the CUDA generators: {calls['cuda_seed']}"
    assert calls["fork_rng"] and all(list(d) == [] for d in calls["fork_rng"])
    assert torch.equal(a.samples, b.samples)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_model_forks_and_restores_its_own_device_only():
    model, x = mlp(4, [8], 3, p=0.5).cuda(), torch.randn(5, 4, device="cuda")
    states = [torch.cuda.get_rng_state(i) for i in range(torch.cuda.device_count())]
    cpu = torch.get_rng_state()
    a = mc_predict(model, x, samples=4, seed=7)
    assert torch.equal(a.samples, mc_predict(model, x, samples=4, seed=7).samples)
    assert_passes_vary(a.samples)
    assert torch.equal(torch.get_rng_state(), cpu)
    for i, s in enumerate(states):
        assert torch.equal(torch.cuda.get_rng_state(i), s), f"cuda:{i} generator changed"
