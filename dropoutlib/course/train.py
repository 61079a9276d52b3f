"""One training loop for every chapter: :func:`fit` trains and records a :class:`History`.

Two kinds of numbers are recorded each epoch, and the difference matters for dropout:

- ``objective``: the mean minibatch loss *during* training, with dropout active (the quantity the
  optimizer actually minimizes: the loss of randomly thinned networks);
- ``train_loss``/``test_loss`` (and accuracies): the loss of the full network in evaluation mode
  (dropout off), on the whole training and test sets, after the epoch.

With dropout, ``objective`` is typically above ``train_loss``: the thinned networks are worse than
the full one.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import tqdm
from torch import nn
from torch.nn import functional as F

from dropoutlib._modes import restored_modes
from dropoutlib._validation import check_choice, check_floating, check_positive_int, check_real
from dropoutlib.course._threads import torch_threads
from dropoutlib.course.data import Split, check_split
from dropoutlib.course.seeding import check_seed

if TYPE_CHECKING:
    pass

__all__ = [
    "OPTIMIZERS",
    "TASKS",
    "evaluate",
    "fit",
    "predict_labels",
    "History",
]

TASKS = ("classification", "regression")
OPTIMIZERS = ("adam", "sgd")

#: Seconds between two redraws of the progress bar (few redraws: short notebook output).
PROGRESS_MININTERVAL = 0.5


@dataclass
class History:
    """What :func:`fit` records, one entry per evaluated epoch.

    Attributes:
        epoch: epoch numbers (1-based) at which the other lists were recorded.
        train_loss, test_loss: mean loss of the model in evaluation mode (dropout off) on the whole
            training / test set: cross-entropy for classification, mean squared error for regression.
        train_acc, test_acc: accuracy in evaluation mode (classification; empty for regression).
        objective: mean loss of the minibatches of that epoch, computed in training mode (dropout on),
            weighted by minibatch size, i.e. the average per-example training objective.

    Example:
        >>> h = History(epoch=[1, 2], train_loss=[0.9, 0.5], test_loss=[1.0, 0.7],
        ...             train_acc=[0.6, 0.9], test_acc=[0.55, 0.8], objective=[1.1, 0.6])
        >>> h.final()["test_acc"]
        0.8
        >>> round(h.gap(), 4)
        0.1
    """

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    objective: list[float] = field(default_factory=list)

    @property
    def is_classification(self) -> bool:
        """True when accuracies were recorded."""
        return bool(self.train_acc)

    def final(self) -> dict[str, float]:
        """The last recorded value of every list (accuracies only for classification).

        Example:
            >>> History([1], [0.5], [0.7], [], [], [0.6]).final()
            {'epoch': 1, 'train_loss': 0.5, 'test_loss': 0.7, 'objective': 0.6}
        """
        if not self.epoch:
            raise ValueError("the history is empty: nothing has been recorded yet")
        out: dict[str, float] = {
            "epoch": self.epoch[-1],
            "train_loss": self.train_loss[-1],
            "test_loss": self.test_loss[-1],
        }
        if self.is_classification:
            out["train_acc"] = self.train_acc[-1]
            out["test_acc"] = self.test_acc[-1]
        out["objective"] = self.objective[-1]
        return out

    def gap(self) -> float:
        """The generalisation gap at the last recorded epoch.

        Classification: ``train_acc - test_acc`` (accuracy points lost on unseen data).
        Regression: ``test_loss - train_loss``. Positive means the model does better on the data
        it was trained on.

        Example:
            >>> History([1], [0.5], [0.7], [], [], [0.6]).gap()  # doctest: +ELLIPSIS
            0.19999...
        """
        last = self.final()
        if self.is_classification:
            return last["train_acc"] - last["test_acc"]
        return last["test_loss"] - last["train_loss"]


def _loss_and_correct(
    output: torch.Tensor, y: torch.Tensor, task: str
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mean loss, and the number of correct predictions (classification)."""
    if task == "classification":
        loss = F.cross_entropy(output, y)
        return loss, (output.argmax(dim=1) == y).sum()
    return F.mse_loss(output, y), None


def _evaluate_in_current_mode(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: str
) -> tuple[float, float | None]:
    with torch.no_grad():
        loss, correct = _loss_and_correct(model(x), y, task)
    acc = None if correct is None else correct.item() / len(y)
    return loss.item(), acc


