"""Only regular files are read: folders, FIFOs, devices, sockets and dangling links are
refused with one line naming the config key, before anything opens them.

``os.stat`` does not open the file, so a FIFO (which would block ``open`` until a writer
appears) or ``/dev/zero`` (which never ends) is recognised without reading a byte.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from careblocks.errors import InputDataError

#: default size limit of one input file (MB); ``audit.max_input_mb`` changes it
DEFAULT_MAX_MB = 4096.0
#: a study config is a small text file
CONFIG_MAX_MB = 4.0


def file_kind(path: str | os.PathLike[str]) -> str:
    """``"file"``, ``"missing"``, ``"dangling link"``, ``"folder"``, ``"named pipe (FIFO)"``,
    ``"device"``, ``"socket"`` or ``"special file"`` - without opening the path."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return "dangling link" if os.path.islink(p) else "missing"
    except OSError:
        return "dangling link" if os.path.islink(p) else "missing"
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


_FIX = {
    "dangling link": "the link points to a file that does not exist; point the key at the real file",
    "folder": "give the path of a file inside it",
    "named pipe (FIFO)": "careblocks reads only regular files; save the data to a file and give its path",
    "device": "careblocks reads only regular files; give the path of a data file",
    "socket": "careblocks reads only regular files; give the path of a data file",
    "special file": "careblocks reads only regular files; give the path of a data file",
}


def check_regular_file(
    path: str | os.PathLike[str],
    *,
    key: str,
    max_mb: float | None = DEFAULT_MAX_MB,
    folder_fix: str | None = None,
    missing_ok: bool = False,
) -> str:
    """Raise :class:`InputDataError` (one line naming ``key``) unless ``path`` is a regular
    file no larger than ``max_mb``; return its kind (``"file"`` or ``"missing"`` when
    ``missing_ok``)."""
    kind = file_kind(path)
    if kind == "file":
        if max_mb is not None:
            size = os.stat(path).st_size
            if size > max_mb * 1e6:
                raise InputDataError(
                    f"{key}: {path} is {size / 1e6:,.0f} MB, above the {max_mb:,.0f} MB limit for "
                    "one input file; clip the data to the study area or raise audit.max_input_mb"
                )
        return kind
    if kind == "missing":
        if missing_ok:
            return kind
        raise InputDataError(f"{key}: {path}: file not found; check the path in the config")
    fix = folder_fix if (kind == "folder" and folder_fix) else _FIX[kind]
    raise InputDataError(f"{key}: {path} is a {kind}, not a regular file; {fix}")
