"""Small copies of the architectures people train, built from configs with random weights.

Nothing is downloaded: each builder makes its model from a configuration, the way a pretrained model's
architecture is built before its weights are loaded. They are the models that chapters 11 and 12 and the
tests run :func:`dropoutlib.diagnose` and :func:`dropoutlib.mc_predict` on, so those tools are tried on
what users have and not only on the course's MLPs.

==========================  ===================================  =======================================
builder                     library                              its dropout
==========================  ===================================  =======================================
:func:`char_transformer`    ``torch.nn.TransformerEncoder``      residual and feed-forward ``Dropout``,
                                                                 ``MultiheadAttention(dropout=)``;
                                                                 fused fast path in eval mode
:func:`bert_classifier`     Hugging Face ``transformers``        embedding, residual and classifier
                                                                 ``Dropout``; attention dropout inside
                                                                 ``scaled_dot_product_attention``
:func:`gpt2_lm`             Hugging Face ``transformers``        the same, in a causal language model
:func:`vit`                 ``timm``                             ``DropPath`` (stochastic depth) and
                                                                 ``Dropout``
:func:`efficientnet`        ``torchvision``                      ``StochasticDepth`` and the
                                                                 classifier's ``Dropout``
==========================  ===================================  =======================================

``transformers``, ``timm`` and ``torchvision`` are the ``dropoutlib[models]`` extra, imported only when a
builder is called.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import torch
from torch import nn

from dropoutlib._validation import check_positive_int, check_probability

_TORCHVISION_SHIM: list[torch.library.Library] = []


def import_torchvision() -> Any:
    """``import torchvision``, also beside a CPU-only torch.

    PyPI's torchvision wheel is built against CUDA torch. Beside the CPU build of torch its compiled
    operators cannot load, which torchvision tolerates, but its import then registers a fake kernel for
    ``torchvision::nms``, an operator that was never defined, and raises ``RuntimeError``. ``timm`` and
    ``transformers`` import torchvision when it is installed, so they fail too. This declares the two
    operators that registration names (without any kernel; calling them raises) and imports again. The
    models are plain Python and work; only the detection ops (``nms``, ``roi_align``) stay missing.
    """
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as error:
        if "torchvision::nms does not exist" not in str(error):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    shim = torch.library.Library("torchvision", "DEF")
    shim.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    shim.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
    _TORCHVISION_SHIM.append(shim)  # the definitions live as long as this object
    return importlib.import_module("torchvision")


def _import_models_library(name: str) -> Any:
    """Import ``transformers`` or ``timm`` (after torchvision, see :func:`import_torchvision`), offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import_torchvision()
    except ImportError:
        pass  # neither library needs torchvision to build these models
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise ImportError(
            f"{name} is needed for this model: pip install 'dropoutlib[models]' (or pip install {name})"
        ) from error


