"""What the chapters share and a user's own model does not need: data, models, training, plots, stats.

- :mod:`~dropoutlib.course.data`: the digits, a toy regression and MNIST-style IDX files, offline.
- :mod:`~dropoutlib.course.models`: :func:`~dropoutlib.course.models.mlp`, the MLPs every chapter trains.
- :mod:`~dropoutlib.course.train`: :func:`~dropoutlib.course.train.fit`, one training loop, and
  :func:`~dropoutlib.course.train.evaluate`.
- :mod:`~dropoutlib.course.batched`: many small MLPs trained as one batched model (chapter 8's sweeps).
- :mod:`~dropoutlib.course.stats`: paired differences over seeds and their standard errors.
- :mod:`~dropoutlib.course.zoo`: small transformers (``nn.TransformerEncoder``, Hugging Face BERT and
  GPT-2), a timm ViT and a torchvision EfficientNet, from configs with random weights (chapters 11, 12).
- :mod:`~dropoutlib.course.seeding`, :mod:`~dropoutlib.course.plots`, :mod:`~dropoutlib.course.book`:
  seeds, the house style of the figures, and MyST-NB ``glue`` for the book.

The names used in almost every chapter are gathered here: ``from dropoutlib import course``, then
``course.mlp(...)``, ``course.fit(...)``, ``course.load_digits(...)``.
"""

from dropoutlib.course.data import Split, load_digits, toy_regression
from dropoutlib.course.models import mlp
from dropoutlib.course.seeding import seed_everything
from dropoutlib.course.train import History, evaluate, fit

__all__ = ["History", "Split", "evaluate", "fit", "load_digits", "mlp", "seed_everything", "toy_regression"]
