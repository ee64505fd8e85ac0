"""numba, imported when a compiled kernel first runs, not when a module defining one is imported.

Importing numba costs more CPU than everything else a warm ``careblocks run`` (every stage
cached) still does with the arrays, and such a run calls no kernel. The kernel modules
therefore take ``njit``, ``prange`` and ``numba`` from here:

- ``njit(**options)`` returns a :class:`LazyJit`; its first call imports numba, applies
  ``numba.njit(**options)`` to the Python function (``cache=True`` keeps using numba's
  on-disk cache) and calls the result; later calls go straight to numba's dispatcher.
- before a kernel is handed to numba, the placeholders in its module's globals (``prange``,
  ``numba``, other :class:`LazyJit` kernels) are replaced by numba's own objects, which is
  what compiled code must see (a ``prange`` loop stays parallel, a kernel calling another
  one calls its dispatcher).
- ``numba`` is the numba module, imported on first attribute access
  (``numba.get_num_threads()``).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["LazyJit", "njit", "numba", "prange"]

_lock = threading.RLock()


class _Numba:
    """The numba module, imported on first attribute access."""

    def __getattr__(self, name: str) -> Any:
        import numba as nb

        return getattr(nb, name)


numba: Any = _Numba()


def prange(*args: int) -> range:
    """``range`` when called from Python; ``numba.prange`` in compiled code (see :func:`_bind`)."""
    return range(*args)


class LazyJit:
    """A function compiled by ``numba.njit(**options)`` on its first call."""

    def __init__(self, fn: Callable, options: dict[str, Any]) -> None:
        self.py_func = fn
        self._options = options
        self._dispatcher: Any = None
        functools.update_wrapper(self, fn)

    def compiled(self) -> Any:
        """numba's dispatcher of the function (created, and the module's globals bound, once)."""
        if self._dispatcher is None:
            with _lock:
                if self._dispatcher is None:
                    import numba as nb

                    self._dispatcher = nb.njit(**self._options)(self.py_func)
                    _bind(self.py_func.__globals__, nb)
        return self._dispatcher

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.compiled()(*args, **kwargs)

    def __reduce__(self) -> tuple:
        # by name (as a function is pickled): a Dask worker takes its own module's kernel
        return _resolve, (self.py_func.__module__, self.py_func.__qualname__)


def _resolve(module: str, name: str) -> Any:
    import importlib

    return getattr(importlib.import_module(module), name)


def _bind(namespace: dict[str, Any], nb: Any) -> None:
    """Replace the placeholders among a module's globals by numba's objects."""
    for name, value in list(namespace.items()):
        if value is prange:
            namespace[name] = nb.prange
        elif value is numba:
            namespace[name] = nb
        elif isinstance(value, LazyJit):
            namespace[name] = value.compiled()


def njit(*args: Any, **options: Any) -> Any:
    """``numba.njit``, applied on the first call (``@njit`` or ``@njit(cache=True, ...)``)."""
    if args and callable(args[0]) and not options:
        return LazyJit(args[0], {})
    return lambda fn: LazyJit(fn, options)
