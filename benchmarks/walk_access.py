"""Benchmark: the walking access step (all nodes x 4 services: nearest + counts within 15 min).

Graphs: the real Fontibón (Bogotá) walking network, and larger graphs made of copies of it
shifted in x/y and joined by a few edges between neighbouring copies. Services: per copy the
facility counts of Fontibón's OSM (daycare 17, health 12, laundromat 15, kitchen 2) at random
nodes (fixed seed) with random snap legs of 0-80 m.

Measured in the same run, per size:

- ours: ``careblocks.access.walk_access`` with every node as an origin (nearest per service,
  counts within 15 min, the DataFrame);
- floor: 4 single-source full Dijkstra passes with ``scipy.sparse.csgraph.dijkstra``;
- networkx: what an osmnx user writes, ``multi_source_dijkstra_path_length`` per service and
  a ``single_source_dijkstra_path_length(cutoff=...)`` per facility for the counts (graph
  construction timed apart). Run only while the previous size predicts < ``--nx-budget`` s;
  larger sizes are extrapolated linearly in nodes and marked ``~``;
- pandana (``nearest_pois`` + ``aggregate(type="count")``) when a Python with pandana is
  given by ``--pandana-python`` (a throwaway venv); its contraction-hierarchy build timed apart.

Usage: ``.venv/bin/python benchmarks/walk_access.py [--max-nodes N] [--copies 1,4,9,16,28]
[--spatial-order] [--pandana-python PATH]`` (``--spatial-order`` renumbers nodes cell by cell
first, as a network builder could).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    fontibon_network,
    grid_shape,
    machine,
    peak_traced_mb,
    random_services,
    spatial_order,
    tile_network,
    timed,
)

from careblocks.access import walk_access  # noqa: E402
from careblocks.network.cost import WalkCost
from careblocks.network.search import counts_within  # noqa: E402

SPEED_KMH = 4.8
THRESHOLD_MIN = 15.0
#: pandana needs a search radius for nearest_pois; 60 min of walking (ours is unbounded)
PANDANA_MAXDIST_S = 3600.0

PANDANA_SCRIPT = r"""
import json, sys, time
import numpy as np, pandas as pd
from pandana import Network
z = np.load(sys.argv[1])
names = json.loads(sys.argv[2]); limit = float(sys.argv[3]); maxdist = float(sys.argv[4])
nodes = pd.DataFrame({"x": z["x"], "y": z["y"]})
edges = pd.DataFrame({"from": z["a"], "to": z["b"], "w": z["w"]})
t0 = time.perf_counter()
net = Network(nodes["x"], nodes["y"], edges["from"], edges["to"], edges[["w"]], twoway=True)
net.precompute(limit + 1)  # for aggregate; nearest_pois needs none
t_build = time.perf_counter() - t0
out = {}
t_near = t_count = 0.0
for s in names:
    src = z["src_" + s]
    t0 = time.perf_counter()
    net.set_pois(s, maxdist, 1, pd.Series(z["x"][src]), pd.Series(z["y"][src]))
    near = net.nearest_pois(maxdist, s, num_pois=1)
    t_near += time.perf_counter() - t0
    t0 = time.perf_counter()
    nid = net.get_node_ids(pd.Series(z["x"][src]), pd.Series(z["y"][src]))
    net.set(nid, variable=pd.Series(np.ones(len(src))), name="c_" + s)
    cnt = net.aggregate(limit, type="count", decay="flat", name="c_" + s)
    t_count += time.perf_counter() - t0
    out[s] = int((cnt.to_numpy() > 0).sum())
print(json.dumps({"build_s": t_build, "run_s": t_near + t_count, "nearest_s": t_near,
                  "count_s": t_count, "reached": out}))
