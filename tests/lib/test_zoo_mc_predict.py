"""mc_predict on the zoo (dropoutlib.course.zoo): real architectures from configs with random weights.

For each model, in evaluation mode and under ``torch.no_grad()`` (how a user calls it): the passes
differ from one another, they are float32 distributions, the same seed gives the same passes and
another seed others, and afterwards every module's ``training`` flag, every parameter and buffer, the
batch (values and version counters) and the global RNG are as they were. The hand-made models of
tests/lib/test_uncertainty_models.py test the same properties piece by piece; here they are tried on
what users have.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from zoo_cases import ids, images, tensors_of

import dropoutlib.uncertainty
from dropoutlib.course import zoo
from dropoutlib.experiments.mc_dropout import attention_dropout_only, hand_rolled_mc
from dropoutlib.uncertainty import mc_predict

try:
    zoo.import_torchvision()  # before timm and transformers, which import it (see its docstring)
except ImportError:
    pass
pytest.importorskip("transformers")
pytest.importorskip("timm")
pytestmark = pytest.mark.usefixtures("one_thread")

N, LENGTH, VOCAB = 4, 8, 100  # small batches: the whole file runs in a few seconds


def text() -> dict[str, torch.Tensor]:
    """A Hugging Face batch: token ids and an attention mask with one padded sequence."""
    tokens = ids(N, LENGTH, VOCAB)
    mask = torch.ones_like(tokens)
    mask[0, 6:] = 0
    return {"input_ids": tokens, "attention_mask": mask}


def padded_ids() -> tuple[torch.Tensor, torch.Tensor]:
    """The char transformer's tuple batch ``(input_ids, padding_mask)``, True at padded positions."""
    padding = torch.zeros(N, LENGTH, dtype=torch.bool)
    padding[0, 6:] = True
    return ids(N, LENGTH), padding


BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "char_transformer": zoo.char_transformer,
    "bert_sdpa": lambda: zoo.bert_classifier(attention="sdpa"),
    "bert_eager": lambda: zoo.bert_classifier(attention="eager"),
    "gpt2": zoo.gpt2_lm,
    "vit": zoo.vit,
    "efficientnet": zoo.efficientnet,
    "char_transformer_bf16": lambda: zoo.char_transformer().to(torch.bfloat16),
    "bert_bf16": lambda: zoo.bert_classifier().to(torch.bfloat16),
}

# case: (builder, batch, shape of one pass's probabilities)
CASES: dict[str, tuple[str, Callable[[], Any], tuple[int, ...]]] = {
    "nn.TransformerEncoder": ("char_transformer", lambda: ids(N, LENGTH), (N, 3)),
    "nn.TransformerEncoder, tuple batch": ("char_transformer", padded_ids, (N, 3)),
    "BERT (SDPA attention)": ("bert_sdpa", text, (N, 2)),
    "BERT (eager attention)": ("bert_eager", text, (N, 2)),
    "GPT-2": ("gpt2", text, (N, LENGTH, VOCAB)),
    "timm ViT": ("vit", lambda: images(N), (N, 10)),
    "torchvision EfficientNet-B0": ("efficientnet", lambda: images(N), (N, 10)),
    "nn.TransformerEncoder in bfloat16": ("char_transformer_bf16", lambda: ids(N, LENGTH), (N, 3)),
    "BERT in bfloat16": ("bert_bf16", text, (N, 2)),
}


@pytest.fixture(scope="module")
def built() -> Callable[[str], nn.Module]:
    """Each model built once for the module (seeded, without moving the global RNG), in eval mode."""
    cache: dict[str, nn.Module] = {}

    def get(name: str) -> nn.Module:
        if name not in cache:
            with torch.random.fork_rng():
                torch.manual_seed(0)
                cache[name] = BUILDERS[name]().eval()
        return cache[name]

    return get


def case(name: str, built: Callable[[str], nn.Module]) -> tuple[nn.Module, Any, tuple[int, ...]]:
    builder, batch, shape = CASES[name]
    model = built(builder)
    model.eval()
    return model, batch(), shape


def modes(model: nn.Module) -> list[bool]:
    return [module.training for module in model.modules()]


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: t.detach().clone() for name, t in model.state_dict().items()}


def assert_passes_differ(samples: torch.Tensor) -> None:
    """Every two passes differ, not only each from the first (a first pass that takes another path than
    the others, e.g. the slow path while the rest take a fused one, would pass that weaker test)."""
    T = samples.shape[0]
    same = [(s, t) for s in range(T) for t in range(s + 1, T) if torch.equal(samples[s], samples[t])]
    assert not same, f"passes {same} came out identical: some dropout was not switched on"


@pytest.mark.parametrize("name", list(CASES))
def test_passes_differ_and_the_model_batch_and_rng_are_left_as_they_were(name, built):
    model, batch, shape = case(name, built)
    before_modes, before_state = modes(model), state(model)
    grads = [p.requires_grad for p in model.parameters()]
    before_batch = [(t, t.clone(), t._version) for t in tensors_of(batch)]
    rng = torch.random.get_rng_state()
    with torch.no_grad():
        pred = mc_predict(model, batch, samples=5, seed=0)
        assert not torch.is_grad_enabled()
    assert pred.samples.shape == (5, *shape)
    assert pred.samples.dtype == torch.float32
    assert bool(torch.isfinite(pred.samples).all())
    torch.testing.assert_close(pred.samples.sum(dim=-1), torch.ones(5, *shape[:-1]))
    assert_passes_differ(pred.samples)
    assert float(pred.mutual_information.max()) > 0
    assert modes(model) == before_modes
    after = model.state_dict()
    assert after.keys() == before_state.keys()
    for key, t in after.items():
        assert torch.equal(t, before_state[key]), f"{key} changed"
    assert [p.requires_grad for p in model.parameters()] == grads
    for t, kept, version in before_batch:
        assert torch.equal(t, kept) and t._version == version, "mc_predict wrote into the batch"
    assert torch.equal(torch.random.get_rng_state(), rng), "mc_predict moved the global RNG"


