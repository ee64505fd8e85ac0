"""Walking access kernels against an exact networkx Dijkstra on the same graph.

Graphs: a random graph built here (half-second weights, so every path sum is exact in
floating point; zero-length edges; a separate component) and the real Fontibón (Bogotá)
walking network built from ``bogota/osm/fontibon_overpass_2023-05-29.osm.pbf`` (OSM,
ODbL) the way the pipeline builds it.
"""

from __future__ import annotations

import warnings

import networkx as nx
import numpy as np
import pytest

from careblocks.access import walk_access
from careblocks.columns import threshold_tag
from careblocks.errors import InputDataError
from careblocks.network import search
from careblocks.network.cost import WalkCost
from careblocks.network.search import (
    REACH_ZERO_S,
    counts_within,
    counts_within_at,
    nearest_times,
    nearest_with_source,
    reach_sparse,
)

SUPER = -1  # the virtual super-source of the networkx reference


# --------------------------------------------------------------------------- helpers
def csr_from_edges(n, a, b, w):
    """Both directions of every edge; parallel edges kept (the kernels take the shortest)."""
    src = np.concatenate([a, b])
    dst = np.concatenate([b, a])
    ww = np.concatenate([w, w]).astype(np.float64)
    order = np.lexsort((dst, src))
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    return indptr, dst[order].astype(np.int32), ww[order]


def nx_graph(indptr, indices, w):
    """A networkx DiGraph with the shortest of parallel CSR entries."""
    g = nx.DiGraph()
    g.add_nodes_from(range(indptr.size - 1))
    rows = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    for u, v, x in zip(rows.tolist(), indices.tolist(), w.tolist(), strict=True):
        if u == v:
            continue
        if not g.has_edge(u, v) or g[u][v]["weight"] > x:
            g.add_edge(u, v, weight=x)
    return g


def nx_nearest(g, sources, offsets, n):
    """Multi-source Dijkstra through a super-source with edges of the offset weight."""
    h = g.copy()
    for s, o in zip(sources.tolist(), offsets.tolist(), strict=True):
        if not h.has_edge(SUPER, s) or h[SUPER][s]["weight"] > o:
            h.add_edge(SUPER, s, weight=o)
    d = nx.single_source_dijkstra_path_length(h, SUPER, weight="weight") if len(sources) else {}
    out = np.full(n, np.inf)
    for v, x in d.items():
        if v != SUPER:
            out[v] = x
    return out


def nx_rows(g, sources, offsets, limit, n):
    """Per source, {node: offset + network seconds} for every node within the limit."""
    rows = []
    for s, o in zip(sources.tolist(), offsets.tolist(), strict=True):
        d = nx.single_source_dijkstra_path_length(g, s, cutoff=limit - o + 1.0, weight="weight")
        rows.append({v: o + x for v, x in d.items() if o + x <= limit})
    return rows


def random_graph(seed=0, n=240):
    """Random sparse graph: a big piece 0..n-21 with parallel and zero-length edges, and a
    separate piece n-20..n-1 (a ring); weights in half seconds (exact sums)."""
    rng = np.random.default_rng(seed)
    m = n * 2
    big = n - 20
    a = rng.integers(0, big, m)
    b = rng.integers(0, big, m)
    w = rng.integers(0, 120, m) * 0.5
    w[:15] = 0.0  # zero-length edges
    ring = np.arange(big, n)
    a = np.concatenate([a, ring, [0]])
    b = np.concatenate([b, np.roll(ring, 1), [0]])  # plus a self-loop on node 0
    w = np.concatenate([w, np.full(ring.size, 7.5), [3.0]])
    return csr_from_edges(n, a, b, w)


@pytest.fixture(scope="module")
def rgraph():
    indptr, indices, w = random_graph()
    return indptr, indices, w, nx_graph(indptr, indices, w)


# --------------------------------------------------------------------------- random graph
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_nearest_matches_networkx_random(rgraph, seed):
    indptr, indices, w, g = rgraph
    n = indptr.size - 1
    rng = np.random.default_rng(seed)
    src = rng.integers(0, n - 20, 6)
    src[1] = src[0]  # a repeated node: the smaller offset wins
    off = rng.integers(0, 40, src.size) * 0.5
    dist, pos = nearest_with_source(indptr, indices, w, src, off)
    ref = nx_nearest(g, src, off, n)
    np.testing.assert_array_equal(dist, ref)
    assert np.isinf(dist[n - 20:]).all() and (pos[n - 20:] == -1).all()  # other component
    # the reported source really is at that distance
    reached = np.flatnonzero(np.isfinite(dist))
    for p in np.unique(pos[reached]):
        d_p = nx.single_source_dijkstra_path_length(g, int(src[p]), weight="weight")
        for v in reached[pos[reached] == p]:
            assert off[p] + d_p[int(v)] == dist[v]
    np.testing.assert_array_equal(nearest_times(indptr, indices, w, src, off), dist)


