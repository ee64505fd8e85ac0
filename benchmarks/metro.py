"""Metro-scale benchmark: a whole tiled city, read, built and analysed on 1 and 2 Dask workers.

The city is Porto Alegre's r5r extract tiled ``6 x 5`` times (``benchmarks/_metro_city.py``):
about 1.1 million walk nodes, 200,000 origins holding 2 million people, the four care
services, 10,000 candidate sites and the EPTC bus feed replicated per tile, searched over 120
departure minutes. It is generated once into a cache folder (never the repository).

Reported, each in a fresh subprocess so that one measurement does not inherit another's memory:

1. reading OSM: peak memory above the imports (Linux's VmHWM, reset after the imports),
   against the PBF's size, of the streaming reader alone (``read_pbf_ways``), of the whole
   network stage (``load_or_build_network``, cache off: read and build the ``WalkNetwork``)
   built straight from the reader's arrays, of the same stage through the ``(nodes, edges)``
   GeoDataFrames (the former path, the baseline measured in the same run), and of pyrosm's
   reading (the former reader);
2. the whole study (``careblocks.pipeline.analyse``, no outputs written) with
   ``compute.workers`` = 1 and 2: wall time and peak memory (this process and its Dask
   workers, sampled every 0.2 s) per stage, and the speed-up of 2 workers over 1 (``--origins``:
   on every k-th origin only, labelled so);
3. with ``--kernels N``: the transit kernels on N random origins, results asserted equal: transit
   access from the stop profiles against one Range-RAPTOR per origin, and the catchments against
   the kernels before per-block workspaces (``benchmarks/_old_transit.py``).

    .venv/bin/python benchmarks/metro.py            # the metro city (hours: transit on 200,000 origins)
    .venv/bin/python benchmarks/metro.py --small    # 2 x 2 tiles, a smoke run (a few minutes)
    .venv/bin/python benchmarks/metro.py --skip-read --origins 2000   # every 100th origin
    .venv/bin/python benchmarks/metro.py --skip-read --skip-study --kernels 2000  # transit kernels, old vs new
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))

import _metro_city  # noqa: E402
from _common import PEAK_PRELUDE, run_json  # noqa: E402

from careblocks.config import data_dir  # noqa: E402

_READ = PEAK_PRELUDE + textwrap.dedent("""
    import gc, json, os, sys, warnings
    warnings.simplefilter("ignore")
    import numpy, pandas, geopandas, shapely, osmium, pyrosm, pyproj, scipy.sparse.csgraph
    from careblocks.io.osm import read_osm_network, read_pbf_ways
    from careblocks.config import config_from_dict
    from careblocks.network import graph
    gc.collect()

    mode, path = sys.argv[1], sys.argv[2]
    cfg = config_from_dict({"network": {"source": "osm", "path": path, "cache": False}})
    if mode == "network-frames":  # the stage through the (nodes, edges) GeoDataFrames
        graph._streams = lambda config, path: False
    reset_peak()  # the peak (VmHWM) from the current RSS on
    base = status("VmRSS")
    import time
    t0 = time.perf_counter()
    if mode == "arrays":
        w = read_pbf_ways(path)
        n = int(w.node_id.size)
    elif mode.startswith("network"):
        net, stats = graph.load_or_build_network(cfg)
        n = int(stats["input_nodes"]) if "input_nodes" in stats else int(net.n_nodes)
    else:
        nodes, edges = read_osm_network(path, pbf_reader=mode)
        n = len(nodes)
    sec = time.perf_counter() - t0
    peak = status("VmHWM")
    print(json.dumps({"mb": (peak - base) / 1024, "seconds": sec, "nodes": n}))