def _check_targets(model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: str, name: str) -> None:
    """Fail early, with a readable message, when the model's output does not fit the targets."""
    if task == "classification":
        if y.dtype != torch.int64:
            raise TypeError(
                f"task='classification' needs int64 class indices in {name}, got dtype {y.dtype} "
                "(use task='regression' for real-valued targets)"
            )
    elif not y.is_floating_point():
        raise TypeError(
            f"task='regression' needs floating-point targets in {name}, got dtype {y.dtype} "
            "(use task='classification' for class indices)"
        )
    with restored_modes(model), torch.no_grad():
        model.eval()
        out = model(x[:2])
    if task == "classification":
        n_classes = int(y.max().item()) + 1 if y.numel() else 0
        if out.ndim != 2 or out.shape[1] < n_classes:
            raise ValueError(
                f"for classification the model must output (n, n_classes) logits with n_classes >= "
                f"{n_classes} (labels in {name} go up to {n_classes - 1}), got output shape "
                f"{tuple(out.shape)} for 2 inputs"
            )
    elif out.shape[1:] != y.shape[1:]:
        raise ValueError(
            f"for regression the model's output shape must match {name}'s: got output "
            f"{tuple(out.shape)} for 2 inputs and {name} of shape {tuple(y.shape)}"
        )


def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: str = "classification"
) -> tuple[float, float | None]:
    r"""Loss (and accuracy) of ``model`` on ``(x, y)`` in evaluation mode, without gradients.

    Classification: mean cross-entropy :math:`-\frac1n\sum_i \log \mathrm{softmax}(f(x_i))_{y_i}`
    and accuracy :math:`\frac1n\sum_i [\arg\max_k f(x_i)_k = y_i]`; ``y`` holds class indices,
    shape ``(n,)``. Regression: mean squared error :math:`\frac1n\sum_i \|f(x_i) - y_i\|^2` (per
    output), accuracy ``None``; ``y`` has the output's shape.

    The model is switched to evaluation mode (dropout off) for the computation and every submodule
    is then put back in the mode it was in.

    Returns:
        ``(loss, accuracy)`` as Python floats (accuracy ``None`` for regression).

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 3), nn.Dropout(0.5))
        >>> loss, acc = evaluate(model, torch.zeros(4, 2), torch.tensor([0, 1, 2, 0]))
        >>> 0.0 <= acc <= 1.0, model.training
        (True, True)
        >>> evaluate(nn.Identity(), torch.ones(3, 1), torch.zeros(3, 1), task="regression")
        (1.0, None)
    """
    task = check_choice(task, "task", TASKS)
    with restored_modes(model):
        model.eval()
        return _evaluate_in_current_mode(model, x, y, task)


def _make_optimizer(
    model: nn.Module, name: str, lr: float, momentum: float, weight_decay: float
) -> torch.optim.Optimizer:
    params = list(model.parameters())
    if not params:
        raise ValueError("model has no parameters to train")
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=True)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, foreach=True)


