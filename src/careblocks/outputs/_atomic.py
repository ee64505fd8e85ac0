"""Atomic file writes: write to a temporary file in the target folder, then ``os.replace``.

An interrupted run (an exception, Ctrl-C, a killed process) never leaves a half-written
output under the final name: the previous file stays intact until the new one is complete.
After an exception the temporary file is removed; after a hard kill (SIGKILL, power loss)
it can stay behind as a hidden ``.<name>.<pid>-<token>.tmp<suffix>`` file, which the next
write to the same path removes (its process is gone).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "write_bytes_atomic", "write_text_atomic"]

#: side files SQLite / GDAL may create next to a database while it is open
_SIDE_SUFFIXES = ("", "-journal", "-wal", "-shm", ".aux.xml")


def _temp_name(target: Path) -> Path:
    token = secrets.token_hex(4)
    return target.with_name(f".{target.name}.{os.getpid()}-{token}.tmp{target.suffix}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's live process
        return True
    return True


def _remove(path: Path) -> None:
    for suffix in _SIDE_SUFFIXES:
        with contextlib.suppress(FileNotFoundError):
            Path(str(path) + suffix).unlink()


def remove_stale_temps(target: Path) -> list[Path]:
    """Remove temporary files of earlier writes to ``target`` whose process has died."""
    pattern = re.compile(
        r"^\." + re.escape(target.name) + r"\.(\d+)-[0-9a-f]{8}\.tmp" + re.escape(target.suffix) + "$"
    )
    removed = []
    if not target.parent.is_dir():
        return removed
    for p in target.parent.iterdir():
        m = pattern.match(p.name)
        if m and not _pid_alive(int(m.group(1))):
            _remove(p)
            removed.append(p)
    return removed


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems do not support it
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path``.

    The temporary file keeps the suffix of ``path`` (so drivers that look at the extension,
    such as GDAL's, pick the right format). It is created by the caller; if the block raises,
    it is deleted (with any SQLite side files) and the exception propagates, leaving any
    previous file at ``path`` untouched.

    Examples
    --------
    >>> with atomic_path(out / "careblocks.gpkg") as tmp:  # doctest: +SKIP
    ...     gdf.to_file(tmp, layer="origins")
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    tmp = _temp_name(target)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{tmp}: nothing was written to the temporary file")
        _fsync(tmp)
        os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise
    # SQLite may leave an empty journal next to the temp name; never next to the target.
    _remove_side_files(tmp)


def _remove_side_files(tmp: Path) -> None:
    for suffix in _SIDE_SUFFIXES[1:]:
        with contextlib.suppress(FileNotFoundError):
            Path(str(tmp) + suffix).unlink()


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    target = Path(path)
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return target


def write_text_atomic(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    return write_bytes_atomic(path, text.encode(encoding))
