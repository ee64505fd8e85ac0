"""Walk + transit catchments of candidate sites (careblocks.transit.reach.transit_coverage).

A random feed over a 16 x 16 street grid (100 m blocks) built in code: the coverage equals an
exhaustive computation for every (target, origin) (scipy Dijkstra for every walk leg, the
trip-by-trip search of ``transit.reference`` for the rides, percentiles by sorting), equals
``transit_access`` with each target as a one-facility service, is never slower than walking,
and does not depend on the limit, chunking or the run. Then Porto Alegre end to end through
the CLI with ``sites.use_transit``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pyogrio
import pyproj
import pytest
import scipy.sparse as sp
from click.testing import CliRunner
from scipy.sparse.csgraph import dijkstra

from careblocks.cli import cli
from careblocks.config import TransitConfig
from careblocks.io.gtfs import read_gtfs
from careblocks.network.cost import WalkCost
from careblocks.network.search import gather_targets, reach_from
from careblocks.sites.rationale import round_sensibly
from careblocks.transit import build_timetable, departure_times, transit_access
from careblocks.transit.reach import transit_coverage
from reference_transit import (
    INF,
    TripArrays,
    brute_force_arrivals,
    grid_network,
    random_feed,
    write_feed,
)

ROOT = Path(__file__).resolve().parents[1]
SPEED = 3.6  # 1 m/s
LIMIT = 12.0
CFG = TransitConfig(enabled=True, date="2024-03-13", window_start="07:00", window_end="07:30",
                    percentiles=(25, 50, 75), report_percentile=50, max_walk_min=6.0,
                    max_transfer_walk_min=3.0, max_transfers=2, max_trip_min=60.0)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    rng = np.random.default_rng(11)
    net = grid_network(n=16)
    nodes = rng.choice(net.n_nodes, size=40, replace=False)
    x = net.x[nodes] + rng.uniform(-30, 30, 40)
    y = net.y[nodes] + rng.uniform(-30, 30, 40)
    lon, lat = pyproj.Transformer.from_crs(net.crs, "EPSG:4326", always_xy=True).transform(x, y)
    feed = write_feed(tmp_path_factory.mktemp("gtfs") / "rand.zip",
                      random_feed(rng, list(zip(lon, lat, strict=True)), n_routes=20))
    tables, _ = read_gtfs([feed], CFG.date)
    tt, _ = build_timetable(tables, net, max_transfer_m=WalkCost(SPEED).metres_within(CFG.max_transfer_walk_min))
    on = rng.choice(net.n_nodes, size=70, replace=False)
    osnap = rng.uniform(0, 40, on.size)
    osnap[:3] = 0.0  # origins right on the network
    tn = rng.choice(net.n_nodes, size=30, replace=False)
    tsnap = rng.uniform(0, 40, tn.size)
    tsnap[:2] = 0.0
    return net, tables, tt, on, osnap, tn, tsnap


def _coverage(world, cfg=CFG, limit=LIMIT, **kw):
    net, _, tt, on, osnap, tn, tsnap = world
    return transit_coverage(net, tt, on, osnap, tn, tsnap, cfg, cost=WalkCost(SPEED), limit_min=limit, **kw)


def _dense(m: sp.csr_matrix) -> np.ndarray:
    out = np.full(m.shape, np.nan)
    c = m.tocoo()
    out[c.row, c.col] = c.data
    return out


def _walking(world, limit=LIMIT) -> sp.csr_matrix:
    """The walking catchments as the sites stage builds them (seconds)."""
    net, _, _, on, osnap, tn, tsnap = world
    v = SPEED / 3.6
    reach = reach_from(net, tn, tsnap / v, cost=WalkCost(SPEED), limit_s=limit * 60)
    return gather_targets(reach, on, osnap / v, limit * 60)


def brute_force(world, cfg=CFG, limit=LIMIT) -> np.ndarray:
    """Targets x origins minutes (NaN beyond the limit), exhaustively."""
    net, tables, tt, on, osnap, tn, tsnap = world
    v = SPEED / 3.6
    g = sp.csr_matrix((WalkCost(SPEED).edge_seconds(net), net.indices, net.indptr), shape=(net.n_nodes,) * 2)
    D = dijkstra(g, directed=False)
    walk_s, max_trip = cfg.max_walk_min * 60, int(cfg.max_trip_min * 60)
    egress = tt.stop_snap_m[:, None] / v + D[tt.stop_node][:, tn] + tsnap[None, :] / v
    egress = np.where(egress <= walk_s, np.ceil(egress), INF).astype(np.int64)
    tsec = tt.transfer_seconds(WalkCost(SPEED))
    tsec[tsec > cfg.max_transfer_walk_min * 60] = -1
    trips = TripArrays(tables, tt.stop_id)
    deps = departure_times(cfg)
    rank = max(int(np.ceil(cfg.report_percentile / 100 * deps.size)), 1) - 1
    out = np.full((tn.size, on.size), np.nan)
    for o in range(on.size):
        acc = osnap[o] / v + D[on[o], tt.stop_node] + tt.stop_snap_m / v
        st = np.flatnonzero(acc <= walk_s)
        _, serv = brute_force_arrivals(trips, tt.transfer_ptr, tt.transfer_to, tsec, st,
                                       np.ceil(acc[st]).astype(np.int64), deps,
                                       max_transfers=cfg.max_transfers, max_trip_s=max_trip,
                                       egress_s=egress)
        ride = np.sort(np.where(serv >= INF, np.inf, serv.astype(float)), axis=0)[rank]
        walk = tsnap / v + D[tn, on[o]] + osnap[o] / v
        walk = np.where(walk <= min(limit * 60, max_trip), walk, np.inf)
        best = np.minimum(ride, walk)
        out[:, o] = np.where(best <= limit * 60, best / 60, np.nan)
    return out


def test_equals_brute_force(world):
    got = _dense(_coverage(world))
    ref = brute_force(world)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    # a walk of exactly 0 s is stored as REACH_ZERO_S (1e-6 s) to stay in the pattern
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6 / 60 + 1e-12)
    # the feed matters: many pairs are within the limit only by transit
    walk = _dense(_walking(world))
    assert (~np.isnan(got) & np.isnan(walk)).sum() >= 100


def test_equals_transit_access_per_target(world):
    """Each target as a one-facility service: the same minutes as ``transit_access`` (whose
    walk-only option is ceil'd to whole seconds, hence the 1 s tolerance)."""
    net, _, tt, on, osnap, tn, tsnap = world
    services = {f"t{j}": (tn[j:j + 1], tsnap[j:j + 1]) for j in range(tn.size)}
    res = transit_access(net, tt, on, osnap, services, CFG, cost=WalkCost(SPEED))
    j50 = list(CFG.percentiles).index(CFG.report_percentile)
    ta = np.stack([res[f"t{j}"][:, j50] for j in range(tn.size)])  # targets x origins
    ta = np.where(ta <= LIMIT, ta, np.nan)
    got = _dense(_coverage(world))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ta))
    np.testing.assert_allclose(got, ta, rtol=0, atol=1 / 60 + 1e-9)