""")

_STUDY = textwrap.dedent("""
    import dataclasses, json, os, sys, threading, time, warnings
    warnings.simplefilter("ignore")
    import psutil
    from careblocks import pipeline
    from careblocks.config import load_config

    cfg = load_config(sys.argv[1])
    cfg = dataclasses.replace(cfg, compute=dataclasses.replace(cfg.compute, workers=int(sys.argv[2])))
    me = psutil.Process()
    base = me.memory_info().rss
    current = ["start"]
    peaks = {}
    stop = threading.Event()

    def tree_rss():
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total

    def sample():
        while not stop.is_set():
            r = tree_rss()
            s = current[0]
            peaks[s] = max(peaks.get(s, 0), r)
            stop.wait(0.2)

    def reporter(event, stage, detail):
        if event == "start":
            current[0] = stage
            peaks[stage] = max(peaks.get(stage, 0), tree_rss())
        elif event == "done":  # as it goes, so that a run cut short still tells something
            print(f"    [{sys.argv[2]} worker(s)] {stage}: {detail}, peak {peaks.get(stage, 0) / 2**20:.0f} MB",
                  file=sys.stderr, flush=True)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.perf_counter()
    files = {}
    if len(sys.argv) > 3 and sys.argv[3]:  # the whole run, outputs written
        from pathlib import Path
        ctx, written = pipeline.run(cfg, out_dir=Path(sys.argv[3]), reporter=reporter)
        timings = dict(ctx.metadata["stage_seconds"])
        files = {p.name: p.stat().st_size for p in written}
    else:
        ctx = pipeline.analyse(cfg, reporter=reporter)
        timings = ctx.timings
    total = time.perf_counter() - t0
    stop.set()
    th.join()
    print(json.dumps({
        "seconds": timings, "total_s": total, "peak_mb": {k: v / 2**20 for k, v in peaks.items()},
        "base_mb": base / 2**20, "nodes": int(ctx.network.n_nodes), "origins": int(len(ctx.origins)),
        "people": float(ctx.origins["population"].sum()) if "population" in ctx.origins else None,
        "candidates": int(len(ctx.candidates)) if ctx.candidates is not None else 0,
        "files": files,
    }))
""")


_KERNELS = textwrap.dedent("""
    import json, sys, time, warnings
    warnings.simplefilter("ignore")
    from contextlib import nullcontext
    import numpy as np
    sys.path.insert(0, sys.argv[3])
    from _old_transit import use_old_kernels, use_range_raptor
    from careblocks import pipeline
    from careblocks.config import load_config
    from careblocks.network.cost import WalkCost
    from careblocks.pipeline import cache as stage_cache, sites_stage
    from careblocks.transit import transit_access
    from careblocks.transit.reach import transit_coverage

    cfg = load_config(sys.argv[1])
    ctx = pipeline.analyse(cfg, until="origins")
    tt, _, _ = stage_cache.load_timetable_cached(cfg, ctx.network, area_4326=ctx.area_4326, crs=ctx.crs,
                                                 status=ctx.cache_status)
    cands = sites_stage.site_candidates(ctx)
    services = pipeline._services_by_type(ctx)
    n = int(sys.argv[2])
    sub = np.sort(np.random.default_rng(0).choice(len(ctx.origins), n, replace=False))
    on = ctx.origins["node"].to_numpy(np.int64)[sub]
    osnap = ctx.origins["snap_m"].to_numpy(np.float64)[sub]
    cn, cs = cands["node"].to_numpy(np.int64), cands["snap_m"].to_numpy(np.float64)
    cost = WalkCost.from_config(cfg.walk)
    T = float(cfg.access.threshold_min)
    out = {"stops": tt.n_stops, "routes": tt.n_routes, "origins": n, "targets": int(cn.size)}
    res = {}
    for label in ("new", "old"):
        # access: the stop profiles vs one Range-RAPTOR per origin; catchments: the kernels
        # now vs before per-block workspaces
        with use_old_kernels() if label == "old" else nullcontext(), \
                use_range_raptor() if label == "old" else nullcontext():
            transit_access(ctx.network, tt, on[:3], osnap[:3], services, cfg.transit, cost=cost)  # compile
            transit_coverage(ctx.network, tt, on[:3], osnap[:3], cn, cs, cfg.transit, cost=cost, limit_min=T)
            t = time.perf_counter()
            a = transit_access(ctx.network, tt, on, osnap, services, cfg.transit, cost=cost)
            out[label + "_access_s"] = time.perf_counter() - t
            t = time.perf_counter()
            c = transit_coverage(ctx.network, tt, on, osnap, cn, cs, cfg.transit, cost=cost, limit_min=T)
            out[label + "_coverage_s"] = time.perf_counter() - t
        res[label] = (a, c)
    for k in res["new"][0]:
        assert np.array_equal(res["new"][0][k], res["old"][0][k], equal_nan=True), k
    assert (res["new"][1] != res["old"][1]).nnz == 0
    print(json.dumps(out))
