"""Benchmark: the cost of directed, profile-specific edge weights in the walking access step.

Graphs: the real Fontibón (Bogotá) walking network and copies of it joined into larger graphs
(see ``_common.tile_network``), with synthetic rolling hills (heights ``40 sin(x / 700 m) +
25 cos(y / 450 m)`` metres, grades up to ~10 %) and 1 % of the edges marked as steps.
Services: Fontibón's OSM facility counts per copy at random nodes (``_common.random_services``).

Measured in the same run, per size, with every node as an origin:

- flat: ``walk_access`` on undirected seconds at one speed (what the pipeline did before
  profiles: the baseline of benchmarks/walk_access.py);
- directed: the same with the adult's Tobler profile (directed inbound weights: grades,
  factors, the reverse permutation), i.e. the new default base walk on a hilly study;
- + 3 profiles: directed plus the default stroller, wheelchair and older-adult profiles
  (one nearest search per service and profile, no counts);
- weights: computing one profile's inbound seconds alone.

Usage: ``.venv/bin/python benchmarks/profiles.py [--copies 1,9]``
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fontibon_network, grid_shape, machine, random_services, tile_network, timed  # noqa: E402

from careblocks.access import walk_access  # noqa: E402
from careblocks.config import WalkConfig  # noqa: E402
from careblocks.network.cost import WalkCost  # noqa: E402
from careblocks.network.graph import STEPS  # noqa: E402


def hilly(net, seed=0):
    rng = np.random.default_rng(seed)
    z = 40 * np.sin(net.x / 700.0) + 25 * np.cos(net.y / 450.0)
    src, dst = net.sources, net.indices.astype(np.int64)
    und = np.flatnonzero(src < dst)
    steps = rng.choice(und, max(1, und.size // 100), replace=False)
    barrier = np.zeros(net.n_edges, np.uint8)
    barrier[steps] = STEPS
    key = src * net.n_nodes + dst
    rev = np.searchsorted(key, dst[steps] * net.n_nodes + src[steps])  # rows sorted by (src, dst)
    barrier[rev] = STEPS
    return dataclasses.replace(net, z=z, barrier=barrier, incline=np.full(net.n_edges, np.nan))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--copies", default="1,9")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    base_net = fontibon_network()
    base, profiles = WalkCost.from_config(WalkConfig()), WalkCost.profiles_from_config(WalkConfig())
    flat = WalkCost(base.speed_kmh)
    print(f"# {machine()}")
    print("| nodes | flat s | directed s | ratio | + 3 profiles s | ratio | one profile's weights s |")
    print("|---|---|---|---|---|---|---|")
    for copies in (int(c) for c in args.copies.split(",")):
        nx_, ny_ = grid_shape(copies)
        net = hilly(tile_network(base_net, nx_, ny_) if copies > 1 else base_net)
        services = random_services(base_net.n_nodes, copies)
        n = net.n_nodes
        origins, zeros = np.arange(n), np.zeros(n)

        def run(cost=flat, profs=None, net=net, services=services, origins=origins, zeros=zeros):
            return walk_access(net, origins, zeros, services, cost=cost, threshold_min=15.0,
                               walk_profiles=profs)

        run(base, profiles)  # compile and warm every kernel
        t_flat, a = timed(lambda: run(), args.repeat)
        t_dir, b = timed(lambda: run(base), args.repeat)
        t_all, c = timed(lambda: run(base, profiles), args.repeat)
        fresh = dataclasses.replace(net)  # no cached reverse permutation
        t_w, _ = timed(lambda fresh=fresh: profiles["wheelchair"].inbound_seconds(fresh), 1)
        assert not np.allclose(b["walk_min_health"], a["walk_min_health"], equal_nan=True)
        print(f"| {n:,} | {t_flat:.3f} | {t_dir:.3f} | {t_dir / t_flat:.2f}x | {t_all:.3f} | "
              f"{t_all / t_flat:.2f}x | {t_w:.3f} |")


if __name__ == "__main__":
    main()
