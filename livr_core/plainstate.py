"""Training state on disk without pickle: tensors in safetensors, everything else as JSON.

Owns `save_state` and `load_state`. Optimizer and scheduler state dicts and RNG states are trees
of dicts, lists, tuples, numbers, strings, None, torch tensors and (NumPy's generator) arrays.
`save_state` writes one safetensors file: every tensor under its path in the tree
(`optimizer/state/3/exp_avg`), and the rest of the tree as JSON in the file's metadata, where a
tensor is `{"__tensor__": path}`, a tuple `{"__tuple__": [...]}`, a NumPy array
`{"__ndarray__": dtype, "shape": [...], "data": [...]}` and a dict whose keys are not all plain
strings (an optimizer's parameter ids) `{"__dict__": [[key, value], ...]}`. Reading parses a
JSON header and raw tensor bytes, so no file can make us run code (`torch.load` without
`weights_only`, and any unpickling, can), and the round trip is exact: same types, same bits.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

META_KEY = "livr_state"
_TAGS = ("__tensor__", "__tuple__", "__ndarray__", "__dict__")


def save_state(path: str | os.PathLike, tree: Any) -> None:
    """Write `tree` to `path` (safetensors)."""
    tensors: dict[str, torch.Tensor] = {}
    plain = _encode(tree, "", tensors)
    save_file(tensors, str(path), metadata={META_KEY: json.dumps(plain, allow_nan=True)})


def load_state(path: str | os.PathLike) -> Any:
    """The tree `save_state` wrote to `path`. Raises ValueError (or the reader's error) when the
    file is not such a file."""
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        meta = handle.metadata() or {}
        if META_KEY not in meta:
            raise ValueError(f"no {META_KEY!r} entry in the safetensors metadata")
        names = handle.keys()  # a safe_open handle is not iterable itself
        tensors = {name: handle.get_tensor(name) for name in names}
    return _decode(json.loads(meta[META_KEY]), tensors)


def _encode(obj: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        name = path or "tensor"
        tensors[name] = obj.detach().to("cpu").contiguous()
        return {"__tensor__": name}
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.dtype.str, "shape": list(obj.shape), "data": obj.ravel().tolist()}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{path}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{path}/{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and k not in _TAGS for k in obj):
            return {k: _encode(v, f"{path}/{k}", tensors) for k, v in obj.items()}
        return {"__dict__": [[_encode(k, f"{path}/key{i}", tensors),
                              _encode(v, f"{path}/{k}", tensors)]
                             for i, (k, v) in enumerate(obj.items())]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} at {path or '/'} without pickle")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors) for v in obj["__tuple__"])
    if "__ndarray__" in obj:
        return np.array(obj["data"], dtype=np.dtype(obj["__ndarray__"])).reshape(obj["shape"])
    if "__dict__" in obj:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in obj["__dict__"]}
    return {k: _decode(v, tensors) for k, v in obj.items()}
