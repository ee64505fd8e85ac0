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

Usage: ``.venv/bin/python benchmarks/warm_run.py [--config configs/porto_alegre.toml]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine  # noqa: E402


def _run(config: str, out: Path, env: dict[str, str], extra: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "careblocks", "run", "-q", config, "--out", str(out), *extra],
                   check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/porto_alegre.toml")
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args(argv)
    print(machine())
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    tmp = Path(tempfile.mkdtemp(prefix="careblocks-warm-"))
    env = {**os.environ, "CAREBLOCKS_CACHE_DIR": str(tmp / "cache"),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    try:
        cold = _run(a.config, tmp / "out", env, [])
        best = {"stage cache off": float("inf"), "warm": float("inf"), "warm, weight changed": float("inf")}
        off_env = {**env, "CAREBLOCKS_STAGE_CACHE": "0"}
        for _ in range(a.repeat):
            for name in best:
                extra = ["--set", "sites.weights.demand_covered=0.5"] if "weight" in name else []
                best[name] = min(best[name], _run(a.config, tmp / "out", off_env if "off" in name else env,
                                                  extra))
        print(f"\n`careblocks run {a.config}` (subprocess, outputs written), best of {a.repeat}:")
        print(f"   cold (nothing cached):                 {cold:6.1f} s")
        for name, t in best.items():
            print(f"   {name + ':':38s} {t:6.1f} s")
        base = best["stage cache off"]
        print(f"   warm / cold:                           {best['warm'] / cold:.2f}")
        print(f"   warm / stage cache off:                {best['warm'] / base:.2f}  "
              f"(speed-up {base / best['warm']:.1f}x)")
        print(f"   weight change / stage cache off:       {best['warm, weight changed'] / base:.2f}")
        print(f"   warm run at most 5 s: {'yes' if best['warm'] <= 5 else 'no'} ({best['warm']:.1f} s)")
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
