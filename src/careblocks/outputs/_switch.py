"""A run's output files change together: the whole folder is staged next to the target and
switched in with one rename.

:func:`write_together` writes every file of a run into a staging folder beside the output
folder (``.<folder>.careblocks-staging-<pid>-<token>``), with hard links to any other file
the output folder holds, then swaps the two folders in one ``renameat2(RENAME_EXCHANGE)``
call (Linux; a plain rename when the folder does not exist yet). A reader sees the previous
complete set or the new complete set, never a mix; a kill at any point leaves the previous
set in place. The swapped-out folder is renamed ``.<folder>.careblocks-old-<pid>-<token>``
and deleted; leftovers of killed runs (whose process is gone) are removed by the next write.

Where the swap cannot be used (no ``renameat2``, the folder is or holds the working folder,
holds subfolders or is a symbolic link) the files are staged beside their targets and moved
one by one (``os.replace``): each file is whole, but a kill between the moves can leave
files of two runs side by side; this is reported in the run's log line.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from careblocks.outputs._atomic import _pid_alive

__all__ = ["remove_stale", "write_together"]

_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.careblocks-(?:staging|old)-(?P<pid>\d+)-[0-9a-f]{8}$")
#: file-by-file temporaries of this module, and of the writer before it (``.<stem>.<pid>.partial``)
_PARTIAL = re.compile(r"^\.(?:.+\.careblocks-(?P<pid>\d+)-[0-9a-f]{8}|.+\.(?P<pid2>\d+))\.partial(\.\w+)?$")
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _checkpoint(name: str) -> None:
    """Kill this process here when ``CAREBLOCKS_KILL_AT`` names this point (for the kill test)."""
    if os.environ.get("CAREBLOCKS_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def remove_stale(folder: Path) -> list[Path]:
    """Remove staging and swapped-out folders of earlier runs on ``folder`` whose process died."""
    parent = folder.parent
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for p in parent.iterdir():
        m = _LEFTOVER.match(p.name)
        if m and m["name"] == folder.name and not _pid_alive(int(m["pid"])):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    if folder.is_dir():
        for p in folder.iterdir():
            m = _PARTIAL.match(p.name)
            if m and not _pid_alive(int(m["pid"] or m["pid2"])):
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False when the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (38, 22, 95):  # ENOSYS, EINVAL (file system without exchange), EOPNOTSUPP
        return False
    raise OSError(err, os.strerror(err), str(b))


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _switchable(folder: Path, names: set[str]) -> bool:
    """The folder can be swapped whole: a real folder, not holding the working folder, whose
    other entries are regular files (kept by hard links)."""
    if folder.is_symlink():
        return False
    if not folder.exists():
        return True
    cwd = Path.cwd().resolve()
    real = folder.resolve()
    if cwd == real or real in cwd.parents:
        return False
    dev = folder.stat().st_dev
    for entry in folder.iterdir():
        if entry.name in names:
            continue
        if entry.is_symlink() or not entry.is_file() or entry.stat().st_dev != dev:
            return False
    return True


def write_together(folder: Path, jobs: list[tuple[str, Callable[[Path], Any]]]) -> tuple[list[Path], bool]:
    """Write the files ``jobs`` (name, writer(path)) into ``folder`` as one set.

    Returns the paths written and whether the set was switched in one rename (True) or moved
    file by file (False, see the module docstring).
    """
    folder = Path(os.path.abspath(folder))
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(folder)
    names = {name for name, _ in jobs}
    if not _switchable(folder, names):
        return _file_by_file(folder, jobs), False
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    stage = folder.parent / f".{folder.name}.careblocks-staging-{token}"
    stage.mkdir()
    try:
        if folder.exists():  # keep the folder's other files (hard links: no copy)
            for entry in folder.iterdir():
                if entry.name not in names:
                    os.link(entry, stage / entry.name)
        for name, writer in jobs:
            writer(stage / name)
            _checkpoint(f"wrote:{name}")
        _fsync_dir(stage)
        _checkpoint("staged")
        if not folder.exists():
            os.rename(stage, folder)
            _fsync_dir(folder.parent)
            _checkpoint("switched")
        else:
            if not _exchange(stage, folder):
                shutil.rmtree(stage, ignore_errors=True)
                return _file_by_file(folder, jobs), False
            _fsync_dir(folder.parent)
            _checkpoint("switched")
            old = folder.parent / f".{folder.name}.careblocks-old-{token}"
            os.rename(stage, old)  # the stage now holds the previous set
            _checkpoint("renamed-old")
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)  # before the swap: the new partial set; after: the old
        raise
    return [folder / name for name, _ in jobs], True


def _file_by_file(folder: Path, jobs: list[tuple[str, Callable[[Path], Any]]]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    staged: list[tuple[Path, Path]] = []
    try:
        for name, writer in jobs:
            target = folder / name
            tmp = folder / f".{name}.careblocks-{token}.partial{target.suffix}"
            writer(tmp)
            staged.append((tmp, target))
        for i, (tmp, target) in enumerate(staged):
            os.replace(tmp, target)
            _checkpoint(f"moved:{i}")
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return [target for _, target in staged]
