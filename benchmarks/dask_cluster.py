"""Benchmark: one city's per-origin work on a Dask cluster, 1 against 2 worker processes.

Run: ``.venv/bin/python benchmarks/dask_cluster.py [--reps 2]``

* Inputs: Porto Alegre as ``configs/porto_alegre.toml`` (OSM walk network with slopes,
  1,227 H3 cells as origins, health facilities from the cells, EPTC + Trensurb GTFS,
  14:00-16:00 every minute = 120 departures), built by the pipeline up to the origins stage.
* Stages timed, each through :func:`careblocks.compute.map_chunks` as the pipeline calls them:
  ``transit`` (:func:`careblocks.transit.transit_access`: access legs + Range-RAPTOR per
  origin, 4 services), ``catchments`` (:func:`careblocks.sites.scoring.compute_catchments`
  with every origin cell as a candidate site: one bounded search per candidate) and
  ``transit catchments`` (:func:`careblocks.transit.transit_coverage`: Range-RAPTOR per
  origin to every candidate within 15 minutes).
* Modes, in the same run: in this process (the numba kernels on all threads: the default),
  then a LocalCluster of 1 and of 2 worker processes (one thread each, kernels on one
  thread). The first call on a cluster also sends the network and timetable to the workers
  (``first``); ``best`` is the best of ``--reps`` later calls. Results are checked equal to
  the in-process ones. The ratio that matters: 1 worker / 2 workers (the speed-up). The CPU
  seconds the workers spent on the same call (2 workers / 1 worker near 1: splitting costs
  little extra work, so the wall-clock speed-up is bounded by the free cores, not by the
  chunking).
* The machine is shared (2 cores): other processes take cores too, so read the ratios as
  lower bounds of what 2 free cores give.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
from _common import ROOT, machine


def _cpu_seconds() -> float:
    """User + system CPU seconds of this (worker) process, all its threads."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()

    import numba
    from dask.distributed import Client, LocalCluster

    from careblocks import compute, pipeline
    from careblocks.config import load_config
    from careblocks.errors import DataQualityWarning
    from careblocks.network.cost import WalkCost
    from careblocks.pipeline import _services_by_type
    from careblocks.sites.scoring import compute_catchments, sites_threshold_min
    from careblocks.transit import load_timetable, transit_access, transit_coverage

    os.environ.pop(compute.ENV_ADDRESS, None)
    os.environ["CAREBLOCKS_STAGE_CACHE"] = "0"
    warnings.simplefilter("ignore", DataQualityWarning)
    cfg = load_config(ROOT / "configs/porto_alegre.toml")
    t = time.perf_counter()
    ctx = pipeline.analyse(cfg, until="origins")
    cost = WalkCost.from_config(cfg.walk)
    tt, _ = load_timetable(cfg.transit, ctx.network, area_4326=ctx.area_4326, crs=ctx.crs, cost=cost)
    t_setup = time.perf_counter() - t
    net, origins = ctx.network, ctx.origins
    services = _services_by_type(ctx)
    on, osnap = origins["node"].to_numpy(np.int64), origins["snap_m"].to_numpy(np.float64)
    cands = origins[["node", "snap_m"]].copy()

    stages = {
        "transit": lambda: transit_access(net, tt, on, osnap, services, cfg.transit, cost=cost),
        "catchments": lambda: compute_catchments(cfg, cands, origins, net, services=ctx.services),
        "transit catchments": lambda: transit_coverage(
            net, tt, on, osnap, on, osnap, cfg.transit, cost=cost, limit_min=sites_threshold_min(cfg)),
    }

    def same(a, b) -> bool:
        if isinstance(a, dict):
            return all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)
        if hasattr(a, "coverage"):
            return all((x != y).nnz == 0 for x, y in ((a.reach, b.reach), (a.coverage, b.coverage),
                                                       (a.services, b.services)))
        return (a != b).nnz == 0

    def run_all(label: str, cpu) -> dict[str, tuple[float, float, object, float]]:
        out = {}
        for name, fn in stages.items():
            t0 = time.perf_counter()
            res = fn()
            first = time.perf_counter() - t0
            best, best_cpu = first, float("nan")
            for _ in range(args.reps):
                c0, t0 = cpu(), time.perf_counter()
                fn()
                wall, used = time.perf_counter() - t0, cpu() - c0
                if wall < best or best_cpu != best_cpu:
                    best, best_cpu = min(best, wall), used
            out[name] = (first, best, res, best_cpu)
            print(f"  {label:<14} {name:<19} first {first:7.2f} s   best {best:7.2f} s   "
                  f"CPU {best_cpu:7.2f} s", flush=True)
        return out

    print(f"machine: {machine()}")
    print(f"Porto Alegre: {net.n_nodes:,} nodes, {len(origins):,} origins (= candidates), "
          f"{tt.n_stops:,} stops, {cfg.transit.window_start}-{cfg.transit.window_end}; "
          f"setup {t_setup:.1f} s; numba threads in process: {numba.get_num_threads()}")
    results = {"in process": run_all("in process", time.process_time)}
    for n in (1, 2):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster, set_as_default=False)
        try:
            with compute.session(scheduler_address=cluster.scheduler_address):
                client.run(lambda: __import__("careblocks.transit.reach"))  # imports, not timed
                def cpu(client=client) -> float:  # CPU seconds of every worker process
                    return sum(client.run(_cpu_seconds).values())

                results[f"{n} worker{'s' if n > 1 else ''}"] = run_all(f"{n} worker(s)", cpu)
        finally:
            client.close()
            cluster.close()
    base = results["in process"]
    for mode, res in results.items():
        for name in stages:
            assert same(base[name][2], res[name][2]), f"{mode}: {name} differs from in process"
    print("\nresults on 1 and 2 workers equal to in process: yes")
    print(f"\n{'stage':<19} {'in process':>10} {'1 worker':>10} {'2 workers':>10} "
          f"{'1w / 2w':>8} {'in-proc / 2w':>12}")
    for name in stages:
        a, b, c = (results[m][name][1] for m in ("in process", "1 worker", "2 workers"))
        print(f"{name:<19} {a:9.2f}s {b:9.2f}s {c:9.2f}s {b / c:7.2f}x {a / c:11.2f}x")
    print(f"\nCPU seconds of the best call: {'in process':>10} {'1 worker':>10} {'2 workers':>10} "
          f"{'2w / 1w':>8}")
    for name in stages:
        a, b, c = (results[m][name][3] for m in ("in process", "1 worker", "2 workers"))
        print(f"{name:<29} {a:9.2f}s {b:9.2f}s {c:9.2f}s {c / b:7.2f}x")
    first = {m: sum(r[n][0] for n in stages) for m, r in results.items()}
    print("first calls (with sending the network and timetable): "
          + ", ".join(f"{m} {v:.2f} s" for m, v in first.items()))


if __name__ == "__main__":
    main()
