r"""Checks for the classic dropout bugs, to run on your own ``nn.Module``.

Each check runs the model on a batch ``x`` you supply, measures one thing and returns a
:class:`CheckResult`: a ``status`` (``"pass"``, ``"fail"``, or ``"skip"`` when there was nothing it could
measure), and a message that says what was measured and, when it fails, which bug that suggests and how
to fix it. :func:`diagnose` runs them all and returns a :class:`Report`; only failures make
:meth:`Report.raise_on_failure` raise, but read the SKIP lines: they name dropout that was not checked.

================================  ==========================================  ============================
check                             what it measures                            the bug it catches
================================  ==========================================  ============================
:func:`check_eval_mode`           which submodules are in training mode       forgetting ``model.eval()``
                                                                              before evaluating
:func:`check_eval_deterministic`  two forward passes in evaluation mode:      ``F.dropout`` without
                                  are they equal?                             ``training=self.training``
:func:`check_masks_vary`          each dropout layer's keep pattern, between  one mask or random key
                                  calls and between layers of one shape       reused across steps/layers
:func:`check_drop_rate`           each layer's zeroed fraction and the scale  keep probability passed as
                                  of what it keeps, against its ``p``         ``p``; unscaled dropout
:func:`check_no_output_dropout`   whether a dropout layer produces the        dropout on a regression
                                  model's output                              output
:func:`check_mc_batchnorm`        BatchNorm's mode and running statistics     MC dropout that puts
                                  during your MC prediction function          BatchNorm in training mode
================================  ==========================================  ============================

The result of each check is named after it without ``check_`` (``eval_mode``, ``eval_deterministic``,
...; see :data:`CHECKS`).

Every check leaves the model as it found it: the training flag of every submodule, its parameters and
buffers (BatchNorm's running statistics are saved and restored when a check runs in training mode), and
torch's global random number generator (the passes run inside ``torch.random.fork_rng``), all under
``torch.no_grad()``.

Dropout *layers* (stochastic-depth layers included) are found by :func:`dropout_layers`; forward hooks
summarise each call at the moment the layer returns (how many units it zeroed and the factor it scaled
the rest by), so in-place operations that follow (``ReLU(inplace=True)``, ``h += x``) do not change what
was measured, and no activation is copied from pass to pass. The model runs on a copy of ``x``: a first
layer with ``inplace=True`` does not change yours. Dropout called as a function inside ``forward``
(``F.dropout(h, p, training=...)``) has no layer to hook, nor has the attention dropout of
``nn.MultiheadAttention(dropout=...)`` and ``F.scaled_dot_product_attention(dropout_p=...)``: the checks
that read masks name it and say it is not measured (SKIP when nothing else was), and
:func:`check_eval_deterministic` catches its most common bug (left on at test time) from the outputs.

Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` the probability of keeping it.
"""

from dropoutlib.diagnostics.checks import (
    CHANCE_LEVEL,
    CHECKS,
    DROP_RATE_Z,
    check_drop_rate,
    check_eval_deterministic,
    check_eval_mode,
    check_masks_vary,
    check_mc_batchnorm,
    check_no_output_dropout,
    diagnose,
)
from dropoutlib.diagnostics.layers import dropout_layers
from dropoutlib.diagnostics.report import CheckResult, DropoutBugError, Report

__all__ = [
    "CHANCE_LEVEL",
    "CHECKS",
    "DROP_RATE_Z",
    "CheckResult",
    "DropoutBugError",
    "Report",
    "check_drop_rate",
    "check_eval_deterministic",
    "check_eval_mode",
    "check_masks_vary",
    "check_mc_batchnorm",
    "check_no_output_dropout",
    "diagnose",
    "dropout_layers",
]
