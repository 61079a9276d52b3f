"""The zoo's models and batches for the tests of diagnose and mc_predict (tests/lib/test_zoo_*.py).

Each case is a builder (random weights, from dropoutlib.course.zoo) and a batch of the kind the model is
called with: token ids, a tuple, a Hugging Face dict batch, or images.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from dropoutlib.course import zoo


def ids(n: int = 16, length: int = 16, vocab: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randint(1, vocab, (n, length), generator=torch.Generator().manual_seed(seed))


def text(vocab: int = 100) -> dict[str, torch.Tensor]:
    tokens = ids(vocab=vocab)
    mask = torch.ones_like(tokens)
    mask[:4, 12:] = 0  # some padded sequences
    return {"input_ids": tokens, "attention_mask": mask}


def images(n: int = 32) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))


# name: (builder, batch)
ZOO: dict[str, tuple[Callable[[], nn.Module], Callable[[], object]]] = {
    "nn.TransformerEncoder": (lambda: zoo.char_transformer(dropout=0.1), lambda: ids()),
    "nn.TransformerEncoder, tuple batch": (
        lambda: zoo.char_transformer(dropout=0.1),
        lambda: (ids(), torch.zeros(16, 16, dtype=torch.bool)),
    ),
    "BERT (SDPA attention)": (lambda: zoo.bert_classifier(), text),
    "BERT (eager attention)": (lambda: zoo.bert_classifier(attention="eager"), text),
    "GPT-2": (lambda: zoo.gpt2_lm(), lambda: {"input_ids": ids(vocab=100)}),
    "timm ViT, drop_path_rate=0.1": (lambda: zoo.vit(), images),
    "torchvision EfficientNet-B0": (lambda: zoo.efficientnet(), images),
    "BERT in bfloat16": (lambda: zoo.bert_classifier().to(torch.bfloat16), text),
    "nn.TransformerEncoder in bfloat16": (lambda: zoo.char_transformer().to(torch.bfloat16), lambda: ids()),
}


def tensors_of(batch: object) -> list[torch.Tensor]:
    if isinstance(batch, torch.Tensor):
        return [batch]
    values = batch.values() if isinstance(batch, dict) else batch
    return [t for t in values if isinstance(t, torch.Tensor)]
