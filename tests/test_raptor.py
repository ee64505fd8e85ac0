"""Range-RAPTOR against an exhaustive reference on random feeds built in code, and the
properties r5r checks (walk+transit never slower than walking, ordered percentiles, slower
walking never faster, deterministic). Feeds: random routes over a 12 x 12 street grid
(100 m blocks) written as GTFS text into a temporary zip."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest

from careblocks.config import TransitConfig
from careblocks.io.gtfs import read_gtfs
from careblocks.network.cost import WalkCost
from careblocks.transit import build_timetable, transit_access
from careblocks.transit.adapter import _access_legs
from careblocks.transit.raptor import INF32, earliest_arrivals, range_raptor
from reference_transit import (
    TripArrays,
    brute_force_arrivals,
    grid_network,
    python_range_raptor,
    random_feed,
    write_feed,
)

SPEED = 4.8


def _stop_coords(net, rng, n):
    nodes = rng.choice(net.n_nodes, size=n, replace=False)
    x = net.x[nodes] + rng.uniform(-30, 30, n)
    y = net.y[nodes] + rng.uniform(-30, 30, n)
    tf = pyproj.Transformer.from_crs(net.crs, "EPSG:4326", always_xy=True)
    lon, lat = tf.transform(x, y)
    return list(zip(lon, lat, strict=True))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    rng = np.random.default_rng(7)
    net = grid_network()
    feed = write_feed(tmp_path_factory.mktemp("gtfs") / "rand.zip",
                      random_feed(rng, _stop_coords(net, rng, 40), n_routes=9))
    tables, _ = read_gtfs([feed], "2024-03-13")
    tt, stats = build_timetable(tables, net, max_transfer_m=WalkCost(SPEED).metres_within(4.0))
    return net, tables, tt, stats, feed


@pytest.mark.parametrize("max_transfers", [0, 1, 4])
def test_raptor_equals_brute_force(world, max_transfers):
    net, tables, tt, stats, _ = world
    assert stats["patterns_split_for_overtaking"] > 0  # the feed has overtaking express trips
    tsec = tt.transfer_seconds(WalkCost(SPEED))
    rng = np.random.default_rng(max_transfers)
    origins = rng.choice(net.n_nodes, size=6, replace=False)
    ptr, acc_stops, acc_s = _access_legs(net, tt, origins, np.full(6, 15.0), WalkCost(SPEED), 600.0)
    deps = np.arange(7 * 3600, 8 * 3600, 60, dtype=np.int32)
    trips = TripArrays(tables, tt.stop_id)
    max_trip = 3600
    n_reached = 0
    for o in range(6):
        a, b = ptr[o], ptr[o + 1]
        fast = earliest_arrivals(tt, tsec, acc_stops[a:b], acc_s[a:b], deps,
                                 max_transfers=max_transfers, max_trip_s=max_trip)
        ref, _ = brute_force_arrivals(trips, tt.transfer_ptr, tt.transfer_to, tsec,
                                      acc_stops[a:b], acc_s[a:b], deps,
                                      max_transfers=max_transfers, max_trip_s=max_trip)
        np.testing.assert_array_equal(np.where(fast == INF32, -1, fast), np.where(ref >= INF32, -1, ref))
        n_reached += int((ref < INF32).sum())
    assert n_reached > 1000


def test_more_transfers_never_later(world):
    net, tables, tt, _, _ = world
    tsec = tt.transfer_seconds(WalkCost(SPEED))
    ptr, st, s = _access_legs(net, tt, np.array([70]), np.array([0.0]), WalkCost(SPEED), 600.0)
    deps = np.arange(7 * 3600, 8 * 3600, 60, dtype=np.int32)
    prev = None
    for k in range(4):
        arr = earliest_arrivals(tt, tsec, st, s, deps, max_transfers=k, max_trip_s=3600).astype(np.int64)
        if prev is not None:
            assert (arr <= prev).all()
        prev = arr


def test_service_times_match_reference_and_python(world):
    net, tables, tt, _, _ = world
    tsec = tt.transfer_seconds(WalkCost(SPEED))
    rng = np.random.default_rng(3)
    egress = np.full((tt.n_stops, 2), INF32, np.int32)
    for v in range(2):
        pick = rng.choice(tt.n_stops, size=3, replace=False)
        egress[pick, v] = rng.integers(0, 400, 3)
    origins = np.array([5, 60, 131])
    ptr, acc_stops, acc_s = _access_legs(net, tt, origins, np.zeros(3), WalkCost(SPEED), 600.0)
    deps = np.arange(7 * 3600, 7 * 3600 + 40 * 60, 60, dtype=np.int32)
    secs = range_raptor(tt, tsec, ptr, acc_stops, acc_s, deps, max_transfers=2, max_trip_s=2700,
                        egress_s=egress)
    trips = TripArrays(tables, tt.stop_id)
    for o in range(3):
        a, b = ptr[o], ptr[o + 1]
        _, ref = brute_force_arrivals(trips, tt.transfer_ptr, tt.transfer_to, tsec, acc_stops[a:b],
                                      acc_s[a:b], deps, max_transfers=2, max_trip_s=2700,
                                      egress_s=egress)
        np.testing.assert_array_equal(secs[o].astype(np.int64), np.minimum(ref, INF32))
        py = python_range_raptor(tt, tsec, acc_stops[a:b], acc_s[a:b], deps, max_transfers=2,
                                 max_trip_s=2700, egress_s=egress)
        np.testing.assert_array_equal(secs[o], np.array(py))
    assert (secs < INF32).any()


def _services(net):
    return {"clinic": (np.array([3, 140]), np.array([10.0, 0.0])),
            "school": (np.array([77]), np.array([25.0]))}


def _cfg(feed, **kw):
    base = dict(enabled=True, feeds=(feed,), date="2024-03-13", window_start="07:00",
                window_end="08:00", percentiles=(10, 50, 90), max_walk_min=10.0,
                max_transfer_walk_min=4.0, max_trip_min=60.0)
    base.update(kw)
    return TransitConfig(**base)


def test_properties(world):
    from careblocks.network.search import nearest_times

    net, tables, tt, _, feed = world
    cfg = _cfg(feed)
    origins = np.arange(0, net.n_nodes, 3)
    snap = np.full(origins.size, 12.0)
    res = transit_access(net, tt, origins, snap, _services(net), cfg, cost=WalkCost(SPEED))
    res2 = transit_access(net, tt, origins, snap, _services(net), cfg, cost=WalkCost(SPEED))
    only = transit_access(net, tt, origins, snap, _services(net), cfg, cost=WalkCost(SPEED), include_walk=False)
    w = WalkCost(SPEED).edge_seconds(net)
    for name, (fn, fs) in _services(net).items():
        r = res[name]
        assert r.shape == (origins.size, 3)
        np.testing.assert_array_equal(r, res2[name])  # deterministic
        walk = (nearest_times(net.indptr, net.indices, w, fn, fs / (SPEED / 3.6))[origins]
                + snap / (SPEED / 3.6)) / 60.0
        walk = np.where(walk <= 60.0, walk, np.nan)
        ok = ~np.isnan(walk)
        assert (r[ok, 1] <= np.ceil(walk[ok] * 60) / 60 + 1e-9).all()  # never slower than walking
        assert (np.nan_to_num(r[:, 0], nan=1e9) <= np.nan_to_num(r[:, 1], nan=1e9)).all()
        assert (np.nan_to_num(r[:, 1], nan=1e9) <= np.nan_to_num(r[:, 2], nan=1e9)).all()
        # transit alone helps somewhere, and where it is reported it is never below the combined
        t_only = only[name][:, 1]
        assert np.isfinite(t_only).any()
        both = np.isfinite(t_only)
        assert (r[both, 1] <= t_only[both] + 1e-9).all()


def test_slower_walking_never_faster(world):
    net, tables, _, _, feed = world
    cfg = _cfg(feed)
    origins = np.arange(1, net.n_nodes, 4)
    snap = np.full(origins.size, 5.0)
    prev = None
    for speed in (5.5, 4.8, 3.6, 3.0):
        tt, _ = build_timetable(tables, net, max_transfer_m=WalkCost(speed).metres_within(4.0))
        res = transit_access(net, tt, origins, snap, _services(net), cfg, cost=WalkCost(speed))
        cur = np.concatenate([np.nan_to_num(v, nan=1e9) for v in res.values()])
        if prev is not None:
            assert (cur >= prev - 1e-9).all()
        prev = cur


def test_one_timetable_serves_every_speed(world):
    """Transfers are stored in metres; each walking cost turns them into its own seconds and
    drops those over the transfer limit at its own pace (the timetable bakes in no speed)."""
    _, _, tt, _, _ = world
    fast, slow = WalkCost(SPEED), WalkCost(SPEED / 2)
    f = tt.transfer_seconds(fast, 4.0)
    s = tt.transfer_seconds(slow, 4.0)
    m = tt.transfer_m.astype(float)
    assert tt.transfer_m.size > 0
    assert (f >= 0).all()  # built for the fast cost: every transfer fits its limit
    np.testing.assert_array_equal(s >= 0, m / (SPEED / 2 / 3.6) <= 240.0 + 1e-9)
    ok = s >= 0
    np.testing.assert_array_equal(s[ok], np.ceil(m[ok] / (SPEED / 2 / 3.6)).astype(np.int32))


def test_many_origins_per_workspace_equal_one_at_a_time(world):
    """Origins share a workspace per block and reset only what they touched: run 40 origins
    (some reaching nothing, reached sets differing) on one thread, i.e. about ten origins per
    block, and each origin alone on a fresh workspace; stale labels or flags would show."""
    import numba

    net, tables, tt, _, _ = world
    tsec = tt.transfer_seconds(WalkCost(SPEED))
    rng = np.random.default_rng(5)
    egress = np.full((tt.n_stops, 2), INF32, np.int32)
    for v in range(2):
        pick = rng.choice(tt.n_stops, size=4, replace=False)
        egress[pick, v] = rng.integers(0, 300, 4)
    origins = rng.choice(net.n_nodes, size=40, replace=False)
    limits = rng.choice([0.0, 120.0, 600.0], size=40)  # access walks of 0, 2 and 10 minutes
    ptr, acc_stops, acc_s = _access_legs(net, tt, origins, np.zeros(40), WalkCost(SPEED), 600.0)
    row = np.repeat(np.arange(40), np.diff(ptr))
    keep = acc_s <= limits[row]
    ptr = np.r_[0, np.cumsum(np.bincount(row[keep], minlength=40))]
    acc_stops, acc_s = acc_stops[keep], acc_s[keep]
    assert (np.diff(ptr) == 0).sum() >= 5 and (np.diff(ptr) > 3).sum() >= 10
    deps = np.arange(7 * 3600, 7 * 3600 + 30 * 60, 60, dtype=np.int32)
    kw = dict(max_transfers=3, max_trip_s=3000, egress_s=egress)
    n_threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        together = range_raptor(tt, tsec, ptr, acc_stops, acc_s, deps, **kw)
    finally:
        numba.set_num_threads(n_threads)
    reached = set()
    for o in range(40):
        a, b = ptr[o], ptr[o + 1]
        alone = range_raptor(tt, tsec, np.array([0, b - a]), acc_stops[a:b], acc_s[a:b], deps, **kw)
        np.testing.assert_array_equal(together[o], alone[0])
        py = python_range_raptor(tt, tsec, acc_stops[a:b], acc_s[a:b], deps, **kw)
        np.testing.assert_array_equal(together[o], np.array(py))
        reached.add(alone[0].tobytes())
    assert len(reached) >= 10  # the origins' results differ


def test_walking_bound_is_exact(world):
    """Walking all the way bounds the search (target pruning stops at what walking already
    achieves): the result is exactly the faster of transit alone and walking."""
    net, tables, tt, _, _ = world
    tsec = tt.transfer_seconds(WalkCost(SPEED))
    rng = np.random.default_rng(9)
    egress = np.full((tt.n_stops, 3), INF32, np.int32)
    for v in range(3):
        pick = rng.choice(tt.n_stops, size=5, replace=False)
        egress[pick, v] = rng.integers(0, 300, 5)
    origins = rng.choice(net.n_nodes, size=30, replace=False)
    ptr, acc_stops, acc_s = _access_legs(net, tt, origins, np.zeros(30), WalkCost(SPEED), 600.0)
    deps = np.arange(7 * 3600, 7 * 3600 + 30 * 60, 60, dtype=np.int32)
    kw = dict(max_transfers=2, max_trip_s=2400, egress_s=egress)
    alone = range_raptor(tt, tsec, ptr, acc_stops, acc_s, deps, **kw)
    # walking times from much faster than transit to never, some equal to a transit time
    walk = rng.choice([60, 300, 900, 1500, 2400, INF32], size=(30, 3)).astype(np.int64)
    some = np.flatnonzero((alone < INF32).any(axis=1))[:5]
    walk[some, 0] = alone[some, 7, 0]
    both = range_raptor(tt, tsec, ptr, acc_stops, acc_s, deps, walk_s=walk, **kw)
    np.testing.assert_array_equal(both, np.minimum(alone, walk[:, None, :]))
    assert ((alone < walk[:, None, :]) & (alone < INF32)).sum() > 100  # transit wins often
    assert (walk[:, None, :] < alone).sum() > 100  # and walking too


def _profile_case(tt, tsec, net, rng, n_o, n_serv, max_transfers, max_trip_s, deps):
    """Access legs of ``n_o`` random origins (some walking 0, 2 or 10 minutes), random egress
    to ``n_serv`` services and walking times; both kernels' outputs."""
    from careblocks.transit.profile import profile_access, stop_profiles

    egress = np.full((tt.n_stops, n_serv), INF32, np.int32)
    for v in range(n_serv):
        pick = rng.choice(tt.n_stops, size=2 + v, replace=False)
        egress[pick, v] = rng.integers(0, 400, 2 + v)
    origins = rng.choice(net.n_nodes, size=n_o, replace=False)
    ptr, acc_stops, acc_s = _access_legs(net, tt, origins, np.zeros(n_o), WalkCost(SPEED), 600.0)
    row = np.repeat(np.arange(n_o), np.diff(ptr))
    keep = acc_s <= rng.choice([0.0, 120.0, 600.0], size=n_o)[row]
    ptr = np.r_[0, np.cumsum(np.bincount(row[keep], minlength=n_o))]
    acc_stops, acc_s = acc_stops[keep], acc_s[keep]
    walk = rng.choice([60, 600, 1500, INF32], size=(n_o, n_serv)).astype(np.int64)
    kw = dict(max_transfers=max_transfers, max_trip_s=max_trip_s, egress_s=egress)
    raptor = range_raptor(tt, tsec, ptr, acc_stops, acc_s, deps, **kw)
    raptor_w = range_raptor(tt, tsec, ptr, acc_stops, acc_s, deps, walk_s=walk, **kw)
    prof = stop_profiles(tt, tsec, egress, max_transfers=max_transfers, t_lo=int(deps[0]),
                         t_hi=int(deps[-1]) + max_trip_s)
    fast = profile_access(prof, ptr, acc_stops, acc_s, deps, max_trip_s=max_trip_s)
    fast_w = profile_access(prof, ptr, acc_stops, acc_s, deps, max_trip_s=max_trip_s, walk_s=walk)
    return (ptr, acc_stops, acc_s, egress), raptor, fast, raptor_w, fast_w


