"""The zoo's builders (dropoutlib.course.zoo): output shapes, argument checks, and the layers and numbers
their docstrings promise. mc_predict and diagnose on these models are tested in tests/lib/test_zoo_*.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dropoutlib.course import zoo

try:
    zoo.import_torchvision()  # before timm and transformers, which import it (see its docstring)
except ImportError:
    pass
pytest.importorskip("transformers")
timm = pytest.importorskip("timm")
pytestmark = pytest.mark.usefixtures("one_thread")


def token_ids(vocab: int, n: int = 4, length: int = 10) -> torch.Tensor:
    return torch.randint(1, vocab, (n, length), generator=torch.Generator().manual_seed(0))


def logits(out: object) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out.logits


def forward(model: nn.Module, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return logits(model.eval()(*args, **kwargs))


def dropouts(model: nn.Module) -> dict[str, float]:
    return {name: m.p for name, m in model.named_modules() if isinstance(m, nn.Dropout)}


# --- output shapes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "call", "shape"),
    [
        (zoo.char_transformer, lambda m: forward(m, token_ids(32)), (4, 3)),
        (
            lambda: zoo.char_transformer(vocab=50, width=16, heads=4, layers=1, classes=5),
            lambda m: forward(m, token_ids(50), torch.arange(10).expand(4, 10) >= 7),
            (4, 5),
        ),
        (zoo.bert_classifier, lambda m: forward(m, input_ids=token_ids(100)), (4, 2)),
        (
            lambda: zoo.bert_classifier(vocab=50, classes=3, attention="eager"),
            lambda m: forward(m, input_ids=token_ids(50), attention_mask=torch.ones(4, 10, dtype=torch.long)),
            (4, 3),
        ),
        (zoo.gpt2_lm, lambda m: forward(m, input_ids=token_ids(100)), (4, 10, 100)),
        (lambda: zoo.gpt2_lm(vocab=50, layers=1), lambda m: forward(m, input_ids=token_ids(50)), (4, 10, 50)),
        (zoo.vit, lambda m: forward(m, torch.randn(4, 3, 32, 32)), (4, 10)),
        (lambda: zoo.vit(classes=7), lambda m: forward(m, torch.randn(4, 3, 32, 32)), (4, 7)),
        (lambda: zoo.efficientnet(classes=4), lambda m: forward(m, torch.randn(2, 3, 32, 32)), (2, 4)),
    ],
    ids=["char", "char-args-padding", "bert", "bert-eager-args", "gpt2", "gpt2-args", "vit", "vit-args",
         "efficientnet-args"],
)
def test_each_builder_returns_the_documented_output_shape(build, call, shape):
    torch.manual_seed(0)
    out = call(build())
    assert out.shape == shape
    assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize("name", ["char_transformer", "bert_classifier", "gpt2_lm", "vit", "efficientnet"])
def test_each_builder_returns_its_model_in_training_mode(name):
    model = getattr(zoo, name)()
    assert all(module.training for module in model.modules())


# --- argument checks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: zoo.char_transformer(dropout=1.5), ValueError, "dropout=1.5"),
        (lambda: zoo.char_transformer(dropout=True), TypeError, "dropout=True"),
        (lambda: zoo.char_transformer(width=30, heads=4), ValueError, "multiple of heads (4), got width=30"),
        (lambda: zoo.char_transformer(heads=0), ValueError, "heads=0"),
        (lambda: zoo.char_transformer(vocab=0), ValueError, "vocab=0"),
        (lambda: zoo.char_transformer(layers=0), ValueError, "layers=0"),
        (lambda: zoo.char_transformer(classes=0), ValueError, "classes=0"),
        (lambda: zoo.bert_classifier(dropout=1.5), ValueError, "dropout=1.5"),
        (lambda: zoo.bert_classifier(attention="flash"), ValueError, "attention='flash'"),
        (lambda: zoo.gpt2_lm(dropout=1.5), ValueError, "dropout=1.5"),
        (lambda: zoo.vit(drop_path=1.5), ValueError, "drop_path=1.5"),
        (lambda: zoo.vit(dropout=-0.1), ValueError, "dropout=-0.1"),
        (lambda: zoo.efficientnet(stochastic_depth=1.5), ValueError, "stochastic_depth=1.5"),
        (lambda: zoo.efficientnet(dropout=1.5), ValueError, "dropout=1.5"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_a_bad_argument_is_refused_with_its_name_and_value(call, error, message):
    """The message names the argument and the value it got (DESIGN.md, Bad input)."""
    with pytest.raises(error, match=re.escape(message)):
        call()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(lambda: zoo.bert_classifier(classes=0), "classes=0"),
        pytest.param(lambda: zoo.bert_classifier(width=33), "width=33"),
        pytest.param(lambda: zoo.gpt2_lm(vocab=0), "vocab=0"),
        pytest.param(lambda: zoo.vit(classes=0), "classes=0"),
        pytest.param(lambda: zoo.efficientnet(classes=0), "classes=0"),
    ],
    ids=["bert-classes", "bert-width", "gpt2-vocab", "vit-classes", "efficientnet-classes"],
)
@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
def test_the_sizes_of_the_library_builders_are_checked_too(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


# --- import_torchvision ----------------------------------------------------------------------------------


def test_import_torchvision_returns_the_module_twice_in_a_row():
    first, second = zoo.import_torchvision(), zoo.import_torchvision()
    assert first is second and first.__name__ == "torchvision"
    assert callable(first.models.efficientnet_b0)
    assert len(zoo._TORCHVISION_SHIM) <= 1  # the operators are declared at most once


def test_import_torchvision_in_a_fresh_process_also_after_timm_failed_to_import():
    """What a user does: ``import timm`` first (it fails beside a CPU-only torch), then the zoo."""
    script = textwrap.dedent(
        """
        try:
            import timm
        except RuntimeError:
            pass
        from dropoutlib.course import zoo
        first, second = zoo.import_torchvision(), zoo.import_torchvision()
        assert first is second and first.__name__ == "torchvision", (first, second)
        import timm
        print(timm.layers.DropPath.__name__, len(zoo._TORCHVISION_SHIM))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[0] == "DropPath"
    assert int(done.stdout.split()[1]) <= 1