def test_a_targets_row_does_not_depend_on_the_others(world):
    """A target's row is the same searched alone, among a subset or with every target in
    another order: what lets the accessibility measures search every service's facilities in
    one pass and take each service's rows."""
    net, _, tt, on, osnap, tn, tsnap = world
    full = _dense(_coverage(world))
    assert (~np.isnan(full)).sum() > 100
    for pick in (np.arange(0, tn.size, 3), np.array([5]), np.arange(tn.size)[::-1]):
        part = transit_coverage(net, tt, on, osnap, tn[pick], tsnap[pick], CFG, cost=WalkCost(SPEED),
                                limit_min=LIMIT)
        np.testing.assert_array_equal(_dense(part), full[pick])


def test_capped_search_is_exact_below_the_cap(world):
    """``transit_access(cap_s=)``: below an origin's cap the same minutes as the uncapped
    search, NaN at or beyond it; no cap (inf) changes nothing."""
    net, _, tt, on, osnap, tn, tsnap = world
    services = {"a": (tn[:3], tsnap[:3]), "b": (tn[10:11], tsnap[10:11])}
    full = transit_access(net, tt, on, osnap, services, CFG, cost=WalkCost(SPEED))
    rng = np.random.default_rng(5)
    cap = rng.uniform(2 * 60, 14 * 60, on.size)
    cap[:10] = np.inf
    got = transit_access(net, tt, on, osnap, services, CFG, cost=WalkCost(SPEED), cap_s=cap)
    for name in services:
        want = np.where(full[name] * 60 < np.ceil(cap)[:, None] - 1e-6, full[name], np.nan)
        np.testing.assert_array_equal(got[name], want)
        assert np.isnan(got[name]).sum() > np.isnan(full[name]).sum()  # the cap binds
        assert (~np.isnan(got[name])).sum() > 20  # and leaves times below it
        np.testing.assert_array_equal(got[name][:10], full[name][:10])