class CharTransformer(nn.Module):
    """A character-level transformer classifier: embedding, ``nn.TransformerEncoder``, mean pool, linear.

    Called as ``model(input_ids)`` with a ``LongTensor`` of shape ``(batch, length)``, or as
    ``model(input_ids, padding_mask)`` with ``True`` at padded positions; returns logits
    ``(batch, classes)``. ``batch_first=True`` and a ReLU feed-forward, so in evaluation mode under
    ``torch.no_grad()`` PyTorch runs its fused encoder kernel, which calls none of the dropout modules.
    """

    def __init__(self, vocab: int, width: int, heads: int, layers: int, classes: int, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, classes)

    def forward(self, input_ids: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.encoder(self.embed(input_ids), src_key_padding_mask=padding_mask)
        return self.head(h.mean(dim=1))


def char_transformer(
    vocab: int = 32, width: int = 32, heads: int = 2, layers: int = 2, classes: int = 3, dropout: float = 0.1
) -> CharTransformer:
    """A :class:`CharTransformer` with random weights (about 18,000 parameters with the defaults).

    Example:
        >>> model = char_transformer()
        >>> model(torch.randint(0, 32, (4, 10))).shape
        torch.Size([4, 3])
    """
    check_positive_int(heads, "heads")
    _check_sizes(heads, vocab=vocab, width=width, layers=layers, classes=classes)
    check_probability(dropout, "dropout")
    return CharTransformer(vocab, width, heads, layers, classes, dropout)


def _check_sizes(heads: int | None = None, **sizes: Any) -> None:
    """Every size a positive int, and ``width`` a multiple of ``heads`` when both are given."""
    for name, value in sizes.items():
        check_positive_int(value, name)
    if heads is not None and "width" in sizes and sizes["width"] % heads:
        raise ValueError(f"width must be a multiple of heads ({heads}), got width={sizes['width']}")


def _tiny_config(config_class: Any, **settings: Any) -> Any:
    config = config_class(**settings)
    config.pad_token_id = 0
    return config


def bert_classifier(
    vocab: int = 100, width: int = 32, layers: int = 2, classes: int = 2, dropout: float = 0.1,
    attention: str = "sdpa",
) -> nn.Module:
    """A Hugging Face ``BertForSequenceClassification`` from a tiny config, random weights.

    ``dropout`` is both ``hidden_dropout_prob`` (embeddings, the residual branches, the classifier) and
    ``attention_probs_dropout_prob``. The attention module reads the ``p`` of its ``nn.Dropout`` (which
    is never called) and applies the dropout itself when its own ``training`` flag is set: as the
    ``dropout_p`` of ``F.scaled_dot_product_attention`` with ``attention="sdpa"`` (the library's
    default), as ``F.dropout`` on the probabilities with ``attention="eager"``. Called with a dict
    batch: ``model(**{"input_ids": ..., "attention_mask": ...})``.
    """
    if attention not in ("sdpa", "eager"):
        raise ValueError(f"attention must be 'sdpa' or 'eager', got attention={attention!r}")
    _check_sizes(2, vocab=vocab, width=width, layers=layers, classes=classes)
    check_probability(dropout, "dropout")
    transformers = _import_models_library("transformers")
    config = _tiny_config(
        transformers.BertConfig, vocab_size=vocab, hidden_size=width, num_hidden_layers=layers,
        num_attention_heads=2, intermediate_size=2 * width, max_position_embeddings=64, num_labels=classes,
        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
    )
    config._attn_implementation = attention
    return transformers.BertForSequenceClassification(config)


def gpt2_lm(vocab: int = 100, width: int = 32, layers: int = 2, dropout: float = 0.1) -> nn.Module:
    """A Hugging Face ``GPT2LMHeadModel`` from a tiny config (SDPA attention), random weights.

    ``dropout`` is ``embd_pdrop``, ``resid_pdrop`` and ``attn_pdrop``. Its output is a ``ModelOutput``
    whose ``.logits`` has shape ``(batch, length, vocab)``.
    """
    _check_sizes(2, vocab=vocab, width=width, layers=layers)
    check_probability(dropout, "dropout")
    transformers = _import_models_library("transformers")
    config = _tiny_config(
        transformers.GPT2Config, vocab_size=vocab, n_embd=width, n_layer=layers, n_head=2, n_positions=64,
        embd_pdrop=dropout, resid_pdrop=dropout, attn_pdrop=dropout, bos_token_id=1, eos_token_id=1,
    )
    return transformers.GPT2LMHeadModel(config)


def vit(classes: int = 10, drop_path: float = 0.1, dropout: float = 0.1) -> nn.Module:
    """A timm ``VisionTransformer`` for 32×32 images (patches of 8, width 32, depth 2), random weights.

    ``drop_path`` is timm's ``drop_path_rate`` (the stochastic-depth rate grows linearly to it over the
    blocks), ``dropout`` its ``drop_rate`` (after the embedding and before the head).
    """
    _check_sizes(classes=classes)
    check_probability(drop_path, "drop_path")
    check_probability(dropout, "dropout")
    timm = _import_models_library("timm")
    return timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0, num_classes=classes,
        drop_rate=dropout, pos_drop_rate=dropout, drop_path_rate=drop_path,
    )


def efficientnet(classes: int = 10, stochastic_depth: float = 0.2, dropout: float = 0.2) -> nn.Module:
    """torchvision's ``efficientnet_b0`` (``weights=None``, about 4 million parameters).

    Its blocks end in ``StochasticDepth`` (rate growing to ``stochastic_depth`` over the blocks) and its
    classifier starts with ``nn.Dropout(dropout)``. Input: images ``(batch, 3, H, W)``, 32×32 is enough.
    BatchNorm's running statistics are set from random images (see the code), so that the logits in
    evaluation mode have the scale of a trained model's; the model is returned in training mode.
    """
    _check_sizes(classes=classes)
    check_probability(stochastic_depth, "stochastic_depth")
    check_probability(dropout, "dropout")
    torchvision = import_torchvision()
    model = torchvision.models.efficientnet_b0(
        weights=None, num_classes=classes, stochastic_depth_prob=stochastic_depth, dropout=dropout
    )
    # BatchNorm's initial statistics (mean 0, variance 1) shrink the evaluation-mode activations of the
    # untrained network to about 1e-14 by the logits, so every softmax is uniform. Two training-mode
    # passes on random images give it statistics of the scale a trained model has.
    images = torch.randn(32, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = None  # a cumulative average over the passes
        model.train()
        for _ in range(2):
            model(images)
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = 0.1
    return model
