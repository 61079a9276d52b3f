"""dropoutlib: the small library behind the executable dropout course.

Notation throughout: ``p`` is the probability of dropping a unit and ``q = 1 - p`` the probability of
keeping it, as in ``torch.nn.Dropout``.

The pieces:

- :mod:`dropoutlib.functional`: dropout from scratch (:func:`dropout`, :func:`standard_dropout`, masks).
- :mod:`dropoutlib.autograd`: :class:`DropoutFunction`, an autograd function with its backward written out.
- :mod:`dropoutlib.modules`: :class:`Dropout` (a drop-in for ``torch.nn.Dropout``), :class:`StandardDropout`.
- :mod:`dropoutlib.numpy_ref`: forward, backward and a numerical gradient check in plain NumPy.
- :mod:`dropoutlib.spatial`: :class:`SpatialDropout` (a drop-in for ``torch.nn.Dropout2d``).
- :mod:`dropoutlib.variants`: the dropout family (:class:`DropConnectLinear`, :class:`GaussianDropout`,
  :class:`AlphaDropout`, :class:`DropPath`, :class:`DropBlock2d`).
- :mod:`dropoutlib.uncertainty`: Monte Carlo dropout (:func:`mc_predict`) and calibration.
- :mod:`dropoutlib.fused`: :func:`fused_dropout`, whose mask is recomputed from a seed, never stored.
- :mod:`dropoutlib.diagnostics`: checks that catch dropout bugs in your own model.
- :mod:`dropoutlib.data`, :mod:`dropoutlib.models`, :mod:`dropoutlib.train`: data, MLPs, one training loop.
- :mod:`dropoutlib.plots`: the house style of every figure; :mod:`dropoutlib.book`: glue for the book.
- :mod:`dropoutlib.exercises`: checks a student can run on their own answers.
"""

from dropoutlib import numpy_ref
from dropoutlib.autograd import DropoutFunction
from dropoutlib.data import Split, load_digits, toy_regression
from dropoutlib.functional import (
    dropout,
    dropout_mask,
    keep_mask,
    scale_weights_for_inference,
    standard_dropout,
)
from dropoutlib.fused import FusedDropout, fused_dropout
from dropoutlib.models import mlp
from dropoutlib.modules import Dropout, StandardDropout
from dropoutlib.seeding import seed_everything
from dropoutlib.spatial import SpatialDropout, spatial_dropout
from dropoutlib.train import History, evaluate, fit
from dropoutlib.uncertainty import MCPrediction, mc_predict
from dropoutlib.variants import AlphaDropout, DropBlock2d, DropConnectLinear, DropPath, GaussianDropout

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
    "History",
    "MCPrediction",
    "SpatialDropout",
    "Split",
    "StandardDropout",
    "dropout",
    "dropout_mask",
    "evaluate",
    "fit",
    "fused_dropout",
    "keep_mask",
    "load_digits",
    "mc_predict",
    "mlp",
    "numpy_ref",
    "scale_weights_for_inference",
    "seed_everything",
    "spatial_dropout",
    "standard_dropout",
    "toy_regression",
]
