"""Saving and loading training state without pickle.

A state (an optimizer's, an LR schedule's, an EMA's ``state_dict()``, random states) is split
into its tensors, written with safetensors, and the structure around them, written as JSON.
Loading builds back only dicts, lists, tuples, numbers, strings, booleans, ``None`` and tensors,
so a crafted file cannot run code; a damaged one ends in an :class:`SdError` naming the file.

``<folder>/<name>.json``          the structure; tensors appear as ``{"__tensor__": "t0"}``
``<folder>/<name>.safetensors``   the tensors (absent when there are none)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from sd_core.errors import SdError
from sd_core.runs.files import atomic_write_bytes, atomic_write_text

_TENSOR, _TUPLE, _ITEMS, _FLOAT = "__tensor__", "__tuple__", "__items__", "__float__"
_MARKERS = (_TENSOR, _TUPLE, _ITEMS, _FLOAT)


def _encode(obj: Any, tensors: dict) -> Any:
    import torch

    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().to("cpu").contiguous()
        return {_TENSOR: key}
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {_FLOAT: repr(obj)}
    if isinstance(obj, tuple):
        return {_TUPLE: [_encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and k not in _MARKERS for k in obj):
            return {k: _encode(v, tensors) for k, v in obj.items()}
        return {_ITEMS: [[_encode(k, tensors), _encode(v, tensors)] for k, v in obj.items()]}
    raise TypeError(f"cannot save a {type(obj).__name__} in a training state")


def _decode(obj: Any, tensors: dict, where: str) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors, where) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if len(obj) == 1:
        (key, value), = obj.items()
        if key == _TENSOR:
            if value not in tensors:
                raise SdError(f"{where}: refers to a tensor {value!r} that its .safetensors file lacks")
            return tensors[value]
        if key == _TUPLE:
            return tuple(_decode(v, tensors, where) for v in value)
        if key == _ITEMS:
            return {_decode(k, tensors, where): _decode(v, tensors, where) for k, v in value}
        if key == _FLOAT:
            if value not in ("nan", "inf", "-inf"):
                raise SdError(f"{where}: unexpected number {value!r}")
            return float(value)
    return {k: _decode(v, tensors, where) for k, v in obj.items()}


def save_state(folder: Path, name: str, state: Any) -> None:
    """Write ``state`` as ``folder/name.json`` (+ ``folder/name.safetensors`` when it holds tensors)."""
    from safetensors.torch import save

    tensors: dict = {}
    structure = _encode(state, tensors)
    if tensors:
        atomic_write_bytes(folder / f"{name}.safetensors", save(tensors))
    atomic_write_text(folder / f"{name}.json", json.dumps(structure, indent=1) + "\n")


def load_tensors(path: Path) -> dict:
    """Tensors of a safetensors file; any damage is an :class:`SdError` naming the file."""
    from safetensors.torch import load

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SdError(f"{path} is missing") from None
    except OSError as exc:
        raise SdError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        return load(data)
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise SdError(f"{path}: not a readable safetensors file ({_first_line(exc)})") from None


def load_state(folder: Path, name: str) -> Any:
    """Read back what :func:`save_state` wrote (no pickle; errors name the file)."""
    path = folder / f"{name}.json"
    try:
        structure = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SdError(f"{path} is missing; the checkpoint is incomplete") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SdError(f"{path}: not a readable state file ({_first_line(exc)})") from None
    tpath = folder / f"{name}.safetensors"
    tensors = load_tensors(tpath) if tpath.exists() else {}
    try:
        return _decode(structure, tensors, str(path))
    except SdError:
        raise
    except Exception as exc:
        raise SdError(f"{path}: not a state file written by sd ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