""")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="2 x 2 tiles and proportionally fewer origins")
    ap.add_argument("--tiles", default="6x5", help="tiles NXxNY (default 6x5: about 1.1 M walk nodes)")
    ap.add_argument("--workers", default="1,2", help="worker counts to run the study with")
    ap.add_argument("--folder", default=None, help="where the generated city is kept "
                    "(default: careblocks-metro in the temporary folder)")
    ap.add_argument("--no-pyrosm", action="store_true", help="skip the pyrosm baseline on the city PBF")
    ap.add_argument("--skip-read", action="store_true", help="skip part 1 (reading OSM)")
    ap.add_argument("--skip-study", action="store_true", help="skip part 2 (the whole study)")
    ap.add_argument("--kernels", type=int, default=None, metavar="N",
                    help="part 3: the transit stage's kernels on N random origins (same run, results "
                         "asserted equal): transit access to the 4 services from the stop profiles against "
                         "one Range-RAPTOR per origin, walk + transit catchments of every candidate against "
                         "the kernels before per-block workspaces")
    ap.add_argument("--outputs", action="store_true",
                    help="part 2 as `careblocks run` does it: also write the GeoPackage, map, report "
                         "and QGIS project (into a temporary folder; sizes printed)")
    ap.add_argument("--origins", type=int, default=None,
                    help="part 2 on every k-th origin only (about this many; the network, timetable, "
                         "services and candidates stay whole): a run that fits a shared machine, labelled so")
    a = ap.parse_args()
    nx, ny = (2, 2) if a.small else (int(v) for v in a.tiles.lower().split("x"))
    tiles = nx * ny
    origins = round(200_000 * tiles / 30) if tiles < 30 else 200_000
    candidates = round(10_000 * tiles / 30) if tiles < 30 else 10_000
    people = 10 * origins
    folder = Path(a.folder) if a.folder else Path(tempfile.gettempdir()) / f"careblocks-metro-{nx}x{ny}"
    import time

    t0 = time.perf_counter()
    city = _metro_city.make_city(folder, data_dir(), nx, ny, origins=origins, candidates=candidates,
                                 people=people)
    print(f"city: {nx} x {ny} tiles of {_metro_city.BASE_PBF} in {folder} "
          f"(ready in {time.perf_counter() - t0:.0f} s)")
    print(f"  PBF {city.pbf.stat().st_size / 2**20:.1f} MB, GTFS {city.gtfs.stat().st_size / 2**20:.1f} MB, "
          f"{origins:,} origins, {people:,} people, {candidates:,} candidates, "
          f"{sum(k for k in _metro_city.SERVICES_PER_TILE.values()) * tiles:,} facilities in 4 services")

    if not a.skip_read:
        _reading(city, a.no_pyrosm)
    if not a.skip_study:
        config = city.config
        if a.origins and a.origins < origins:
            config = _fewer_origins(city, a.origins)
        _study(city, a.workers, config, a.outputs)
    if a.kernels:
        _kernels(city, a.kernels)


def _kernels(city: _metro_city.City, n: int) -> None:
    print(f"\n3. transit kernels on {n:,} random origins (all numba threads, load average {_load()})",
          flush=True)
    r = run_json(_KERNELS, str(city.config), str(n), str(ROOT / "benchmarks"))
    print(f"  timetable {r['stops']:,} stops, {r['routes']:,} routes; {r['targets']:,} candidate sites")
    for key, name in (("access", "transit access, 4 services x 120 minutes (stop profiles; before: "
                                 "one Range-RAPTOR per origin)"),
                      ("coverage", "walk + transit catchments of every candidate (before: the kernels "
                                   "before per-block workspaces)")):
        new, old = r[f"new_{key}_s"], r[f"old_{key}_s"]
        print(f"  {name}: {1000 * new / n:.2f} ms per origin, before {1000 * old / n:.2f} ms "
              f"-> {old / new:.1f}x (identical results)")
    print(f"  load average at the end {_load()}")


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def _fewer_origins(city: _metro_city.City, n: int) -> Path:
    """A config of the same city whose population layer keeps every k-th origin (about n)."""
    import pandas as pd

    pop = pd.read_csv(city.population)
    step = max(1, len(pop) // n)
    sub = city.folder / f"population_every{step}.csv"
    pop.iloc[::step].to_csv(sub, index=False)
    text = city.config.read_text()
    assert str(city.population) in text
    out = city.folder / f"city_every{step}.toml"
    out.write_text(text.replace(str(city.population), str(sub)))
    print(f"  part 2 on every {step}th origin: {len(pop.iloc[::step]):,} of {len(pop):,} origins "
          "(network, timetable, services and candidates whole)")
    return out


def _reading(city: _metro_city.City, no_pyrosm: bool) -> None:
    print("\n1. reading OSM (peak memory above the imports, fresh process each)", flush=True)
    print(f"  {'file':<14} {'what':<26} {'MB':>8} {'x PBF':>7} {'seconds':>8} {'nodes':>10}")
    files = [("base extract", data_dir() / _metro_city.BASE_PBF), ("city", city.pbf)]
    results = {}
    for label, path in files:
        size_mb = path.stat().st_size / 2**20
        for mode, name in (("arrays", "read: pyosmium arrays"), ("network", "stage: from the arrays"),
                           ("network-frames", "stage: via GeoDataFrames"),
                           ("pyrosm", "read: pyrosm (former)")):
            if mode == "pyrosm" and label == "city" and no_pyrosm:
                continue
            r = run_json(_READ, mode, str(path))
            results[(label, mode)] = r
            print(f"  {label:<14} {name:<26} {r['mb']:8.1f} {r['mb'] / size_mb:7.1f} {r['seconds']:8.1f} "
                  f"{r['nodes']:10,}", flush=True)
        new, old = results[(label, "network")], results[(label, "network-frames")]
        print(f"  {'':<14} network stage, GeoDataFrames / arrays: {old['mb'] / new['mb']:.1f}x memory, "
              f"{old['seconds'] / new['seconds']:.1f}x time")



def _study(city: _metro_city.City, workers: str, config: Path, outputs: bool) -> None:
    what = "careblocks.pipeline.run: GeoPackage, map, report and QGIS project written" if outputs \
        else "pipeline.analyse, no outputs"
    print(f"\n2. the whole study ({what}), per stage: seconds / peak MB of the process tree", flush=True)
    runs = {}
    for w in (int(v) for v in workers.split(",")):
        print(f"  {w} worker(s): load average at the start {_load()}", flush=True)
        with tempfile.TemporaryDirectory(prefix="careblocks-metro-out-") as out:
            runs[w] = run_json(_STUDY, str(config), str(w), out if outputs else "")
        print(f"  {w} worker(s): load average at the end {_load()}", flush=True)
        for name, size in runs[w]["files"].items():
            print(f"    wrote {name}: {size / 2**20:.1f} MB")
    first = next(iter(runs.values()))
    print(f"  network {first['nodes']:,} walk nodes, {first['origins']:,} origins, "
          f"{first['people'] or 0:,.0f} people, {first['candidates']:,} candidates")
    stages = list(first["seconds"])
    head = "".join(f"{f'{w} worker' + ('s' if w != 1 else ''):>22}" for w in runs)
    print(f"  {'stage':<16}{head}")
    for s in stages:
        cells = "".join(f"{r['seconds'].get(s, 0):10.1f} s {r['peak_mb'].get(s, 0):7.0f} MB" for r in runs.values())
        print(f"  {s:<16}{cells}")
    cells = "".join(f"{r['total_s']:10.1f} s {max(r['peak_mb'].values()):7.0f} MB" for r in runs.values())
    print(f"  {'total':<16}{cells}")
    if 1 in runs and 2 in runs:
        t1, t2 = runs[1], runs[2]
        print(f"  speed-up of 2 workers over 1: {t1['total_s'] / t2['total_s']:.2f}x in total", end="")
        for s in ("walk access", "transit", "sites"):
            if t2["seconds"].get(s):
                print(f", {s} {t1['seconds'][s] / t2['seconds'][s]:.2f}x", end="")
        print()


if __name__ == "__main__":
    main()
