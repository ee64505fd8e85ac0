"""Peak memory of reading a GTFS zip bomb: a stop_times.txt that inflates to 1.5 GB.

Each case runs ``read_gtfs`` in a fresh Python process and reports that process's peak
resident memory (``ru_maxrss``), next to the same process reading a small valid feed (the
baseline, measured in the same run). Cases: the bomb as written (declared sizes honest,
refused from the zip directory), and the bomb whose headers declare 500 kB (the read is cut
at the declared size and fails its CRC check).

Usage: python benchmarks/archive_bomb.py [--gb 1.5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from test_archives import GOOD, HEAD, ROWS, _lie_about_size, bomb  # noqa: E402

_CHILD = """
import resource, sys, time
sys.path.insert(0, {src!r})
from careblocks.io.gtfs import read_gtfs
from careblocks.errors import GTFSError
t0 = time.perf_counter()
try:
    read_gtfs([{path!r}], "2024-03-13")
    outcome = "read"
except GTFSError as exc:
    outcome = "refused: " + str(exc).split(": ", 1)[1][:90]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{{rss:.0f}}\\t{{time.perf_counter() - t0:.2f}}\\t{{outcome}}")
"""


def peak(path: Path) -> tuple[float, float, str]:
    out = subprocess.run([sys.executable, "-c", _CHILD.format(src=str(ROOT / "src"), path=str(path))],
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    rss, secs, outcome = out.split("\t")
    return float(rss), float(secs), outcome


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=1.5)
    a = ap.parse_args()
    import zipfile

    with tempfile.TemporaryDirectory() as d:
        small = Path(d) / "small.zip"
        with zipfile.ZipFile(small, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, text in GOOD.items():
                zf.writestr(name, text)
            zf.writestr("stop_times.txt", HEAD + ROWS)
        t0 = time.perf_counter()
        honest = bomb(Path(d) / "bomb.zip", int(a.gb * 2**30))
        liar = Path(d) / "liar.zip"
        liar.write_bytes(honest.read_bytes())
        _lie_about_size(liar, "stop_times.txt", 500_000)
        print(f"built a {a.gb:g} GB bomb ({honest.stat().st_size / 2**20:.1f} MB zip) in "
              f"{time.perf_counter() - t0:.0f} s")
        base, _, outcome = peak(small)
        print(f"{'case':<34}{'peak RSS MB':>12}{'x baseline':>11}{'seconds':>9}  outcome")
        print(f"{'small valid feed (baseline)':<34}{base:>12.0f}{1.0:>11.2f}{'':>9}  {outcome}")
        for label, p in ((f"{a.gb:g} GB stop_times, honest sizes", honest),
                         (f"{a.gb:g} GB stop_times, declares 500 kB", liar)):
            rss, secs, outcome = peak(p)
            print(f"{label:<34}{rss:>12.0f}{rss / base:>11.2f}{secs:>9.2f}  {outcome}")


if __name__ == "__main__":
    main()
