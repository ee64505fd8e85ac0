"""Cache entries as folders of uncompressed ``.npy`` arrays, memory-mapped when read.

An entry ``<folder>/<name>/`` holds one ``aN.npy`` per array (plain dtypes only, no pickles)
and ``meta.json`` (the array names and the caller's metadata). It is written in a temporary
folder and renamed into place, so a reader never sees half an entry. Reading maps each file
copy-on-write (``np.load(mmap_mode="c")``): nothing is read until used, pages are shared by
every process mapping the same entry, and a caller that changes an array in place changes its
own copy only, never the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def save_arrays(folder: Path, name: str, arrays: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write ``arrays`` (object arrays as strings; None values skipped) and ``meta`` as the
    entry ``folder/name``, replacing an older one. OSError when the folder is not writable."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=folder))
    try:
        names = []
        for i, (key, value) in enumerate(a for a in arrays.items() if a[1] is not None):
            a = np.asarray(value)
            if a.dtype == object:
                a = a.astype(str)
            np.save(tmp / f"a{i}.npy", np.ascontiguousarray(a), allow_pickle=False)
            names.append(key)
        (tmp / "meta.json").write_text(json.dumps({"arrays": names, "meta": meta}), encoding="utf-8")
        final = folder / name
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".old", dir=folder))
            os.replace(final, old / "entry")
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def load_arrays(folder: Path, name: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays (memory-mapped copy-on-write) and metadata of the entry ``folder/name``, or
    None when it is missing or unreadable (a miss)."""
    entry = folder / name
    meta_path = entry / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        doc = json.loads(meta_path.read_text(encoding="utf-8"))
        arrays = {}
        for i, key in enumerate(doc["arrays"]):
            path = entry / f"a{i}.npy"
            try:
                arrays[key] = np.load(path, mmap_mode="c", allow_pickle=False)
            except ValueError:  # an empty array cannot be mapped
                arrays[key] = np.load(path, allow_pickle=False)
        return arrays, doc["meta"]
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
        return None
