"""dropoutlib: dropout from scratch, its family, Monte Carlo dropout and diagnostics for your own model.

Notation throughout: ``p`` is the probability of dropping a unit and ``q = 1 - p`` the probability of
keeping it, as in ``torch.nn.Dropout``.

The library a user imports for their own model:

- :mod:`dropoutlib.nn`: the layers, one file per kind of dropout (:class:`Dropout`, a drop-in for
  ``torch.nn.Dropout``; :class:`StandardDropout`; :class:`SpatialDropout`; :class:`DropConnectLinear`,
  :class:`GaussianDropout`, :class:`AlphaDropout`, :class:`DropPath`, :class:`DropBlock2d`).
- :mod:`dropoutlib.functional`: every functional form (:func:`dropout`, :func:`spatial_dropout`, ...).
- :mod:`dropoutlib.fused`: :func:`fused_dropout`, whose mask is recomputed from a seed, never stored.
- :mod:`dropoutlib.uncertainty`: Monte Carlo dropout (:func:`mc_predict`) and calibration.
- :mod:`dropoutlib.diagnostics`: :func:`diagnose` and the checks that catch dropout bugs in your model.
- :mod:`dropoutlib.numpy_ref`: forward, backward and a numerical gradient check in plain NumPy.

The course's own code lives beside it and is not imported here: :mod:`dropoutlib.course` (data, models,
training, plots), :mod:`dropoutlib.experiments` (one module per chapter) and :mod:`dropoutlib.exercises`
(the checks a student runs). ``import dropoutlib`` pulls in torch and nothing heavier.
"""

from dropoutlib import numpy_ref
from dropoutlib.diagnostics import diagnose
from dropoutlib.fused import FusedDropout, fused_dropout
from dropoutlib.nn import (
    AlphaDropout,
    DropBlock2d,
    DropConnectLinear,
    Dropout,
    DropoutFunction,
    DropPath,
    GaussianDropout,
    SpatialDropout,
    StandardDropout,
    dropout,
    dropout_mask,
    keep_mask,
    scale_weights_for_inference,
    spatial_dropout,
    standard_dropout,
)
from dropoutlib.uncertainty import MCPrediction, mc_predict

__version__ = "0.1.0"

__all__ = [
    "AlphaDropout",
    "DropBlock2d",
    "DropConnectLinear",
    "DropPath",
    "Dropout",
    "DropoutFunction",
    "FusedDropout",
    "GaussianDropout",
    "MCPrediction",
    "SpatialDropout",
    "StandardDropout",
    "diagnose",
    "dropout",
    "dropout_mask",
    "fused_dropout",
    "keep_mask",
    "mc_predict",
    "numpy_ref",
    "scale_weights_for_inference",
    "spatial_dropout",
    "standard_dropout",
]