def test_never_slower_than_walking(world):
    got = _coverage(world)
    walk = _walking(world)
    w = walk.tocoo()
    g = _dense(got)[w.row, w.col]
    assert not np.isnan(g).any()  # every origin within T on foot is within T by walk + transit
    assert (g <= w.data / 60 + 1e-12).all()
    assert got.nnz > walk.nnz


def test_limit_chunks_and_determinism(world):
    a = _coverage(world)
    b = _coverage(world, chunk_size=7)
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)
    # a longer limit keeps every entry with the same minutes (nearest-rank percentiles
    # within the limit do not depend on longer times), and adds some
    wide = _dense(_coverage(world, limit=16.0))
    narrow = _dense(a)
    keep = ~np.isnan(narrow)
    np.testing.assert_array_equal(wide[keep], narrow[keep])
    assert (~np.isnan(wide)).sum() > keep.sum()
    assert np.nanmax(wide) <= 16.0
    # a higher percentile is never faster
    hi = _dense(_coverage(world, cfg=replace(CFG, report_percentile=75)))
    both = ~np.isnan(hi)
    assert (both <= keep).all() and (narrow[both] <= hi[both]).all()


def test_porto_alegre_sites_use_transit(data, tmp_path):
    res = CliRunner().invoke(cli, [
        "run", str(ROOT / "configs/porto_alegre.toml"), "--out", str(tmp_path), "--quiet",
        "--set", "sites.use_transit=true", "--set", 'outputs.language="en"', "--set", 'transit.window_end="14:10"',
        "--set", "sites.k=2", "--set", "sensitivity.draws=0",
    ], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    gpkg = tmp_path / "careblocks.gpkg"
    cands = pyogrio.read_dataframe(gpkg, layer="candidates")
    walk, transit = cands["population_covered"], cands["transit_population_covered"]
    assert len(cands) > 500 and transit.notna().all()
    assert (transit >= walk - 1e-6).all()
    assert (transit > walk + 1).sum() > len(cands) // 10  # buses reach well beyond a walk
    sel = pyogrio.read_dataframe(gpkg, layer="selected_sites")
    assert len(sel) == 2
    for sentence, t in zip(sel["rationale"], sel["new_transit_population_covered"], strict=True):
        assert "within 15 minutes on foot" in sentence
        assert f"; {round_sensibly(t):,} within 15 minutes by walk + transit" in sentence
    assert sel["new_transit_population_covered"].sum() <= \
        pyogrio.read_dataframe(gpkg, layer="origins", read_geometry=False)["population"].sum() + 1e-6