def test_nearest_limit_and_offsets_beyond_limit(rgraph):
    indptr, indices, w, g = rgraph
    n = indptr.size - 1
    src = np.array([3, 50, 100])
    off = np.array([0.0, 2.5, 99.0])
    full = nx_nearest(g, src, off, n)
    limit = float(np.sort(full[np.isfinite(full)])[40])  # exactly some node's distance
    d = nearest_times(indptr, indices, w, src, off, limit_s=limit)
    np.testing.assert_array_equal(d, np.where(full <= limit, full, np.inf))
    assert (d == limit).any()  # inclusive: a node exactly at the limit is reached
    d, pos = nearest_with_source(indptr, indices, w, [7], [5.0], limit_s=4.0)
    assert np.isinf(d).all() and (pos == -1).all()


@pytest.mark.parametrize("limit", [0.0, 12.5, 40.0, 1e9])
def test_counts_and_reach_match_networkx_random(rgraph, limit):
    indptr, indices, w, g = rgraph
    n = indptr.size - 1
    rng = np.random.default_rng(int(limit) % 97)
    src = np.concatenate([rng.integers(0, n, 25), [5, 5, n - 3]])
    off = np.concatenate([rng.integers(0, 20, 25) * 0.5, [0.0, 0.0, 0.0]])
    rows = nx_rows(g, src, off, limit, n)
    ref_counts = np.zeros(n, np.int32)
    for r in rows:
        ref_counts[list(r)] += 1
    np.testing.assert_array_equal(counts_within(indptr, indices, w, src, off, limit), ref_counts)

    m = reach_sparse(indptr, indices, w, src, off, limit)
    assert m.shape == (src.size, n) and m.has_sorted_indices
    dense = np.zeros((src.size, n))
    for i, r in enumerate(rows):
        for v, x in r.items():
            dense[i, v] = x if x > 0 else REACH_ZERO_S
    np.testing.assert_array_equal(m.toarray(), dense)
    assert m.nnz == sum(len(r) for r in rows)
    # a 0-second entry (a source on its own node with offset 0) survives eliminate_zeros
    m2 = m.copy()
    m2.eliminate_zeros()
    assert m2.nnz == m.nnz and m[src.size - 2, 5] == REACH_ZERO_S


def test_limit_is_inclusive(rgraph):
    indptr, indices, w, g = rgraph
    n = indptr.size - 1
    src, off = np.array([10]), np.array([1.5])
    full = nx_nearest(g, src, off, n)
    v = int(np.argsort(full)[30])
    limit = float(full[v])
    assert counts_within(indptr, indices, w, src, off, limit)[v] == 1
    assert counts_within(indptr, indices, w, src, off, np.nextafter(limit, 0))[v] == 0
    assert reach_sparse(indptr, indices, w, src, off, limit)[0, v] == limit


def test_zero_length_edges_share_the_distance():
    # 0 -0s- 1 -5s- 2 -0s- 3 ; 4 isolated
    indptr, indices, w = csr_from_edges(5, np.array([0, 1, 2]), np.array([1, 2, 3]),
                                        np.array([0.0, 5.0, 0.0]))
    np.testing.assert_array_equal(nearest_times(indptr, indices, w, [0]),
                                  [0, 0, 5, 5, np.inf])
    np.testing.assert_array_equal(counts_within(indptr, indices, w, [0, 3], None, 5.0),
                                  [2, 2, 2, 2, 0])
    m = reach_sparse(indptr, indices, w, [0], None, 0.0)
    assert m.indices.tolist() == [0, 1] and (m.data == REACH_ZERO_S).all()
    assert (m != 0).nnz == 2 and m.astype(bool).sum() == 2


