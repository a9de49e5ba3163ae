"""``md.save`` / ``md.load``: checkpoints as ``.npz`` files that never unpickle code.

A checkpoint is a NumPy ``.npz`` archive (a zip of ``.npy`` files):

* every array of the saved object is its own entry (``"0"``, ``"1"``, ...), stored as a
  host (numpy) copy even when it lives on the GPU;
* the entry ``"__structure__"`` holds, as UTF-8 JSON, the nesting of dicts, lists and
  tuples, the plain Python values (numbers, strings, booleans, None), and a reference
  ``{"array": "3"}`` wherever an array goes.

Loading reads the JSON, rebuilds the containers and fetches the arrays with
``np.load(allow_pickle=False)``: a checkpoint can carry data but never code, unlike a
pickle, which can run anything when it is loaded.

Writes are atomic: the archive is written to a temporary file next to the target,
flushed to disk, and only then renamed over the target (``os.replace`` is atomic on
POSIX and Windows). If anything fails on the way (an error, Ctrl-C, a full disk) the
temporary file is removed and the previous checkpoint is untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import zipfile
from collections import OrderedDict

import numpy as np

from . import backend
from .tensor import Tensor

__all__ = ["save", "load", "CheckpointError"]

_FORMAT = "minideep-checkpoint"
_VERSION = 1
_STRUCTURE = "__structure__"


class CheckpointError(ValueError):
    """A file that is not a readable minideep checkpoint (corrupt, truncated, foreign)."""


# ---------------------------------------------------------------------------- encoding
def _encode(obj, arrays: list, where: str):
    """Turn ``obj`` into JSON-able nodes, appending its arrays to ``arrays``.

    Containers are tagged objects (``{"dict": [[key, value], ...]}``, ``{"list": [...]}``,
    ``{"tuple": [...]}``) so that every JSON object in the structure is a tag and dict
    keys keep their type (optimiser state is keyed by int).
    """
    if isinstance(obj, np.generic):  # before float: np.float64 is a float subclass
        arrays.append(np.asarray(obj))
        return {"scalar": str(len(arrays) - 1)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, Tensor):
        arrays.append(obj.numpy())
        return {"tensor": str(len(arrays) - 1), "requires_grad": obj.requires_grad}
    if isinstance(obj, np.ndarray) or backend.is_cupy_array(obj):
        array = backend.as_numpy(obj)
        if array.dtype.hasobject:
            raise TypeError(f"md.save: {where} is an array of Python objects, which needs pickle")
        arrays.append(array)
        return {"array": str(len(arrays) - 1)}
    if isinstance(obj, dict):
        tag = "odict" if isinstance(obj, OrderedDict) else "dict"
        items = []
        for key, value in obj.items():
            if not (key is None or isinstance(key, (bool, int, float, str))):
                raise TypeError(
                    f"md.save: {where} has a key of type {type(key).__name__}; "
                    "keys must be str, int, float, bool or None"
                )
            items.append([key, _encode(value, arrays, f"{where}[{key!r}]")])
        return {tag: items}
    if isinstance(obj, (list, tuple)):
        tag = "tuple" if isinstance(obj, tuple) else "list"
        return {tag: [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    raise TypeError(
        f"md.save: cannot save {where} of type {type(obj).__name__}; a checkpoint holds "
        "dicts, lists and tuples of arrays, Tensors, numbers, strings, booleans and None "
        "(save model.state_dict(), not the model)"
    )


def _decode(node, arrays):
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    ((tag, value),) = ((k, v) for k, v in node.items() if k != "requires_grad")
    if tag == "array":
        return arrays(value)
    if tag == "tensor":
        return Tensor(arrays(value), requires_grad=node.get("requires_grad", False))
    if tag == "scalar":
        return arrays(value)[()]
    if tag == "list":
        return [_decode(v, arrays) for v in value]
    if tag == "tuple":
        return tuple(_decode(v, arrays) for v in value)
    if tag in ("dict", "odict"):
        pairs = ((k, _decode(v, arrays)) for k, v in value)
        return OrderedDict(pairs) if tag == "odict" else dict(pairs)
    raise CheckpointError(f"unknown node {tag!r} in the checkpoint structure")


# ---------------------------------------------------------------------------- save
def save(obj, path) -> None:
    """Save ``obj`` (e.g. ``{"model": model.state_dict(), "optimizer": opt.state_dict()}``)
    to ``path`` as an ``.npz`` checkpoint, atomically.

    ``obj`` is any nesting of dicts, lists and tuples whose leaves are numpy or cupy
    arrays, Tensors, Python numbers, strings, booleans or None. The file is written
    exactly at ``path`` (no suffix is added). An unsupported value raises ``TypeError``
    naming where it sits in ``obj``, before anything is written.
    """
    path = os.fspath(path)
    arrays: list = []
    root = _encode(obj, arrays, "obj")
    structure = json.dumps({"format": _FORMAT, "version": _VERSION, "root": root})
    entries = {str(i): a for i, a in enumerate(arrays)}
    entries[_STRUCTURE] = np.frombuffer(structure.encode("utf-8"), dtype=np.uint8)

    directory = os.path.dirname(os.path.abspath(path))
    tmp, fd = _create_temporary(directory, os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **entries)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync_directory(directory)


def _create_temporary(directory: str, name: str):
    """A new, empty hidden file ``.<name>.<random>.tmp`` in ``directory``: (path, fd)."""
    while True:
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o666)
        except FileExistsError:
            continue


_O_BINARY = getattr(os, "O_BINARY", 0)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX; a no-op where directories can't be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- load
def load(path):
    """Load a checkpoint written by :func:`save`.

    Arrays come back as numpy arrays (on the CPU; ``load_state_dict`` moves them to the
    model's device), Tensors as CPU Tensors, tuples as tuples. Raises
    ``FileNotFoundError`` for a missing file and :class:`CheckpointError` for anything
    that is not a readable minideep checkpoint (including pickles, which are refused).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"md.load: no checkpoint at {path!r} (the file does not exist)")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise CheckpointError(f"md.load: {path!r} is a single .npy array, not a checkpoint")
        with archive:
            if _STRUCTURE not in archive.files:
                raise CheckpointError(
                    f"md.load: {path!r} is not a minideep checkpoint (no {_STRUCTURE!r} entry)"
                )
            header = json.loads(archive[_STRUCTURE].tobytes().decode("utf-8"))
            if not isinstance(header, dict) or header.get("format") != _FORMAT:
                raise CheckpointError(f"md.load: {path!r} is not a minideep checkpoint")
            if header.get("version", 0) > _VERSION:
                raise CheckpointError(
                    f"md.load: {path!r} has checkpoint format version {header['version']}, "
                    f"newer than this minideep reads ({_VERSION})"
                )
            return _decode(header["root"], lambda name: archive[name])
    except CheckpointError:
        raise
    except ValueError as e:
        if "pickle" in str(e):
            raise CheckpointError(
                f"md.load: {path!r} contains pickled Python objects, which md.load refuses "
                "to load (unpickling can run arbitrary code)"
            ) from e
        raise CheckpointError(f"md.load: {path!r} is corrupt or not a checkpoint: {e}") from e
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise CheckpointError(
            f"md.load: {path!r} is corrupt or truncated ({type(e).__name__}: {e})"
        ) from e