# --- the layers the docstrings promise ---------------------------------------------------------------


def test_char_transformer_has_the_documented_layers_and_about_20000_parameters():
    model = zoo.char_transformer(dropout=0.2)
    encoder_layers = [m for m in model.modules() if isinstance(m, nn.TransformerEncoderLayer)]
    attention = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    assert len(encoder_layers) == 2 and len(attention) == 2
    assert all(m.dropout == 0.2 and m.batch_first for m in attention)
    assert set(dropouts(model).values()) == {0.2} and len(dropouts(model)) == 6  # 3 per layer
    assert all(layer.activation_relu_or_gelu == 1 for layer in encoder_layers)  # ReLU: fast path
    parameters = sum(p.numel() for p in zoo.char_transformer().parameters())
    assert 18_000 <= parameters <= 22_000, f"{parameters} parameters, not about 20,000"


def test_char_transformer_in_eval_under_no_grad_calls_no_dropout(monkeypatch):
    """The docstring's fused path: in eval mode under no_grad no dropout runs at all, even with every
    nn.Dropout in training mode; with gradients on, the slow path calls them. (Counted by patching
    F.dropout, since a forward hook would itself turn the fast path off.)"""
    calls = []
    dropout = F.dropout
    monkeypatch.setattr(F, "dropout", lambda *a, **k: calls.append(1) or dropout(*a, **k))
    torch.manual_seed(0)
    model = zoo.char_transformer().eval()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.train()
    x, padding = token_ids(32), torch.arange(10).expand(4, 10) >= 7
    with torch.no_grad():
        model(x)
        model(x, padding)
    assert calls == []
    model(x)
    assert len(calls) == 6


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_bert_classifier_attention_and_dropout_rates(attention):
    torch.manual_seed(0)
    model = zoo.bert_classifier(dropout=0.3, attention=attention)
    assert model.config._attn_implementation == attention
    assert model.config.hidden_dropout_prob == model.config.attention_probs_dropout_prob == 0.3
    assert set(dropouts(model).values()) == {0.3}
    owners = [m for name, m in model.named_modules() if name.endswith("attention.self")]
    assert len(owners) == 2 and all(isinstance(m.dropout, nn.Dropout) for m in owners)
    called = []
    for m in owners:
        m.dropout.register_forward_pre_hook(lambda m, args: called.append(m))
    x = token_ids(100)
    model.train()(input_ids=x)
    # With either implementation (transformers 5) the attention module reads its layer's p and applies
    # the dropout itself (inside SDPA, or F.dropout on the probabilities): the layer is never called.
    assert called == []
    model.eval()
    for m in owners:
        m.dropout.train()  # the layer's own flag does not switch the attention dropout on ...
    with torch.no_grad():
        assert torch.equal(model(input_ids=x).logits, model(input_ids=x).logits)
        for m in owners:
            m.training = True  # ... the attention module's flag does
        assert not torch.equal(model(input_ids=x).logits, model(input_ids=x).logits)


def test_gpt2_lm_uses_sdpa_and_its_rates():
    model = zoo.gpt2_lm(dropout=0.3)
    assert model.config._attn_implementation == "sdpa"
    assert model.config.embd_pdrop == model.config.resid_pdrop == model.config.attn_pdrop == 0.3
    assert set(dropouts(model).values()) == {0.3}


def test_vit_has_timm_drop_path_growing_to_its_rate_and_the_documented_size():
    model = zoo.vit(drop_path=0.2, dropout=0.3)
    assert tuple(model.patch_embed.patch_size) == (8, 8) and model.embed_dim == 32 and len(model.blocks) == 2
    paths = [m for m in model.modules() if isinstance(m, timm.layers.DropPath)]
    assert paths, "no timm DropPath in the ViT"
    assert isinstance(model.blocks[0].drop_path1, nn.Identity)  # rate 0 in the first block
    assert model.blocks[-1].drop_path1.drop_prob == pytest.approx(0.2)
    assert model.pos_drop.p == 0.3 and model.head_drop.p == 0.3


def test_efficientnet_has_torchvision_stochastic_depth_and_about_4_million_parameters():
    torchvision = zoo.import_torchvision()
    model = zoo.efficientnet(stochastic_depth=0.2, dropout=0.3)
    rates = [m.p for m in model.modules() if isinstance(m, torchvision.ops.StochasticDepth)]
    assert len(rates) == 16 and rates == sorted(rates) and 0 == rates[0] < rates[-1] <= 0.2
    assert isinstance(model.classifier[0], nn.Dropout) and model.classifier[0].p == 0.3
    parameters = sum(p.numel() for p in model.parameters())
    assert 3_600_000 <= parameters <= 4_400_000, f"{parameters} parameters, not about 4 million"


def test_efficientnet_in_eval_mode_gives_logits_that_are_not_uniform():
    """Its docstring: BatchNorm statistics set from random images, so that the softmax is not flat."""
    torch.manual_seed(0)
    probs = torch.softmax(forward(zoo.efficientnet(), torch.randn(4, 3, 32, 32)), dim=-1)
    assert float(probs.max()) > 0.2, "the eval-mode softmax is uniform (1/10 everywhere)"
