"""Walk + transit on real cities: Range-RAPTOR equals the exhaustive reference for sampled
origins (Porto Alegre's two feeds, São Paulo's frequency feed, Freetown's paratransit), and
the r5r properties hold on real networks. Networks are built from the shared OSM extracts /
road layer with the project's readers."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from careblocks.config import TransitConfig
from careblocks.errors import DataQualityWarning
from careblocks.io.gtfs import read_gtfs
from careblocks.io.osm import read_osm_network
from careblocks.io.roads import read_road_network
from careblocks.network.cost import WalkCost
from careblocks.network.graph import build_walk_network, local_crs
from careblocks.transit import build_timetable, load_timetable, transit_access
from careblocks.transit.adapter import _access_legs
from careblocks.transit.profile import connections, profile_access, stop_profiles
from careblocks.transit.raptor import INF32, earliest_arrivals, range_raptor
from reference_transit import TripArrays, brute_force_arrivals

SPEED = 4.8


def _network(nodes, edges):
    crs = local_crs(shapely.MultiPoint(np.column_stack([nodes.geometry.x, nodes.geometry.y])).envelope)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        net, _ = build_walk_network(nodes, edges, crs=crs)
    return net


def _hex_points(path, net, n, seed, column="population"):
    hexg = pd.read_csv(path)
    hexg = hexg[hexg[column] > 0].sample(n=n, random_state=seed)
    tf = pyproj.Transformer.from_crs("EPSG:4326", net.crs, always_xy=True)
    x, y = tf.transform(hexg["lon"].to_numpy(), hexg["lat"].to_numpy())
    return net.snap(np.asarray(x), np.asarray(y))


def _hull_4326(net):
    tf = pyproj.Transformer.from_crs(net.crs, "EPSG:4326", always_xy=True)
    lon, lat = tf.transform(net.x, net.y)
    return shapely.MultiPoint(np.column_stack([lon, lat])).convex_hull


def _check_exact(net, tables, tt, nodes, snap, deps, every, max_transfers=3, max_trip_s=5400,
                 egress=None):
    """RAPTOR over every minute vs the reference at every ``every``-th minute: earliest
    arrival at every stop, and with ``egress`` (stops x services seconds) the travel time to
    each service (which exercises the target pruning)."""
    tsec = tt.transfer_seconds(WalkCost(SPEED))
    ptr, acc_stops, acc_s = _access_legs(net, tt, nodes, snap, WalkCost(SPEED), 900.0)
    trips = TripArrays(tables, tt.stop_id)
    reached = 0
    if egress is not None:
        secs = range_raptor(tt, tsec, ptr, acc_stops, acc_s, deps, max_transfers=max_transfers,
                            max_trip_s=max_trip_s, egress_s=egress)
        prof = stop_profiles(tt, tsec, egress, max_transfers=max_transfers, t_lo=int(deps[0]),
                             t_hi=int(deps[-1]) + max_trip_s)
        np.testing.assert_array_equal(profile_access(prof, ptr, acc_stops, acc_s, deps,
                                                     max_trip_s=max_trip_s), secs)
    for o in range(nodes.size):
        a, b = ptr[o], ptr[o + 1]
        fast = earliest_arrivals(tt, tsec, acc_stops[a:b], acc_s[a:b], deps,
                                 max_transfers=max_transfers, max_trip_s=max_trip_s)[::every]
        ref, _ = brute_force_arrivals(trips, tt.transfer_ptr, tt.transfer_to, tsec, acc_stops[a:b],
                                      acc_s[a:b], deps[::every], max_transfers=max_transfers,
                                      max_trip_s=max_trip_s)
        np.testing.assert_array_equal(fast.astype(np.int64), np.minimum(ref, INF32))
        reached += int((ref < INF32).sum())
        if egress is not None:
            _, serv = brute_force_arrivals(trips, tt.transfer_ptr, tt.transfer_to, tsec,
                                           acc_stops[a:b], acc_s[a:b], deps[::every],
                                           max_transfers=max_transfers, max_trip_s=max_trip_s,
                                           egress_s=egress)
            np.testing.assert_array_equal(secs[o][::every].astype(np.int64), np.minimum(serv, INF32))
    return reached


def _egress(net, tt, hexcsv, columns):
    """Walk seconds (<= 15 min) from each stop to the nearest hex with a count > 0."""
    from careblocks.network.search import nearest_times

    hexg = pd.read_csv(hexcsv)
    tf = pyproj.Transformer.from_crs("EPSG:4326", net.crs, always_xy=True)
    x, y = tf.transform(hexg["lon"].to_numpy(), hexg["lat"].to_numpy())
    node, snap = net.snap(np.asarray(x), np.asarray(y))
    sp = SPEED / 3.6
    out = np.full((tt.n_stops, len(columns)), INF32, np.int32)
    for j, c in enumerate(columns):
        m = hexg[c].to_numpy() > 0
        e = nearest_times(net.indptr, net.indices, WalkCost(SPEED).edge_seconds(net), node[m], snap[m] / sp,
                          limit_s=900.0)[tt.stop_node] + tt.stop_snap_m / sp
        out[e <= 900, j] = np.ceil(e[e <= 900]).astype(np.int32)
    return out


@pytest.fixture(scope="module")
def poa(data):
    nodes, edges = read_osm_network(data / "porto_alegre" / "poa_osm.pbf")
    net = _network(nodes, edges)
    feeds = (data / "porto_alegre" / "poa_eptc.zip", data / "porto_alegre" / "poa_trensurb.zip")
    # the EPTC sample feed runs 11:20-17:50 only, so the window is in the afternoon
    cfg = TransitConfig(enabled=True, feeds=feeds, date="2019-05-13", window_start="14:00",
                        window_end="15:00", percentiles=(10, 50, 90), max_trip_min=90.0)
    with pytest.warns(DataQualityWarning, match="outside the study area"):
        tt, stats = load_timetable(cfg, net, area_4326=_hull_4326(net), cost=WalkCost(SPEED))
    tables, _ = read_gtfs(feeds, "2019-05-13", area_4326=_hull_4326(net),
                          window_s=(14 * 3600, 15 * 3600 + 5400))
    return net, cfg, tt, stats, tables


def test_poa_sampled_origins_exact(poa, data):
    net, cfg, tt, stats, tables = poa
    assert {f["feed"] for f in stats["feeds"]} == {"poa_eptc", "poa_trensurb"}
    assert stats["stops_dropped_outside_area"] > 0 and stats["stops_kept"] > 1000
    nodes, snap = _hex_points(data / "porto_alegre" / "poa_hexgrid.csv", net, 4, seed=1)
    deps = np.arange(14 * 3600, 15 * 3600, 60, dtype=np.int32)
    eg = _egress(net, tt, data / "porto_alegre" / "poa_hexgrid.csv", ["healthcare", "schools"])
    assert _check_exact(net, tables, tt, nodes, snap, deps, every=12, egress=eg) > 1000


def test_poa_stop_profiles_equal_range_raptor(poa, data):
    """On Porto Alegre's two feeds (minute-precision times with zero-duration hops), 400
    origins, every departure minute, three services, 0 to 3 transfers: the stop profiles'
    lookup equals the Range-RAPTOR per origin, element for element."""
    net, cfg, tt, _, _ = poa
    deps = np.arange(14 * 3600, 15 * 3600, 60, dtype=np.int32)
    assert connections(tt, int(deps[0]), int(deps[-1]) + 5400)[5].sum() > 10  # zero-duration hops
    tsec = tt.transfer_seconds(WalkCost(SPEED), cfg.max_transfer_walk_min)
    eg = _egress(net, tt, data / "porto_alegre" / "poa_hexgrid.csv", ["healthcare", "schools", "population"])
    nodes, snap = _hex_points(data / "porto_alegre" / "poa_hexgrid.csv", net, 400, seed=5)
    ptr, acc_stops, acc_s = _access_legs(net, tt, nodes, snap, WalkCost(SPEED), 900.0)
    for max_transfers in (0, 3):
        secs = range_raptor(tt, tsec, ptr, acc_stops, acc_s, deps, egress_s=eg,
                            max_transfers=max_transfers, max_trip_s=5400)
        prof = stop_profiles(tt, tsec, eg, max_transfers=max_transfers, t_lo=int(deps[0]),
                             t_hi=int(deps[-1]) + 5400)
        fast = profile_access(prof, ptr, acc_stops, acc_s, deps, max_trip_s=5400)
        np.testing.assert_array_equal(fast, secs)
        assert 0.5 < (secs < INF32).mean() < 1.0


def test_poa_properties_and_transit_helps(poa, data):
    net, cfg, tt, stats, _ = poa
    hexg = pd.read_csv(data / "porto_alegre" / "poa_hexgrid.csv")
    tf = pyproj.Transformer.from_crs("EPSG:4326", net.crs, always_xy=True)
    x, y = tf.transform(hexg["lon"].to_numpy(), hexg["lat"].to_numpy())
    node, snap = net.snap(np.asarray(x), np.asarray(y))
    h = hexg["healthcare"].to_numpy() > 0
    services = {"health": (node[h], snap[h])}
    o = np.flatnonzero(hexg["population"].to_numpy() > 0)[::6]
    both = transit_access(net, tt, node[o], snap[o], services, cfg, cost=WalkCost(SPEED))["health"]
    only = transit_access(net, tt, node[o], snap[o], services, cfg, cost=WalkCost(SPEED),
                          include_walk=False)["health"]
    from careblocks.network.search import nearest_times

    walk = (nearest_times(net.indptr, net.indices, WalkCost(SPEED).edge_seconds(net), node[h],
                          snap[h] / (SPEED / 3.6))[node[o]] + snap[o] / (SPEED / 3.6))
    walk_min = np.where(walk <= 5400, np.ceil(walk) / 60.0, np.nan)
    ok = np.isfinite(walk_min)
    assert (both[ok, 1] <= walk_min[ok] + 1e-9).all()
    assert (np.nan_to_num(both[:, 0], nan=1e9) <= np.nan_to_num(both[:, 1], nan=1e9)).all()
    assert (np.nan_to_num(both[:, 1], nan=1e9) <= np.nan_to_num(both[:, 2], nan=1e9)).all()
    # transit shortens some trips of over 20 minutes on foot
    far = ok & (walk_min > 20)
    assert far.sum() > 5
    assert (only[far, 1] < walk_min[far]).sum() > 0.2 * far.sum()


@pytest.fixture(scope="module")
def spo(data):
    nodes, edges = read_osm_network(data / "sao_paulo" / "spo_osm.pbf")
    net = _network(nodes, edges)
    area = _hull_4326(net)
    feeds = (data / "sao_paulo" / "spo.zip",)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        tables, stats = read_gtfs(feeds, "2019-05-15", area_4326=area, window_s=(7 * 3600, 8 * 3600 + 5400))
        tt, tstats = build_timetable(tables, net, max_transfer_m=WalkCost(SPEED).metres_within(5.0))
    return net, tables, tt, stats


def test_sao_paulo_frequencies_exact(spo, data):
    net, tables, tt, stats = spo
    assert stats["feeds"][0]["frequency_trips"] > 0 and tt.n_trips > 500
    nodes, snap = _hex_points(data / "sao_paulo" / "spo_hexgrid.csv", net, 4, seed=2)
    deps = np.arange(7 * 3600, 8 * 3600, 60, dtype=np.int32)
    eg = _egress(net, tt, data / "sao_paulo" / "spo_hexgrid.csv", ["healthcare"])
    assert _check_exact(net, tables, tt, nodes, snap, deps, every=10, egress=eg) > 500


def test_freetown_cbd_paratransit(data):
    """Freetown's street network is only the CBD road layer: stops outside the CBD bounds are
    dropped (with a warning) and journeys are confined to the CBD."""
    gpkg = data / "freetown" / "freetown_cbd_osm_layers.gpkg"
    nodes, edges = read_road_network(gpkg, "cbd_roads")
    net = _network(nodes, edges)
    bounds = gpd.read_file(gpkg, layer="cbd_bounds").to_crs(4326).geometry.union_all()
    cfg = TransitConfig(enabled=True, feeds=(data / "freetown" / "gtfs_freetown_wimt_2018.zip",),
                        date="2019-03-13", window_start="07:00", window_end="08:00")
    with pytest.warns(DataQualityWarning, match="outside the study area"):
        tt, stats = load_timetable(cfg, net, area_4326=bounds, cost=WalkCost(SPEED))
    assert stats["stops_dropped_outside_area"] > 10 * stats["stops_kept"]  # most of the city
    assert stats["stops_far_from_network"] == 0  # kept stops sit on the CBD streets
    assert 1501 in stats["feeds"][0]["route_types"]
    tables, _ = read_gtfs(cfg.feeds, cfg.date, area_4326=bounds, window_s=(7 * 3600, 9 * 3600))
    nodes = np.arange(0, net.n_nodes, 20)
    deps = np.arange(7 * 3600, 8 * 3600, 60, dtype=np.int32)
    _check_exact(net, tables, tt, nodes, np.zeros(nodes.size), deps, every=5, max_trip_s=7200)
    # every departure minute of every origin yields a finite or NaN percentile, never a sentinel
    h = {"stop0": (np.array([tt.stop_node[0]]), np.array([0.0]))}
    res = transit_access(net, tt, nodes, np.zeros(nodes.size), h, cfg, cost=WalkCost(SPEED))["stop0"]
    assert np.isfinite(res).any() and (np.nan_to_num(res, nan=0) < 200).all()