"""


def run_ours(net, services):
    n = net.n_nodes
    return walk_access(net, np.arange(n), np.zeros(n), services, cost=WalkCost(SPEED_KMH),
                       threshold_min=THRESHOLD_MIN)


def run_floor(csr, services):
    from scipy.sparse.csgraph import dijkstra

    for nodes, _ in services.values():
        dijkstra(csr, directed=True, indices=int(nodes[0]))


def nx_graph(net, w):
    import networkx as nx

    rows = np.repeat(np.arange(net.n_nodes), np.diff(net.indptr))
    keep = rows < net.indices
    g = nx.Graph()
    g.add_nodes_from(range(net.n_nodes))
    g.add_weighted_edges_from(zip(rows[keep].tolist(), net.indices[keep].tolist(),
                                  w[keep].tolist(), strict=True))
    return g


def run_networkx(g, services, limit_s):
    import networkx as nx

    n = g.number_of_nodes()
    result = {}
    for name, (nodes, _) in services.items():
        near = nx.multi_source_dijkstra_path_length(g, set(nodes.tolist()), weight="weight")
        counts = np.zeros(n, np.int32)
        for s in nodes.tolist():
            for v in nx.single_source_dijkstra_path_length(g, s, cutoff=limit_s, weight="weight"):
                counts[v] += 1
        result[name] = (near, counts)
    return result


def run_pandana(python, net, w, services, limit_s):
    rows = np.repeat(np.arange(net.n_nodes), np.diff(net.indptr))
    keep = rows < net.indices
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "g.npz"
        np.savez(f, x=net.x, y=net.y, a=rows[keep], b=net.indices[keep].astype(np.int64),
                 w=w[keep], **{"src_" + s: v[0] for s, v in services.items()})
        script = Path(tmp) / "p.py"
        script.write_text(PANDANA_SCRIPT)
        r = subprocess.run([python, str(script), str(f), json.dumps(list(services)),
                            str(limit_s), str(PANDANA_MAXDIST_S)], capture_output=True, text=True, timeout=1800)
    if r.returncode:
        return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-nodes", type=int, default=450_000)
    ap.add_argument("--copies", default="1,4,9,16,28")
    ap.add_argument("--nx-budget", type=float, default=60.0,
                    help="run networkx while its predicted time is below this (s)")
    ap.add_argument("--pandana-python", default="/tmp/pandana_venv/bin/python")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--spatial-order", action="store_true",
                    help="renumber nodes cell by cell before measuring (all methods)")
    args = ap.parse_args(argv)

    print(machine())
    base = fontibon_network()
    print(f"Fontibón: {base.n_nodes:,} nodes, {base.n_edges // 2:,} edges")
    limit_s = THRESHOLD_MIN * 60.0
    # compile (cached across runs) and warm up on the base graph
    run_ours(base, random_services(base.n_nodes, 1, seed=99))

    pandana_py = args.pandana_python if Path(args.pandana_python).exists() else None
    hdr = (f"{'copies':>6} {'nodes':>9} {'ours s':>8} {'floor s':>8} {'ours/floor':>10} "
           f"{'nx s':>9} {'nx/ours':>8} {'pandana s':>10} {'mem MB':>7} {'B/node':>7} "
           f"{'floor MB':>8}")
    print(hdr)
    rows = []
    nx_last = None
    for copies in [int(c) for c in args.copies.split(",")]:
        if copies * base.n_nodes > args.max_nodes:
            break
        gx, gy = grid_shape(copies)
        net = tile_network(base, gx, gy)
        services = random_services(base.n_nodes, copies, seed=1)
        if args.spatial_order:
            net, new_index = spatial_order(net)
            services = {k: (new_index[v[0]], v[1]) for k, v in services.items()}
        w = WalkCost(SPEED_KMH).edge_seconds(net)
        import scipy.sparse as sp

        csr = sp.csr_matrix((w, net.indices, net.indptr), shape=(net.n_nodes,) * 2)
        # interleaved, best of `repeat`: other jobs on the machine hit both alike
        t_ours = t_floor = np.inf
        for _ in range(args.repeat):
            t, table = timed(lambda: run_ours(net, services))  # noqa: B023
            t_ours = min(t_ours, t)
            t, _ = timed(lambda: run_floor(csr, services))  # noqa: B023
            t_floor = min(t_floor, t)
        mem = peak_traced_mb(lambda: run_ours(net, services))  # noqa: B023
        mem_floor = peak_traced_mb(lambda: run_floor(csr, services))  # noqa: B023

        nx_s, nx_mark, nx_build = None, "", None
        predicted = None if nx_last is None else nx_last[1] * net.n_nodes / nx_last[0]
        if predicted is None or predicted < args.nx_budget:
            t0 = time.perf_counter()
            g = nx_graph(net, w)
            nx_build = time.perf_counter() - t0
            nx_s, res = timed(lambda: run_networkx(g, services, limit_s))  # noqa: B023
            del g
            nx_last = (net.n_nodes, nx_s)
            # same answers: networkx has no snap legs, so check our kernels without them
            for name, (nodes, _) in services.items():
                ours_c = counts_within(net.indptr, net.indices, w, nodes, None, limit_s)
                assert np.array_equal(ours_c, res[name][1]), f"counts differ: {name}"
            name0 = next(iter(services))
            reach_nx = int((res[name0][1] > 0).sum())
        else:
            nx_s, nx_mark = predicted, "~"
            reach_nx = None
        pd_res = run_pandana(pandana_py, net, w, services, limit_s) if pandana_py else None
        pd_txt = "n/a"
        if pd_res and "run_s" in pd_res:
            pd_txt = f"{pd_res['run_s']:.2f}"
        elif pd_res:
            pd_txt = "error"
        row = dict(copies=copies, nodes=net.n_nodes, ours_s=t_ours, floor_s=t_floor,
                   nx_s=nx_s, nx_extrapolated=bool(nx_mark), nx_build_s=nx_build,
                   mem_mb=mem, floor_mem_mb=mem_floor, pandana=pd_res,
                   reach_nx=reach_nx)
        rows.append(row)
        print(f"{copies:>6} {net.n_nodes:>9,} {t_ours:>8.2f} {t_floor:>8.2f} "
              f"{t_ours / t_floor:>10.2f} {nx_mark + format(nx_s, '.1f'):>9} "
              f"{nx_mark + format(nx_s / t_ours, '.0f'):>8} {pd_txt:>10} {mem:>7.0f} "
              f"{mem * 1e6 / net.n_nodes:>7.0f} {mem_floor:>8.0f}", flush=True)
        if pd_res and "error" in pd_res:
            print(f"       pandana: {pd_res['error']}")
        elif pd_res:
            print(f"       pandana: nearest_pois {pd_res['nearest_s']:.2f} s + aggregate "
                  f"{pd_res['count_s']:.2f} s; contraction hierarchy build "
                  f"{pd_res['build_s']:.2f} s (not counted); nodes reaching >=1 {next(iter(services))} within "
                  f"{THRESHOLD_MIN:g} min: pandana {pd_res['reached'][next(iter(services))]:,}"
                  f", networkx {reach_nx if reach_nx is not None else '-'} (both without "
                  f"snap legs), ours {int((table.iloc[:, 1] > 0).sum()):,} (with them)")
        if nx_build is not None:
            print(f"       networkx graph build {nx_build:.2f} s (not counted)")
        del table
    print(json.dumps(rows, default=float))


if __name__ == "__main__":
    main()