@pytest.mark.parametrize("minutes", [False, True])
def test_stop_profiles_equal_range_raptor_and_brute_force(tmp_path, minutes):
    """The stop profiles' lookup gives, element for element, the Range-RAPTOR's travel time
    of every origin, minute and service, and the exhaustive search's for some origins; on
    feeds with overtaking trips and a loop, and (``minutes``) on a minute-precision feed
    whose zero-duration hops chain across trips at the same second."""
    rng = np.random.default_rng(11 if minutes else 12)
    net = grid_network()
    feed = write_feed(tmp_path / "rand.zip", random_feed(rng, _stop_coords(net, rng, 40), n_routes=10,
                                                          minutes=minutes))
    tables, _ = read_gtfs([feed], "2024-03-13")
    tt, _ = build_timetable(tables, net, max_transfer_m=WalkCost(SPEED).metres_within(4.0))
    tsec = tt.transfer_seconds(WalkCost(SPEED))
    if minutes:
        st = tables.stop_times
        same = (st["trip_id"].to_numpy()[1:] == st["trip_id"].to_numpy()[:-1]) & \
            (st["arrival_s"].to_numpy()[1:] == st["departure_s"].to_numpy()[:-1])
        assert same.sum() > 50  # zero-duration hops
    deps = np.arange(7 * 3600, 7 * 3600 + 45 * 60, 60, dtype=np.int32)
    trips = TripArrays(tables, tt.stop_id)
    for max_transfers, max_trip_s in ((0, 1500), (1, 1800), (3, 2700)):
        (ptr, acc_stops, acc_s, egress), raptor, fast, raptor_w, fast_w = _profile_case(
            tt, tsec, net, rng, 40, 3, max_transfers, max_trip_s, deps)
        np.testing.assert_array_equal(fast, raptor)
        np.testing.assert_array_equal(fast_w, raptor_w)
        reached = raptor < INF32
        assert 0.2 < reached.mean() < 0.98  # reached and unreached minutes both occur
        assert len({raptor[o].tobytes() for o in range(40)}) >= 15  # origins differ
        for o in range(0, 40, 8):
            a, b = ptr[o], ptr[o + 1]
            _, ref = brute_force_arrivals(trips, tt.transfer_ptr, tt.transfer_to, tsec, acc_stops[a:b],
                                          acc_s[a:b], deps, max_transfers=max_transfers,
                                          max_trip_s=max_trip_s, egress_s=egress)
            np.testing.assert_array_equal(fast[o].astype(np.int64), np.minimum(ref, INF32))