def test_no_sources_and_no_targets(rgraph):
    indptr, indices, w, _ = rgraph
    n = indptr.size - 1
    d, pos = nearest_with_source(indptr, indices, w, [], None)
    assert np.isinf(d).all() and (pos == -1).all() and pos.dtype == np.int64
    c = counts_within(indptr, indices, w, [], [], 100.0)
    assert c.dtype == np.int32 and c.shape == (n,) and not c.any()
    m = reach_sparse(indptr, indices, w, [], None, 100.0)
    assert m.shape == (0, n) and m.nnz == 0
    assert counts_within_at(indptr, indices, w, [1], None, 9.0, []).shape == (1, 0)


def test_reach_sparse_independent_of_buffers(rgraph, monkeypatch):
    indptr, indices, w, _ = rgraph
    n = indptr.size - 1
    src = np.random.default_rng(3).permutation(np.arange(0, n, 3))  # rows put back in order
    ref = reach_sparse(indptr, indices, w, src, None, 30.0)
    monkeypatch.setattr(search, "_REACH_MIN_CAP", 0)  # buffers of n entries: rows overflow
    for bs in (1, 7, 1000):
        m = reach_sparse(indptr, indices, w, src, None, 30.0, block_size=bs)
        assert (m != ref).nnz == 0 and np.array_equal(m.indptr, ref.indptr)


def test_counts_at_targets_with_legs_and_groups(rgraph):
    indptr, indices, w, g = rgraph
    n = indptr.size - 1
    rng = np.random.default_rng(7)
    src = rng.integers(0, n, 12)
    off = rng.integers(0, 10, 12) * 0.5
    grp = np.repeat([0, 2], 6)  # group 1 is empty
    tn = rng.integers(0, n, 60)
    tn[:3] = tn[3]  # targets sharing a node
    toff = rng.integers(0, 20, 60) * 0.5
    limit = 25.0
    rows = nx_rows(g, src, off, limit, n)
    ref = np.zeros((3, tn.size), np.int32)
    for i, r in enumerate(rows):
        for k, (v, e) in enumerate(zip(tn.tolist(), toff.tolist(), strict=True)):
            ref[grp[i], k] += v in r and r[v] + e <= limit
    got = counts_within_at(indptr, indices, w, src, off, limit, tn, toff, source_groups=grp)
    np.testing.assert_array_equal(got, ref)


def test_bad_inputs_raise_clear_errors(rgraph):
    indptr, indices, w, _ = rgraph
    n = indptr.size - 1
    with pytest.raises(InputDataError, match="weights_s: negative"):
        nearest_times(indptr, indices, -w, [0])
    with pytest.raises(InputDataError, match="sources: node index outside"):
        counts_within(indptr, indices, w, [n], None, 10.0)
    with pytest.raises(InputDataError, match="limit_s"):
        reach_sparse(indptr, indices, w, [0], None, float("nan"))
    with pytest.raises(InputDataError, match="offsets"):
        nearest_times(indptr, indices, w, [0, 1], [1.0])


