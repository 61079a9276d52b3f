r"""Checks for the classic dropout bugs, to run on your own ``nn.Module``.

Each check runs the model on a batch ``x`` you supply, measures one thing and returns a
:class:`CheckResult`: passed or not, and a message that says what was measured and, when it fails, which
bug that suggests and how to fix it. :func:`diagnose` runs them all and returns a :class:`Report`.

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

Dropout *layers* are found by :func:`dropout_layers`; their inputs and outputs are read with forward
hooks. Dropout called as a function inside ``forward`` (``F.dropout(h, p, training=...)``) has no layer
to hook: the checks that read masks say so, and :func:`check_eval_deterministic` catches its most common
bug from the outputs alone.

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
