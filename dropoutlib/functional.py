"""Every functional form of dropout in one namespace, like ``torch.nn.functional``.

Each function lives in the file of :mod:`dropoutlib.nn` that holds its kind of dropout, next to its layer
and its math; this module only gathers them. ``p`` is the probability of dropping, ``q = 1 - p`` that of
keeping.

Example:
    >>> import torch
    >>> from dropoutlib import functional as DF
    >>> DF.dropout(torch.ones(4), 0.5, training=False)
    tensor([1., 1., 1., 1.])
"""

from dropoutlib.fused import fused_dropout
from dropoutlib.nn.alpha import alpha_dropout
from dropoutlib.nn.drop_path import drop_path
from dropoutlib.nn.dropblock import dropblock
from dropoutlib.nn.dropconnect import dropconnect_linear
from dropoutlib.nn.dropout import (
    dropout,
    dropout_mask,
    keep_mask,
    scale_weights_for_inference,
    standard_dropout,
)
from dropoutlib.nn.gaussian import gaussian_dropout
from dropoutlib.nn.spatial import spatial_dropout

__all__ = [
    "alpha_dropout",
    "drop_path",
    "dropblock",
    "dropconnect_linear",
    "dropout",
    "dropout_mask",
    "fused_dropout",
    "gaussian_dropout",
    "keep_mask",
    "scale_weights_for_inference",
    "spatial_dropout",
    "standard_dropout",
]
