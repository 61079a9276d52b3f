"""Dropout layers, one file per kind of dropout: its function, its layer and its math.

``p`` is always the probability of dropping and ``q = 1 - p`` the probability of keeping::

    kind                     what is random                          training output         evaluation
    dropout                  each unit, Bernoulli(q)                 m * x / q               x
    spatial_dropout          each channel of a feature map           m_nc * x / q            x
    dropconnect_linear       each weight W_ij, Bernoulli(q)          (M * W / q) x + b       W x + b
    gaussian_dropout         each unit, multiplicative N(1, p/q)     x * (1 + sqrt(p/q) e)   x
    alpha_dropout            each unit, set to SELU's saturation     a (m x + (1-m) a') + b  x
    drop_path                each example's residual branch          m_n x_n / q             x
    dropblock                square blocks of a feature map          x * M * numel / kept    x

Every function has the signature style of :func:`dropoutlib.dropout` (``input, p, training=True, *,
generator=None`` after the required arguments; ``generator=None`` draws from torch's global RNG) and
validates its arguments (errors name the argument and the value; nothing is clamped). Every layer stores
``p`` as an attribute and is the identity in evaluation mode (DropConnect: the plain linear map with the
full weights). The layers other than :class:`Dropout`, :class:`StandardDropout` and
:class:`SpatialDropout` carry the class attribute ``dropout_variant = True``, which
:func:`dropoutlib.mc_predict` uses to switch them on for Monte Carlo dropout.
"""

from dropoutlib.nn.alpha import SELU_SATURATION, AlphaDropout, alpha_dropout
from dropoutlib.nn.drop_path import DropPath, drop_path, drop_path_schedule
from dropoutlib.nn.dropblock import DropBlock2d, dropblock, dropblock_drop_fraction, dropblock_gamma
from dropoutlib.nn.dropconnect import DropConnectLinear, dropconnect_linear
from dropoutlib.nn.dropout import (
    Dropout,
    DropoutFunction,
    StandardDropout,
    dropout,
    dropout_mask,
    keep_mask,
    scale_weights_for_inference,
    standard_dropout,
)
from dropoutlib.nn.gaussian import GaussianDropout, gaussian_dropout
from dropoutlib.nn.spatial import SpatialDropout, channel_mask_shape, spatial_dropout

__all__ = [
    "SELU_SATURATION",
    "AlphaDropout",
    "DropBlock2d",
    "DropConnectLinear",
    "DropPath",
    "Dropout",
    "DropoutFunction",
    "GaussianDropout",
    "SpatialDropout",
    "StandardDropout",
    "alpha_dropout",
    "channel_mask_shape",
    "drop_path",
    "drop_path_schedule",
    "dropblock",
    "dropblock_drop_fraction",
    "dropblock_gamma",
    "dropconnect_linear",
    "dropout",
    "dropout_mask",
    "gaussian_dropout",
    "keep_mask",
    "scale_weights_for_inference",
    "spatial_dropout",
    "standard_dropout",
]
