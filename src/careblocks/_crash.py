"""The crash log of an unexpected exception (a bug): written by the CLI before exit code 3,
and by ``careblocks batch`` for a study that crashed while the others go on."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["write_crash_log"]


def write_crash_log(exc: BaseException, *, context: str | None = None) -> Path | None:
    """Write the traceback of an unexpected exception to a crash log; return its path.

    The log goes to ``$CAREBLOCKS_CRASH_DIR`` (default: the system's temporary folder) as
    ``careblocks-crash-<UTC time>-<pid>.log``; ``context`` (e.g. the study of a batch) is
    written under the command line.
    """
    import datetime as _dt
    import os
    import platform
    import tempfile
    import traceback

    from careblocks._version import __version__

    folder = Path(os.environ.get("CAREBLOCKS_CRASH_DIR") or tempfile.gettempdir())
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"careblocks-crash-{stamp}-{os.getpid()}.log"
    n = 1
    while path.exists():  # two crashes of one process (a batch worker) in the same second
        n += 1
        path = folder / f"careblocks-crash-{stamp}-{os.getpid()}-{n}.log"
    text = (
        f"careblocks {__version__}, Python {platform.python_version()}, {platform.platform()}\n"
        f"command: {' '.join(sys.argv)}\n"
        + (f"{context}\n" if context else "")
        + "\n"
        + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError:
        return None
    return path