@pytest.mark.parametrize("name", list(CASES))
def test_the_same_seed_gives_the_same_passes_and_another_seed_others(name, built):
    model, batch, _ = case(name, built)
    with torch.no_grad():
        a = mc_predict(model, batch, samples=4, seed=0)
        b = mc_predict(model, batch, samples=4, seed=0)
        c = mc_predict(model, batch, samples=4, seed=1)
    assert torch.equal(a.samples, b.samples)
    assert not torch.equal(a.samples, c.samples)


def test_gpt2_logits_are_softmaxed_over_the_vocabulary_at_every_position(built):
    model, batch, _ = case("GPT-2", built)
    with torch.no_grad():
        pred = mc_predict(model, batch, samples=4, seed=0)
        raw = mc_predict(model, batch, samples=4, seed=0, task="regression")
    assert raw.samples.shape == (4, N, LENGTH, VOCAB)  # the logits, as the model returns them
    torch.testing.assert_close(pred.samples, torch.softmax(raw.samples, dim=-1), rtol=0, atol=1e-6)
    assert pred.predicted.shape == (N, LENGTH)
    assert pred.mutual_information.shape == (N, LENGTH)
    assert bool((pred.mutual_information >= 0).all())


ZERO = {
    "char_transformer": lambda: zoo.char_transformer(dropout=0.0),
    "bert_sdpa": lambda: zoo.bert_classifier(dropout=0.0),
    "gpt2": lambda: zoo.gpt2_lm(dropout=0.0),
    "vit": lambda: zoo.vit(drop_path=0.0, dropout=0.0),
    "efficientnet": lambda: zoo.efficientnet(stochastic_depth=0.0, dropout=0.0),
}
ZERO_BATCH = {"char_transformer": lambda: ids(N, LENGTH), "bert_sdpa": text, "gpt2": text,
              "vit": lambda: images(N), "efficientnet": lambda: images(N)}


@pytest.mark.parametrize("name", list(ZERO))
def test_a_zoo_model_with_every_rate_at_zero_gives_identical_passes_without_an_error(name):
    """Rate 0 means identical passes by construction, which mc_predict returns (the "identical passes"
    RuntimeError is for layers with a positive rate that still do not sample, tested below)."""
    torch.manual_seed(0)
    model = ZERO[name]().eval()
    with torch.no_grad():
        pred = mc_predict(model, ZERO_BATCH[name](), samples=3, seed=0)
    assert all(torch.equal(pred.samples[0], s) for s in pred.samples[1:])
    assert float(pred.mutual_information.max()) < 1e-6  # 0 up to the rounding of the mean


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_bert_attention_dropout_alone_makes_the_passes_differ(attention):
    """Its nn.Dropout is never called (the attention module reads its p): mc_predict must switch on the
    attention module's own flag."""
    torch.manual_seed(0)
    model = attention_dropout_only(zoo.bert_classifier(attention=attention)).eval()
    with torch.no_grad():
        pred = mc_predict(model, text(), samples=4, seed=0)
    assert_passes_differ(pred.samples)
    assert not any(modes(model))


def test_a_positive_rate_that_never_samples_raises_the_identical_passes_error(monkeypatch):
    """mc_predict switched on no owner of an uncalled dropout layer (the SDPA attention of BERT reads
    its child's ``p`` only when its own flag is set): every pass is identical, and it says so."""
    torch.manual_seed(0)
    model = attention_dropout_only(zoo.bert_classifier(attention="sdpa")).eval()
    monkeypatch.setattr(dropoutlib.uncertainty, "_uncalled_dropout_parents", lambda *args: [])
    with torch.no_grad(), pytest.raises(RuntimeError, match=r"identical.*training flag"):
        mc_predict(model, text(), samples=4, seed=0)
    assert not any(modes(model))


# --- the trap that mc_predict avoids: the fused path of nn.TransformerEncoderLayer --------------------


def test_the_naive_recipe_gives_identical_passes_on_the_char_transformer_and_mc_predict_does_not(built):
    """In eval mode under no_grad, nn.TransformerEncoderLayer runs a fused kernel that calls none of its
    dropout modules, whatever their flags: the naive recipe's passes are all the same."""
    model, batch, _ = case("nn.TransformerEncoder", built)
    torch.manual_seed(0)
    passes = hand_rolled_mc(model, batch, 4).samples
    assert all(torch.equal(passes[0], p) for p in passes[1:]), "the fused path no longer skips dropout"
    with torch.no_grad():
        pred = mc_predict(model, batch, samples=4, seed=0)
    assert_passes_differ(pred.samples)


def test_without_the_encoder_layer_switch_mc_predict_still_samples_or_raises(built, monkeypatch):
    """Were the encoder layers left in eval mode (``_fused_path_layers`` returning nothing), mc_predict
    must still either sample (the forward hooks it keeps on every pass turn the fused path off) or raise
    its "identical passes" error; never return passes of which some silently repeat."""
    model, batch, _ = case("nn.TransformerEncoder", built)
    monkeypatch.setattr(dropoutlib.uncertainty, "_fused_path_layers", lambda model: [])
    try:
        with torch.no_grad():
            pred = mc_predict(model, batch, samples=4, seed=0)
    except RuntimeError as error:
        assert "identical" in str(error)
    else:
        assert_passes_differ(pred.samples)
    assert not any(modes(model))