# --------------------------------------------------------------------------- real graph
@pytest.fixture(scope="module")
def fontibon(data):
    from careblocks.io.osm import read_osm_network
    from careblocks.network.graph import build_walk_network, local_crs

    nodes, edges = read_osm_network(data / "bogota/osm/fontibon_overpass_2023-05-29.osm.pbf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net, _ = build_walk_network(nodes, edges, crs=local_crs(nodes.geometry))
    w = WalkCost(4.8).edge_seconds(net)
    return net, w, nx_graph(net.indptr, net.indices, w)


@pytest.fixture(scope="module")
def fontibon_services(fontibon):
    """Fontibón's OSM facility counts per service, at random nodes with random snap legs."""
    net = fontibon[0]
    rng = np.random.default_rng(2023)
    out = {}
    for name, k in {"daycare": 17, "health": 12, "laundromat": 15, "kitchen": 2}.items():
        out[name] = (rng.choice(net.n_nodes, k, replace=False), rng.uniform(0, 80, k) / (4.8 / 3.6))
    return out


def test_real_graph_nearest_and_counts_match_networkx(fontibon, fontibon_services):
    net, w, g = fontibon
    n = net.n_nodes
    limit = 900.0
    for name, (src, off) in fontibon_services.items():
        dist = nearest_times(net.indptr, net.indices, w, src, off)
        ref = nx_nearest(g, src, off, n)
        np.testing.assert_allclose(dist, ref, rtol=1e-12, err_msg=name)
        rows = nx_rows(g, src, off, limit, n)
        ref_c = np.zeros(n, np.int32)
        for r in rows:
            ref_c[list(r)] += 1
        got = counts_within(net.indptr, net.indices, w, src, off, limit)
        np.testing.assert_array_equal(got, ref_c, err_msg=name)
        assert got.max() >= 1 and (got == 0).any()  # a real mix, not a trivial case


def test_real_graph_reach_sparse_matches_networkx(fontibon, fontibon_services):
    net, w, g = fontibon
    src, off = fontibon_services["daycare"]
    rows = nx_rows(g, src, off, 600.0, net.n_nodes)
    m = reach_sparse(net.indptr, net.indices, w, src, off, 600.0)
    for i, r in enumerate(rows):
        cols = m.indices[m.indptr[i]:m.indptr[i + 1]]
        assert cols.tolist() == sorted(r)
        np.testing.assert_allclose(m.data[m.indptr[i]:m.indptr[i + 1]],
                                   [r[v] for v in cols.tolist()], rtol=1e-12)


# --------------------------------------------------------------------------- adapter
class _Net:
    """The part of WalkNetwork that walk_access uses."""

    def __init__(self, indptr, indices, length_m):
        self.indptr, self.indices, self.length_m = indptr, indices, length_m


def test_walk_access_columns_legs_and_unreachable():
    # path 0-1-2-3 of 400 m edges; nodes 4-5 form another piece
    indptr, indices, length = csr_from_edges(6, np.array([0, 1, 2, 4]), np.array([1, 2, 3, 5]),
                                             np.full(4, 400.0))
    net = _Net(indptr, indices, length)
    speed = 4.8  # 80 m/min
    out = walk_access(net, np.array([0, 3, 5]), np.array([40.0, 0.0, 80.0]),
                      {"daycare": (np.array([1, 2]), np.array([0.0, 80.0])),
                       "kitchen": (np.array([], np.int64), np.array([]))},
                      cost=WalkCost(speed), threshold_min=7.5, walk_profiles={"older": WalkCost(3.0)},
                      index=["a", "b", "c"])
    assert list(out.columns) == ["walk_min_daycare", "n_within_7.5min_daycare",
                                 "walk_min_kitchen", "n_within_7.5min_kitchen",
                                 "walk_min_daycare_older", "walk_min_kitchen_older",
                                 "services_within_7.5min"]
    assert list(out.index) == ["a", "b", "c"]
    # origin a: 0.5 min snap + 5 min to node 1 (snap 0) = 5.5; node 2 costs 0.5+10+1 = 11.5
    # origin b: node 2 at 5 + 1 = 6 min, node 1 at 10 min
    np.testing.assert_allclose(out["walk_min_daycare"].iloc[:2], [5.5, 6.0])
    assert out["n_within_7.5min_daycare"].tolist() == [1, 1, 0]
    assert out["walk_min_daycare"].isna().tolist() == [False, False, True]
    assert out["walk_min_kitchen"].isna().all() and (out["n_within_7.5min_kitchen"] == 0).all()
    np.testing.assert_allclose(out["walk_min_daycare_older"], out["walk_min_daycare"] * 1.6)
    assert out["services_within_7.5min"].tolist() == [1, 1, 0]
    assert threshold_tag(15.0) == "15" and threshold_tag(7.5) == "7.5"


@pytest.mark.parametrize("threshold", [5, 15])
def test_walk_access_on_real_graph(fontibon, fontibon_services, threshold):
    net, w, g = fontibon
    rng = np.random.default_rng(5)
    onodes = rng.permutation(net.n_nodes)  # every node, in random order
    osnap = rng.uniform(0, 120, net.n_nodes)
    services = {k: (s, o * (4.8 / 3.6)) for k, (s, o) in fontibon_services.items()}
    out = walk_access(net, onodes, osnap, services, cost=WalkCost(4.8), threshold_min=threshold)
    t = threshold_tag(threshold)
    assert f"n_within_{t}min_health" in out and f"services_within_{t}min" in out
    leg = osnap / (4.8 / 3.6)
    for name, (src, off) in fontibon_services.items():
        ref = nx_nearest(g, src, off, net.n_nodes)[onodes] + leg
        np.testing.assert_allclose(out[f"walk_min_{name}"] * 60, ref, rtol=1e-12)
        # counts agree with the minutes, origin and facility legs included
        within = out[f"n_within_{t}min_{name}"] > 0
        assert (within == (out[f"walk_min_{name}"] <= threshold)).all()
        assert within.any() and not within.all()
    assert out[f"services_within_{t}min"].between(0, 4).all()
