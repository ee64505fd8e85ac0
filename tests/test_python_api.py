"""The Python API: docs/python_api.md runs as written, and gives the minutes of ``careblocks run``.

The page's code blocks run in order in one namespace (as a notebook would); the test then
holds what they computed against the pipeline's own results for the same inputs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import careblocks as cb
from careblocks.errors import CareblocksError, CRSError, InputDataError

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "python_api.md"


def _blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.fixture(scope="module")
def notebook(data):
    """The namespace after running every code block of docs/python_api.md."""
    ns: dict = {"data": data}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for i, code in enumerate(_blocks(DOC.read_text(encoding="utf-8"))):
            exec(compile(code, f"{DOC.name}[block {i + 1}]", "exec"), ns)  # noqa: S102 - our own docs
    finally:
        os.chdir(cwd)
    return ns


def test_the_page_has_runnable_blocks():
    assert len(_blocks(DOC.read_text(encoding="utf-8"))) >= 6


def test_api_minutes_equal_the_pipeline(notebook):
    """walk_access on the network built by the API, from the pipeline's own origins and
    facilities, gives exactly the minutes and counts of the run."""
    res, net = notebook["results"], notebook["net"]
    assert net.n_nodes == res.network.n_nodes and net.crs == res.network.crs
    np.testing.assert_array_equal(net.indices, res.network.indices)
    origins = res.origins[["origin_id", "geometry"]].rename(columns={"origin_id": "id"})
    services = {s: res.services[res.services["service"] == s] for s in res.service_names}
    mine = cb.walk_access(net, origins, services, speed_kmh=res.config.walk.speed_kmh,
                          threshold_min=res.config.access.threshold_min,
                          profiles=dict(res.config.walk.profiles))
    T = res.config.access.threshold_min
    for s in res.service_names:
        np.testing.assert_allclose(mine[f"walk_min_{s}"], res.origins[f"walk_min_{s}"], rtol=1e-12, atol=0)
        np.testing.assert_array_equal(mine[f"n_within_{T:g}min_{s}"], res.origins[f"n_within_{T:g}min_{s}"])
        for p in res.config.walk.profiles:
            np.testing.assert_allclose(mine[f"walk_min_{s}_{p}"], res.origins[f"walk_min_{s}_{p}"], rtol=1e-12)
    assert (mine[f"services_within_{T:g}min"] == res.origins[f"services_within_{T:g}min"]).all()


def test_osmnx_graph_gives_the_same_network_and_minutes(notebook):
    net, net_ox = notebook["net"], notebook["net_ox"]
    assert net_ox.n_nodes == net.n_nodes
    np.testing.assert_allclose(np.sort(net_ox.length_m), np.sort(net.length_m), rtol=1e-9)
    blocks, centres = notebook["blocks"], notebook["centres"]
    a = cb.walk_access(net_ox, blocks, {"disability_care": centres})
    np.testing.assert_allclose(a["walk_min_disability_care"], notebook["access"]["walk_min_disability_care"],
                               rtol=1e-9)


def test_matrix_and_isochrones_agree_with_walk_access(notebook):
    access, matrix, iso = notebook["access"], notebook["matrix"], notebook["iso"]
    assert list(matrix.columns) == ["from_id", "to_id", "travel_time_min"]
    assert matrix["travel_time_min"].between(0, 30).all()
    nearest = matrix.groupby("from_id")["travel_time_min"].min()
    w = access.set_index("id")["walk_min_disability_care"]
    near = w[w <= 30]
    # every block within 30 min of a centre is in the matrix with the same nearest minutes
    np.testing.assert_allclose(nearest.reindex(near.index).to_numpy(), near.to_numpy(), rtol=1e-12)
    assert set(nearest.index) == set(near.index)
    # isochrones grow with the cut-off and hold the centre they start from
    centres = notebook["local"].head(3).to_crs(notebook["net"].crs)
    assert len(centres) == 3 and iso["id"].nunique() == 3
    for i, (_, grp) in enumerate(iso.groupby("id", sort=False)):
        g = grp.sort_values("cutoff_min")
        assert list(g["cutoff_min"]) == [5.0, 10.0, 15.0]
        assert g["reached_nodes"].iloc[0] > 0 and (np.diff(g["reached_nodes"]) >= 0).all()
        assert (np.diff(g.geometry.area) >= -1e-6).all()
        assert g.geometry.iloc[-1].distance(centres.geometry.iloc[i]) < 300


def test_ids_crs_and_sources_are_checked():
    nodes = gpd.GeoDataFrame({"node_id": [1, 2]}, geometry=shapely.points([(500000, 0), (500100, 0)]),
                             crs="EPSG:32618")
    edges = gpd.GeoDataFrame({"u": [1], "v": [2]}, geometry=[shapely.LineString([(500000, 0), (500100, 0)])],
                             crs="EPSG:32618")
    net = cb.walk_network((nodes, edges), crs="EPSG:32618")
    pts = gpd.GeoDataFrame({"id": ["a", "a"]}, geometry=shapely.points([(500000, 0), (500100, 0)]),
                           crs="EPSG:32618")
    with pytest.raises(InputDataError, match="not unique"):
        cb.travel_time_matrix(net, pts, pts)
    with pytest.raises(CRSError, match="no CRS"):
        cb.walk_access(net, gpd.GeoDataFrame({"id": ["a"]}, geometry=shapely.points([(500000, 0)])), {"x": pts})
    with pytest.raises(CareblocksError, match="cannot read"):
        cb.walk_network(42)
    with pytest.raises(InputDataError, match="speed_kmh"):
        cb.walk_access(net, pts, {"x": pts}, speed_kmh=0)
    m = cb.travel_time_matrix(net, pts.assign(id=["a", "b"]), pts.iloc[[1]].assign(id=["z"]),
                              speed_kmh=3.6)
    assert m.to_dict("list") == {"from_id": ["a", "b"], "to_id": ["z", "z"],
                                 "travel_time_min": pytest.approx([100 / 60, 0.0])}
    assert isinstance(m, pd.DataFrame)


def test_docstring_examples_run():
    import doctest

    import careblocks.api
    import careblocks.network.cost

    for mod in (careblocks.api, careblocks.network.cost):
        r = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert r.attempted > 0 and r.failed == 0, mod.__name__
