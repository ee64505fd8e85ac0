"""Benchmark: a warm ``careblocks run`` (stage caches hit) against a cold run and the same run
with the stage caches off (only the network cached), in one run of this script.

Each run is ``python -m careblocks run CONFIG --out TMP`` in a subprocess (imports, numba's
on-disk cache, writing the GeoPackage, map and report included), all sharing one fresh cache
folder:

1. cold: nothing cached (network, timetable, transit access, catchments all built);
2. stage cache off: ``CAREBLOCKS_STAGE_CACHE=0``, the network cache kept: every stage but
   the network recomputed, as a warm run did before the stage caches;
3. warm: everything cached;
4. warm after a weight-only change (``--set sites.weights.demand_covered=0.5``).

Runs 2-4 are repeated ``--repeat`` times, interleaved, and the best time of each is kept.
Each run's wall time and CPU time (user + system of the child) are printed with their ratios
to the stage-cache-off run: on a shared machine the wall time follows the load, the CPU time
much less.

Usage: ``.venv/bin/python benchmarks/warm_run.py [--config configs/porto_alegre.toml]``
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine  # noqa: E402


def _run(config: str, out: Path, env: dict[str, str], extra: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system of the child process) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "careblocks", "run", "-q", config, "--out", str(out), *extra],
                   check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/porto_alegre.toml")
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args(argv)
    print(machine())
    load0 = os.getloadavg()[0]
    print(f"load average at start: {load0:.1f}")
    tmp = Path(tempfile.mkdtemp(prefix="careblocks-warm-"))
    env = {**os.environ, "CAREBLOCKS_CACHE_DIR": str(tmp / "cache"),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    env.pop("CAREBLOCKS_STAGE_CACHE", None)
    try:
        cold = _run(a.config, tmp / "out", env, [])
        inf = (float("inf"), float("inf"))
        best = {"stage cache off": inf, "warm": inf, "warm, weight changed": inf}
        off_env = {**env, "CAREBLOCKS_STAGE_CACHE": "0"}
        for _ in range(a.repeat):
            for name in best:
                extra = ["--set", "sites.weights.demand_covered=0.5"] if "weight" in name else []
                got = _run(a.config, tmp / "out", off_env if "off" in name else env, extra)
                best[name] = (min(best[name][0], got[0]), min(best[name][1], got[1]))
        base = best["stage cache off"]
        print(f"\n`careblocks run {a.config}` (subprocess, outputs written), best of {a.repeat}:")
        print(f"   {'run':38s} {'wall':>8s} {'CPU':>8s}   wall / cache off   CPU / cache off")
        for name, (w, c) in [("cold (nothing cached)", cold), *best.items()]:
            print(f"   {name + ':':38s} {w:6.1f} s {c:6.1f} s   {w / base[0]:16.2f}   {c / base[1]:15.2f}")
        w, c = best["warm"]
        print(f"   warm / cold:                           wall {w / cold[0]:.2f}, CPU {c / cold[1]:.2f}")
        print(f"   warm speed-up over cache off:          wall {base[0] / w:.1f}x, CPU {base[1] / c:.1f}x")
        print(f"   warm run at most 5 s: wall {'yes' if w <= 5 else 'no'} ({w:.1f} s), "
              f"CPU {'yes' if c <= 5 else 'no'} ({c:.1f} s)")
        print(f"load average at end: {os.getloadavg()[0]:.1f} (start {load0:.1f}; wall times on a shared "
              "machine grow with the load, CPU times much less)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
