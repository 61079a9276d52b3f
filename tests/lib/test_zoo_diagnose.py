"""diagnose on the zoo (dropoutlib.course.zoo): real architectures from configs with random weights.

For each model: the correct model passes every check, diagnose leaves modes, parameters, buffers, the
batch and the RNG as they were, and a planted bug of each kind is caught by the check made for it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from zoo_cases import ZOO, ids, images, tensors_of, text

from dropoutlib.course import zoo
from dropoutlib.diagnostics import Report, diagnose
from dropoutlib.experiments.bugs import KeepProbDropout, careful_mc_predict, naive_mc_predict

pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("one_thread")


class AlwaysOnDropout(nn.Module):
    """The bug of F.dropout(h, p) without training=self.training: it drops in evaluation mode too."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, training=True)


class FrozenMaskDropout(nn.Module):
    """The bug of a mask (or random key) drawn once and reused at every step."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p, self.masks = p, {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        key = (tuple(x.shape), x.dtype)
        if key not in self.masks:
            self.masks[key] = torch.empty_like(x).bernoulli_(1 - self.p) / (1 - self.p)
        return x * self.masks[key]


def head_name(model: nn.Module) -> str:
    """The attribute that holds the model's last layer."""
    return next(name for name in ("head", "classifier", "lm_head") if hasattr(model, name))


def statuses(report: Report) -> dict[str, str]:
    return {result.name: result.status for result in report.results}


@pytest.mark.parametrize("name", list(ZOO))
def test_the_correct_model_passes_and_is_left_as_it_was(name):
    build, make_batch = ZOO[name]
    torch.manual_seed(0)
    model, batch = build().eval(), make_batch()
    next(model.children()).train()  # a mixed state of modes is restored too
    modes = [m.training for m in model.modules()]
    state = {key: t.clone() for key, t in model.state_dict().items()}
    saved = [(t.clone(), t._version) for t in tensors_of(batch)]
    rng = torch.random.get_rng_state()
    report = diagnose(model, batch)
    assert statuses(report) == dict.fromkeys(
        ("eval_deterministic", "masks_vary", "drop_rate", "no_output_dropout"), "pass"
    ), str(report)
    assert [m.training for m in model.modules()] == modes
    assert all(torch.equal(t, state[key]) for key, t in model.state_dict().items())
    for t, (old, version) in zip(tensors_of(batch), saved, strict=True):
        assert torch.equal(t, old) and t._version == version
    assert torch.equal(torch.random.get_rng_state(), rng)


def first_dropout(model: nn.Module) -> tuple[nn.Module, str, float]:
    for module in model.modules():
        for child_name, child in module.named_children():
            if type(child) is nn.Dropout and child.p > 0:
                return module, child_name, child.p
    raise AssertionError("no nn.Dropout with p > 0")


PLANTED = {
    "left on in evaluation mode": (AlwaysOnDropout, "eval_deterministic"),
    "one mask reused at every step": (FrozenMaskDropout, "masks_vary"),
    "keep probability passed as p": (KeepProbDropout, "drop_rate"),
}


@pytest.mark.parametrize("bug", list(PLANTED))
@pytest.mark.parametrize("name", [name for name in ZOO if "tuple" not in name])
def test_a_planted_dropout_bug_is_caught(name, bug):
    build, make_batch = ZOO[name]
    torch.manual_seed(0)
    model = build()
    layer_class, check = PLANTED[bug]
    owner, child, p = first_dropout(model)
    setattr(owner, child, layer_class(p))
    report = diagnose(model, make_batch())
    assert check in [result.name for result in report.failures], str(report)


@pytest.mark.parametrize("name", [name for name in ZOO if "tuple" not in name])
def test_dropout_on_the_output_is_caught(name):
    build, make_batch = ZOO[name]
    torch.manual_seed(0)
    model = build()
    head = head_name(model)
    setattr(model, head, nn.Sequential(getattr(model, head), nn.Dropout(0.1)))
    report = diagnose(model, make_batch())
    assert [result.name for result in report.failures] == ["no_output_dropout"], str(report)


def test_batchnorm_put_in_training_by_mc_prediction_is_caught_on_efficientnet():
    torch.manual_seed(0)
    model, batch = zoo.efficientnet(), images(8)
    careful = diagnose(model, batch, predict=lambda m, x: careful_mc_predict(m, x, samples=2))
    naive = diagnose(model, batch, predict=lambda m, x: naive_mc_predict(m, x, samples=2))
    assert statuses(careful)["mc_batchnorm"] == "pass", str(careful)
    assert [result.name for result in naive.failures] == ["mc_batchnorm"], str(naive)


def test_attention_dropout_is_named_as_not_measured():
    torch.manual_seed(0)
    sdpa = diagnose(zoo.bert_classifier(), text())
    encoder = diagnose(zoo.char_transformer(), ids())
    assert "scaled_dot_product_attention (dropout_p=0.1) is not measured" in str(sdpa)
    assert "'encoder.layers.0.self_attn' (MultiheadAttention, dropout=0.1)" in str(encoder)
    assert "is not measured" in str(encoder)


def test_a_zoo_model_with_every_dropout_at_zero_skips_the_mask_checks():
    torch.manual_seed(0)
    report = diagnose(zoo.bert_classifier(dropout=0.0), text())
    assert statuses(report)["eval_deterministic"] == "pass"
    assert statuses(report)["masks_vary"] == "skip", str(report)


def readme_blocks(*needles: str) -> list[str]:
    text = (Path(__file__).parents[2] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    return [next(b for b in blocks if needle in b) for needle in needles]


def test_the_readme_hugging_face_examples_run(monkeypatch, capsys):
    """The README's diagnose and mc_predict blocks, with from_pretrained giving a zoo BERT (offline)."""
    import transformers

    def tokenize(texts, **options):
        tokens = ids(n=len(texts), length=6, vocab=100)
        return transformers.BatchEncoding({"input_ids": tokens, "attention_mask": torch.ones_like(tokens)})

    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained",
                        lambda name, num_labels: zoo.bert_classifier(classes=num_labels))
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda name: tokenize)
    diagnose_block, mc_block = readme_blocks("diagnose(model, batch)", "mc_predict(model, batch")
    namespace: dict = {}
    exec(diagnose_block, namespace)
    printed = capsys.readouterr().out
    assert printed.count("PASS") == 4 and "scaled_dot_product_attention" in printed
    exec(mc_block, namespace)
    assert namespace["pred"].mean.shape == (2, 2)
    assert float(namespace["pred"].mutual_information.max()) > 0
