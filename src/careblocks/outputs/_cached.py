"""Pieces of the outputs cached by the digest of exactly what they show.

A piece (a report figure's PNG, the map's street layer as JSON) is made by a function of
plain data only (arrays, strings, numbers, WKB): :func:`cached_bytes` digests that data, the
source of the module that draws it and the versions of the libraries it uses, and returns the
stored bytes on a hit, so a rerun whose data did not change writes the same bytes without
drawing again (matplotlib's import and drawing are most of a warm run's report).

Entries live in the stage cache's store (:mod:`careblocks.network.cache`: folder ``outputs``,
written atomically) with the sha256 of their bytes: an entry whose bytes do not match is a
miss. ``CAREBLOCKS_STAGE_CACHE=0`` and ``network.cache = false`` turn it off like the stage
caches. :data:`STATUS` records "hit"/"miss"/"off" per piece of the last outputs written (the
pipeline copies it to ``metadata["output_cache"]``).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

#: "hit" / "miss" / "off" per cached piece of the outputs written last in this process
STATUS: dict[str, str] = {}


def _update(h: Any, obj: Any) -> None:
    """Feed ``obj`` (nested dicts, lists, arrays, bytes, scalars) to the hash ``h``, typed."""
    if isinstance(obj, dict):
        h.update(b"{")
        for k in sorted(obj, key=str):
            _update(h, str(k))
            _update(h, obj[k])
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(f"[{len(obj)}".encode())
        for v in obj:
            _update(h, v)
        h.update(b"]")
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        b = bytes(obj)
        h.update(f"b{len(b)}:".encode())
        h.update(b)
    elif isinstance(obj, np.ndarray):
        if obj.dtype == object:
            _update(h, obj.tolist())
        else:
            a = np.ascontiguousarray(obj)
            h.update(f"a{a.dtype.str}{a.shape}:".encode())
            h.update(a.tobytes())
    elif isinstance(obj, (np.generic,)):
        _update(h, obj.item())
    elif obj is None or isinstance(obj, (bool, int, float, str)):
        h.update(("j" + json.dumps(obj) + ";").encode())
    else:
        raise TypeError(f"cannot digest {type(obj).__name__} for an output cache key")


def digest(obj: Any) -> str:
    """sha256 of plain data (see :func:`_update`); equal data, equal digest."""
    h = hashlib.sha256()
    _update(h, obj)
    return h.hexdigest()


@cache
def _module_digest(name: str) -> str:
    """sha256 of a module's source file, found without running the module."""
    from importlib.util import find_spec

    mod = sys.modules.get(name)
    path = getattr(mod, "__file__", None) if mod is not None else find_spec(name).origin
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def code_version(*modules: str, libraries: tuple[str, ...] = ()) -> dict[str, str]:
    """The code a piece depends on: sha256 of the modules' source files, the versions of the
    libraries (importlib.metadata, without importing them) and careblocks' own."""
    from importlib.metadata import PackageNotFoundError, version

    out = {m: _module_digest(m) for m in modules}
    for lib in libraries:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = "?"
    return out


def cached_bytes(config: Any, name: str, data: Any, make: Callable[[], bytes], *,
                 code: dict[str, str]) -> bytes:
    """``make()`` (bytes made from ``data`` only) through the cache, keyed by ``data``'s
    digest and ``code`` (:func:`code_version`); records the outcome in ``STATUS[name]``."""
    from careblocks.network.cache import cache_key, enabled, load, save

    if config is None:  # results made without a config: nowhere to keep it
        STATUS[name] = "off"
        return make()
    key = cache_key("output:" + name, {"data": digest(data), "code": code})
    got = load(config, "outputs", key)
    if got is not None:
        try:
            blob = np.asarray(got[0]["bytes"]).tobytes()
            if hashlib.sha256(blob).hexdigest() == got[1]["sha256"]:
                STATUS[name] = "hit"
                return blob
        except (KeyError, TypeError, ValueError):  # an entry of another layout is a miss
            pass
    blob = make()
    save(config, "outputs", key, {"bytes": np.frombuffer(blob, dtype=np.uint8)},
         {"sha256": hashlib.sha256(blob).hexdigest(), "name": name})
    STATUS[name] = "miss" if enabled(config) else "off"
    return blob
