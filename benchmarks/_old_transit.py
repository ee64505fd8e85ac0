"""The transit kernels as they were before the per-block workspaces (baseline for benchmarks).

``benchmarks/transit.py`` and ``benchmarks/metro.py --kernels`` measure the current kernels
against these in the same run. They are read from git at :data:`BEFORE` (as
``benchmarks/site_selection.py`` reads its baseline solver), not kept as a copy: that revision's
``transit/raptor.py`` and ``transit/reach.py`` allocate and fill every per-stop array (labels,
flags, and in the catchments the per-minute arrival at every stop) for every origin, so an
origin costs O(stops x minutes) however little it reaches. :func:`use_old_kernels` swaps them
into :mod:`careblocks.transit` for the duration of a ``with`` block; results are identical to
the current kernels (the benchmarks assert it).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np

#: the last revision with the kernels before per-block workspaces
BEFORE = "761435f"

ROOT = Path(__file__).resolve().parents[1]


@cache
def _modules(rev: str = BEFORE):
    """``(raptor, reach)`` as they were at ``rev``, imported from a temporary folder (files,
    so numba can cache their kernels); the old reach imports the old raptor."""
    folder = Path(tempfile.mkdtemp(prefix="careblocks-transit-before-"))
    for name in ("raptor", "reach"):
        try:
            text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:src/careblocks/transit/{name}.py"],
                                  capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as e:
            raise RuntimeError(f"the transit kernels at {rev} are not available from git: {e}") from None
        text = text.replace("from careblocks.transit.raptor import", "from careblocks_raptor_before import")
        (folder / f"careblocks_{name}_before.py").write_text(text, encoding="utf-8")
    sys.path.insert(0, str(folder))
    try:
        return (importlib.import_module("careblocks_raptor_before"),
                importlib.import_module("careblocks_reach_before"))
    finally:
        sys.path.remove(str(folder))


@contextmanager
def use_old_kernels():
    """Run :func:`careblocks.transit.range_raptor` and
    :func:`careblocks.transit.reach.transit_coverage` on the old kernels inside the block."""
    from careblocks.transit import raptor, reach

    old_raptor, old_reach = _modules()

    def many(*args):
        # the old kernel takes no walking times (applied after it, as before) nor block count
        *head, walk, out, _ = args
        old_raptor._many_origins(*head, out)
        out[...] = np.minimum(out, walk[:, None, :])

    def chunk(*args):
        return old_reach._coverage_chunk(*args[:-1])

    with _patched(raptor, _many_origins=many), _patched(reach, _coverage_chunk=chunk):
        yield


@contextmanager
def use_range_raptor():
    """Inside the block, :func:`careblocks.transit.transit_access` runs one Range-RAPTOR per
    origin (the current kernel, as before the stop profiles) instead of the stop profiles'
    scan and sweep: the baseline of the profiles in ``benchmarks/metro.py --kernels``."""
    from careblocks.transit import adapter
    from careblocks.transit.raptor import range_raptor

    def profiles(tt, tsec, egress, *, max_transfers, t_lo, t_hi):
        return tt, tsec, egress, max_transfers

    def access(prof, ptr, acc_stops, acc_s, deps, *, max_trip_s, walk_s):
        tt, tsec, egress, max_transfers = prof
        return range_raptor(tt, tsec, ptr, acc_stops, acc_s, deps, max_transfers=max_transfers,
                            max_trip_s=max_trip_s, egress_s=egress, walk_s=walk_s)

    with _patched(adapter, stop_profiles=profiles, profile_access=access):
        yield


@contextmanager
def _patched(module, **values):
    """``module``'s attributes set to ``values`` inside the block, restored after it."""
    saved = {k: getattr(module, k) for k in values}
    for k, v in values.items():
        setattr(module, k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(module, k, v)
