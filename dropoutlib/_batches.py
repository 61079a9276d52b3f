"""Batches and outputs of a user's model, shared by :mod:`dropoutlib.diagnostics` and
:mod:`dropoutlib.uncertainty`.

A batch is a tensor (called as ``model(batch)``), a tuple (``model(*batch)``) or a dict of keyword
arguments (``model(**batch)``, the way Hugging Face models are called). Every forward pass gets its own
copy, so a layer that writes in place never changes the caller's tensors. A model's output is reduced to
one tensor by an ``output`` picker: by default the tensor itself, the first element of a tuple,
``out["logits"]`` or ``out.logits``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

Picker = Callable[[Any], torch.Tensor]


def check_batch(batch: Any) -> Any:
    """Return ``batch`` after checking that it is a tensor, a tuple or a dict with str keys, holding at
    least one tensor, and no empty tensor batch."""
    if isinstance(batch, Mapping):
        bad = [key for key in batch if not isinstance(key, str)]
        if bad:
            raise TypeError(
                f"a dict batch is passed as model(**batch), so its keys must be str; got key {bad[0]!r}"
            )
    elif not isinstance(batch, torch.Tensor | tuple):
        hint = " (a list is not a batch: make it a tensor, or a tuple of arguments)" * isinstance(batch, list)
        raise TypeError(
            "batch must be a torch.Tensor (called as model(batch)), a tuple (model(*batch)) or a dict "
            f"(model(**batch)), got batch={type(batch).__name__}{hint}"
        )
    if isinstance(batch, torch.Tensor) and batch.numel() == 0:
        raise ValueError(
            f"batch must hold at least one input, got an empty tensor of shape {tuple(batch.shape)}"
        )
    if not isinstance(batch, torch.Tensor) and next(tensors(batch), None) is None:
        raise ValueError(f"batch holds no tensor: {describe(batch)}")
    return batch


def describe(batch: Any) -> str:
    """A short description of a batch for messages: its shapes, or its keys and shapes.

    Example:
        >>> describe({"input_ids": torch.ones(2, 5, dtype=torch.long), "attention_mask": None})
        'a dict batch {input_ids: (2, 5), attention_mask: NoneType}'
        >>> describe((torch.ones(3, 4), 7))
        'a tuple batch ((3, 4), int)'
    """
    if isinstance(batch, torch.Tensor):
        return f"a tensor of shape {tuple(batch.shape)}"
    if isinstance(batch, Mapping):
        return "a dict batch {" + ", ".join(f"{key}: {_shape(value)}" for key, value in batch.items()) + "}"
    return "a tuple batch (" + ", ".join(_shape(value) for value in batch) + ")"


def _shape(value: Any) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


def clone(obj: Any) -> Any:
    """A copy of ``obj`` with every tensor in it (also inside tuples, lists and dicts) cloned."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple
        return type(obj)(*(clone(item) for item in obj))
    if isinstance(obj, tuple | list):
        return type(obj)(clone(item) for item in obj) if type(obj) in (tuple, list) else obj
    if isinstance(obj, Mapping):
        return {key: clone(value) for key, value in obj.items()}
    return obj


def tensors(obj: Any) -> Iterator[torch.Tensor]:
    """Every tensor in ``obj``: a tensor, or (nested) tuples, lists and dicts (``ModelOutput`` too)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, tuple | list):
        for item in obj:
            yield from tensors(item)
    elif isinstance(obj, Mapping):
        for item in obj.values():
            yield from tensors(item)


def call(model: nn.Module, batch: Any) -> Any:
    """One forward pass on a fresh copy of the batch: a layer that writes in place (``inplace=True``,
    ``x.mul_(...)``) changes the copy, never the caller's tensors nor the next pass's input."""
    batch = clone(batch)
    if isinstance(batch, tuple):
        return model(*batch)
    if isinstance(batch, Mapping):
        return model(**batch)
    return model(batch)


def check_output(output: Any) -> Picker | None:
    if output is not None and not callable(output):
        raise TypeError(
            f"output must be None or a function from the model's output to a tensor, got output={output!r}"
        )
    return output


def _default_output(out: Any, caller: str) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, Mapping):
        if isinstance(out.get("logits"), torch.Tensor):
            return out["logits"]
    elif isinstance(out, tuple | list):
        if out and isinstance(out[0], torch.Tensor):
            return out[0]
    elif isinstance(getattr(out, "logits", None), torch.Tensor):
        return out.logits
    raise TypeError(
        f"the model returned a {type(out).__name__} and {caller} cannot tell which tensor in it to use "
        "(it takes a tensor, the first element of a tuple, out['logits'] or out.logits); pass output=, a "
        "function that picks the tensor, e.g. output=lambda out: out['scores']"
    )


def pick(out: Any, output: Picker | None, caller: str) -> torch.Tensor:
    """The tensor of the model's output ``out`` that ``output`` picks (the default picker if None)."""
    if output is None:
        return _default_output(out, caller)
    picked = output(out)
    if not isinstance(picked, torch.Tensor):
        raise TypeError(f"output must return a torch.Tensor, it returned a {type(picked).__name__}")
    return picked


def cuda_indices(model: nn.Module, batch: Any) -> list[int]:
    """The indices of the CUDA devices that the model's parameters and buffers and the batch live on."""
    indices = set()
    for tensor in (*model.parameters(), *model.buffers(), *tensors(batch)):
        if tensor.device.type == "cuda":
            index = tensor.device.index
            indices.add(index if index is not None else torch.cuda.current_device())
    return sorted(indices)