def test_stop_profiles_are_pareto_lists(world):
    """Each stop's list leaves later first and arrives strictly earlier down the list (no
    pair dominated by another), and more vehicles never arrive later."""
    from careblocks.transit.profile import stop_profiles

    net, tables, tt, _, _ = world
    tsec = tt.transfer_seconds(WalkCost(SPEED))
    egress = np.full((tt.n_stops, 1), INF32, np.int32)
    egress[[3, 17, 30], 0] = [0, 120, 300]
    kw = dict(t_lo=7 * 3600, t_hi=9 * 3600)
    few = stop_profiles(tt, tsec, egress, max_transfers=0, **kw)
    many = stop_profiles(tt, tsec, egress, max_transfers=3, **kw)
    assert many.dep.size > few.dep.size > 50
    for p in (few, many):
        for s in range(tt.n_stops):
            d, a = p.dep[p.ptr[0, s]:p.ptr[0, s + 1]], p.arr[p.ptr[0, s]:p.ptr[0, s + 1]]
            assert (np.diff(d) < 0).all() and (np.diff(a) < 0).all() and (a >= d).all()
    for s in range(tt.n_stops):  # at any time, the best with 4 vehicles <= with 1
        d1, a1 = few.dep[few.ptr[0, s]:few.ptr[0, s + 1]], few.arr[few.ptr[0, s]:few.ptr[0, s + 1]]
        d4, a4 = many.dep[many.ptr[0, s]:many.ptr[0, s + 1]], many.arr[many.ptr[0, s]:many.ptr[0, s + 1]]
        for tau, best1 in zip(d1, a1, strict=True):
            assert a4[d4 >= tau].min() <= best1


def test_access_legs_in_blocks_equal_all_at_once(world, monkeypatch):
    """Origins are searched a block at a time (memory follows the stops reached): blocks of
    7 origins give the same legs as one search over all of them."""
    from careblocks.transit import adapter

    net, tables, tt, _, _ = world
    origins = np.random.default_rng(4).choice(net.n_nodes, size=60, replace=False)
    snap = np.linspace(0.0, 40.0, 60)
    whole = adapter._access_legs(net, tt, origins, snap, WalkCost(SPEED), 600.0)
    monkeypatch.setattr(adapter, "ACCESS_BLOCK", 7)
    blocks = adapter._access_legs(net, tt, origins, snap, WalkCost(SPEED), 600.0)
    for a, b in zip(whole, blocks, strict=True):
        np.testing.assert_array_equal(a, b)
    assert whole[1].size > 200 and (np.diff(whole[0]) == 0).sum() < 60
