"""Shared helpers of the benchmark scripts: the real Fontibón graph, tiled copies of it,
service locations, timing and memory measurement, and a machine description.

Run benchmarks from the project root with the project's venv, e.g.
``.venv/bin/python benchmarks/walk_access.py``.
"""

from __future__ import annotations

import os
import platform
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from careblocks.config import data_dir  # noqa: E402
from careblocks.network.graph import WalkNetwork  # noqa: E402

#: Facilities per copy of Fontibón, as counted in its OSM extract (daycare = kindergarten 8 +
#: childcare 9; health = clinic 6 + hospital 5 + doctors 1; laundromat = laundry 12 +
#: dry_cleaning 3; kitchen = social_facility 2).
FONTIBON_SERVICES = {"daycare": 17, "health": 12, "laundromat": 15, "kitchen": 2}
FONTIBON_PBF = "bogota/osm/fontibon_overpass_2023-05-29.osm.pbf"


def fontibon_network() -> WalkNetwork:
    """The Fontibón walking network (largest connected component) built the pipeline's way."""
    from careblocks.io.osm import read_osm_network
    from careblocks.network.graph import build_walk_network, local_crs

    nodes, edges = read_osm_network(data_dir() / FONTIBON_PBF)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dropped-pieces warning is expected here
        net, _ = build_walk_network(nodes, edges, crs=local_crs(nodes.geometry))
    return net


def tile_network(net: WalkNetwork, nx: int, ny: int, *, n_links: int = 3,
                 gap_m: float = 100.0) -> WalkNetwork:
    """``nx * ny`` copies of ``net`` shifted in x/y, joined by ``n_links`` edges per pair of
    neighbouring copies (east-most nodes of one to west-most of the next, and so on).

    Copy ``c = j * nx + i`` holds nodes ``c * n .. (c + 1) * n - 1``.
    """
    n = net.n_nodes
    w = float(net.x.max() - net.x.min()) + gap_m
    h = float(net.y.max() - net.y.min()) + gap_m
    k = nx * ny
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(net.indptr))
    a_parts, b_parts, len_parts, xs, ys = [], [], [], [], []
    for c in range(k):
        i, j = c % nx, c // nx
        keep = rows < net.indices  # each undirected edge once
        a_parts.append(rows[keep] + c * n)
        b_parts.append(net.indices[keep].astype(np.int64) + c * n)
        len_parts.append(net.length_m[keep])
        xs.append(net.x + i * w)
        ys.append(net.y + j * h)
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    east = np.argsort(-net.x)[:n_links]
    west = np.argsort(net.x)[:n_links]
    north = np.argsort(-net.y)[:n_links]
    south = np.argsort(net.y)[:n_links]
    for c in range(k):
        i, j = c % nx, c // nx
        pairs = []
        if i + 1 < nx:
            pairs.append((east + c * n, west + (c + 1) * n))
        if j + 1 < ny:
            pairs.append((north + c * n, south + (c + nx) * n))
        for pa, pb in pairs:
            a_parts.append(pa)
            b_parts.append(pb)
            len_parts.append(np.hypot(x[pa] - x[pb], y[pa] - y[pb]))
    a = np.concatenate(a_parts)
    b = np.concatenate(b_parts)
    ln = np.concatenate(len_parts)
    src = np.concatenate([a, b])
    dst = np.concatenate([b, a])
    ww = np.concatenate([ln, ln])
    order = np.lexsort((dst, src))
    indptr = np.zeros(k * n + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=k * n), out=indptr[1:])
    return WalkNetwork(indptr=indptr, indices=dst[order].astype(np.int32),
                       length_m=ww[order].astype(np.float64), x=x, y=y,
                       node_id=np.arange(k * n, dtype=np.int64), crs=net.crs)


def grid_shape(copies: int) -> tuple[int, int]:
    """A near-square ``(nx, ny)`` with ``nx * ny == copies``."""
    ny = int(np.floor(np.sqrt(copies)))
    while copies % ny:
        ny -= 1
    return copies // ny, ny


def random_services(n_per_copy: int, copies: int, *, seed: int = 0,
                    per_copy: dict[str, int] | None = None,
                    max_snap_m: float = 80.0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Facility nodes and snap distances per service: ``per_copy`` random nodes in each copy."""
    per_copy = per_copy or FONTIBON_SERVICES
    rng = np.random.default_rng(seed)
    out = {}
    for name, k in per_copy.items():
        nodes = np.concatenate([rng.choice(n_per_copy, k, replace=False) + c * n_per_copy
                                for c in range(copies)]).astype(np.int64)
        out[name] = (nodes, rng.uniform(0.0, max_snap_m, nodes.size))
    return out


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall time of ``repeat`` calls, and the last result."""
    best = np.inf
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def peak_traced_mb(fn: Callable[[], Any]) -> float:
    """Peak memory (MB) allocated during ``fn()`` as seen by tracemalloc (numpy and numba
    arrays included: both allocate through the traced Python allocator)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return (tracemalloc.get_traced_memory()[1] - base) / 1e6
    finally:
        tracemalloc.stop()


def machine() -> str:
    """One line describing the machine (CPU model, cores, memory, Python, numba threads)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    import numba

    return (f"{cpu}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}, "
            f"numba {numba.__version__} ({numba.get_num_threads()} threads)")


def spatial_order(net: WalkNetwork, *, cell_m: float = 300.0) -> tuple[WalkNetwork, np.ndarray]:
    """``net`` with its nodes renumbered cell by cell (row-major ``cell_m`` squares, by x
    inside a cell), so that nodes near in space are near in memory; and ``new_index`` per
    old node. The pipeline's networks number nodes by sorted OSM id."""
    import scipy.sparse as sp

    n = net.n_nodes
    cell = (np.floor((net.y - net.y.min()) / cell_m).astype(np.int64) * 1_000_000
            + np.floor((net.x - net.x.min()) / cell_m).astype(np.int64))
    perm = np.lexsort((net.x, cell))
    new_index = np.empty(n, np.int64)
    new_index[perm] = np.arange(n)
    m = sp.csr_matrix((net.length_m, net.indices, net.indptr), shape=(n, n))[perm][:, perm]
    m = m.tocsr()
    m.sort_indices()
    out = WalkNetwork(indptr=m.indptr.astype(np.int64), indices=m.indices.astype(np.int32),
                      length_m=m.data.astype(np.float64), x=net.x[perm], y=net.y[perm],
                      node_id=net.node_id[perm], crs=net.crs)
    return out, new_index


#: Lines a measuring subprocess starts with (``run_json``): ``status(key)`` reads a field of
#: ``/proc/self/status`` in kB, ``reset_peak()`` sets the peak (``VmHWM``) to the current RSS.
PEAK_PRELUDE = """
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])  # kB


def reset_peak():
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
"""


def run_json(code: str, *args: str) -> dict:
    """Run ``code`` in a fresh Python (this checkout's ``src`` first on the path) with
    ``args``; its last line of output, JSON, is the result."""
    import json
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    out = subprocess.run([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"subprocess failed (exit code {out.returncode}), see above")
    return json.loads(out.stdout.strip().splitlines()[-1])