def fit(
    model: nn.Module,
    data: Split,
    *,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int | None = None,
    optimizer: str = "adam",
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    task: str = "classification",
    seed: int = 0,
    progress: bool = True,
    eval_every: int = 1,
    num_threads: int | None = 1,
) -> History:
    r"""Train ``model`` on ``data.x_train, data.y_train`` and record a :class:`History`.

    Each epoch visits the training set once in minibatches of ``batch_size`` examples (``None``:
    the whole set in one batch) in an order reshuffled every epoch; each minibatch :math:`B` takes
    one optimizer step on its mean loss

    .. math::

        L_B(\theta) = \frac{1}{|B|}\sum_{i \in B} \ell\big(f_\theta(x_i; m_i), y_i\big),

    where :math:`m_i` are the dropout masks sampled for that step (the model is in training mode)
    and :math:`\ell` is cross-entropy (``task="classification"``) or squared error
    (``task="regression"``). ``weight_decay`` adds :math:`\frac{\lambda}{2}\|\theta\|^2` through the
    optimizer. Every ``eval_every`` epochs (and after the last one) the history records the
    size-weighted mean of :math:`L_B` over the epoch (``objective``) and, in evaluation mode with
    gradients off, the loss and accuracy on the whole training and test sets (:func:`evaluate`).

    Determinism: torch's global generator is seeded with ``seed`` at the start (it draws the dropout
    masks) and minibatch order comes from a separate ``torch.Generator`` seeded with ``seed``.
    Given the same initial weights (build the model after ``seed_everything``), two calls with the
    same arguments give identical histories and identical weights.

    Args:
        model: the network; its output is ``(n, n_classes)`` logits or has the shape of ``y``.
        data: a :class:`~dropoutlib.course.data.Split`.
        epochs: number of passes over the training set (positive int).
        lr: learning rate (> 0).
        batch_size: minibatch size (positive int), or ``None`` for full-batch training.
        optimizer: ``"adam"`` or ``"sgd"`` (SGD with ``momentum``).
        momentum: SGD momentum, ``>= 0`` (ignored by Adam).
        weight_decay: L2 penalty coefficient :math:`\lambda \ge 0`.
        task: ``"classification"`` or ``"regression"``.
        seed: seeds the dropout masks and the minibatch order.
        progress: show a progress bar on stderr (one ``training: ...`` line); nothing is printed
            to stdout either way.
        eval_every: record the history every this many epochs (the last epoch is always recorded).
        num_threads: torch intra-op threads while training (the previous setting is restored after).
            One by default: for the course's small networks a second thread buys nothing, threads
            that spin-wait on a busy machine slow training down many times over, and with one
            thread the numbers do not depend on how many cores the machine has. ``None`` keeps
            torch's current setting.

    Returns:
        The :class:`History`. The model is trained in place and left in evaluation mode.

    Example:
        >>> from dropoutlib.course.data import toy_regression
        >>> from dropoutlib.course.models import mlp
        >>> from dropoutlib.course.seeding import seed_everything
        >>> _ = seed_everything(0)
        >>> model = mlp(1, [32], 1, p=0.1)
        >>> history = fit(model, toy_regression(), epochs=50, lr=1e-2, task="regression",
        ...               progress=False)
        >>> len(history.epoch), history.train_loss[-1] < history.train_loss[0], model.training
        (50, True, False)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_split(data)
    epochs = check_positive_int(epochs, "epochs")
    lr = check_real(lr, "lr", positive=True)
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got optimizer={optimizer!r}")
    momentum = check_real(momentum, "momentum", minimum=0.0)
    weight_decay = check_real(weight_decay, "weight_decay", minimum=0.0)
    task = check_choice(task, "task", TASKS)
    seed = check_seed(seed)
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got progress={progress!r}")
    eval_every = check_positive_int(eval_every, "eval_every")
    if num_threads is not None:
        num_threads = check_positive_int(num_threads, "num_threads")

    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    x_test, y_test = data.x_test.to(device), data.y_test.to(device)
    _check_targets(model, x_train, y_train, task, "y_train")
    _check_targets(model, x_test, y_test, task, "y_test")
    opt = _make_optimizer(model, optimizer, lr, momentum, weight_decay)

    n = len(x_train)
    step = n if batch_size is None else min(batch_size, n)
    torch.manual_seed(seed)
    shuffler = torch.Generator().manual_seed(seed)
    history = History()
    bar = tqdm.tqdm(
        range(1, epochs + 1),
        desc="training",
        file=sys.stderr,
        leave=True,
        mininterval=PROGRESS_MININTERVAL,
        disable=not progress,
    )
    try:
        with torch_threads(num_threads):
            for epoch in bar:
                model.train()
                if step >= n:  # full batch: the order of the examples does not change the mean loss
                    batches = [(x_train, y_train)]
                else:
                    order = torch.randperm(n, generator=shuffler).to(device)
                    x_shuffled, y_shuffled = x_train[order], y_train[order]
                    batches = [
                        (x_shuffled[i : i + step], y_shuffled[i : i + step]) for i in range(0, n, step)
                    ]
                total = torch.zeros((), device=device)
                for xb, yb in batches:
                    opt.zero_grad(set_to_none=True)
                    loss, _ = _loss_and_correct(model(xb), yb, task)
                    loss.backward()
                    opt.step()
                    total += loss.detach() * len(xb)
                if epoch % eval_every == 0 or epoch == epochs:
                    model.eval()
                    train_loss, train_acc = _evaluate_in_current_mode(model, x_train, y_train, task)
                    test_loss, test_acc = _evaluate_in_current_mode(model, x_test, y_test, task)
                    history.epoch.append(epoch)
                    history.objective.append(total.item() / n)
                    history.train_loss.append(train_loss)
                    history.test_loss.append(test_loss)
                    if train_acc is not None and test_acc is not None:
                        history.train_acc.append(train_acc)
                        history.test_acc.append(test_acc)
    finally:
        bar.close()
        model.eval()
    return history


def predict_labels(model: nn.Module, x: torch.Tensor, *, training: bool) -> torch.Tensor:
    """Predicted class labels ``argmax(model(x))`` with the model in training or evaluation mode.

    Runs under ``torch.no_grad()`` and puts the model back in the mode it was in.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5))
        >>> predict_labels(model, torch.ones(2, 4), training=False).shape
        torch.Size([2])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_floating(x, "x")
    with restored_modes(model), torch.no_grad():
        model.train(training)
        return model(x).argmax(dim=1)
