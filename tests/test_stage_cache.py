"""The stage cache: timetable, transit access and catchments reused when their inputs did not
change, recomputed when they did, and a weight- or K-only change reusing every cached stage.

Real data: Porto Alegre (OSM roads, IPEA hex grid, EPTC + Trensurb GTFS), with a short
departure window to keep the runs small.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest

from careblocks.config import PROJECT_ROOT, load_config
from careblocks.network import cache as stage_cache

#: the cached stages a Porto Alegre run with sites, transit and sensitivity goes through
ALL_STAGES = ("network", "gtfs_audit", "inputs", "timetable", "transit_access", "walk_access",
              "accessibility_walk", "accessibility_transit", "candidates", "catchments", "transit_coverage",
              "selection", "coverage_curve", "sensitivity", "transit_after", "block_minutes")
#: the pieces of the outputs cached by what they show (report figures, the map's streets)
OUTPUT_PIECES = ("report_site_map", "report_chart_times", "report_chart_groups", "report_chart_curve",
                 "report_chart_groups_before_after", "map_streets")


@pytest.fixture(autouse=True)
def _stage_cache_on(monkeypatch):
    monkeypatch.delenv("CAREBLOCKS_STAGE_CACHE", raising=False)


def test_arrays_round_trip_and_misses(tmp_path, monkeypatch):
    monkeypatch.setenv("CAREBLOCKS_CACHE_DIR", str(tmp_path / "c"))
    cfg = load_config(PROJECT_ROOT / "configs" / "helsinki.toml")
    key = stage_cache.cache_key("demo", {"a": 1, "b": [1.5, "x"]})
    assert key != stage_cache.cache_key("demo", {"a": 2, "b": [1.5, "x"]})
    assert key == stage_cache.cache_key("demo", {"b": [1.5, "x"], "a": 1})  # order-free
    assert stage_cache.load(cfg, "demo", key) is None
    arrays = {"ids": np.array(["a", "bé", "c"], dtype=object), "v": np.arange(5, dtype=np.int32)}
    stage_cache.save(cfg, "demo", key, arrays, {"n": 3})
    got, meta = stage_cache.load(cfg, "demo", key)
    assert got["ids"].tolist() == ["a", "bé", "c"] and got["v"].dtype == np.int32 and meta == {"n": 3}
    assert isinstance(got["v"], np.memmap)  # one uncompressed .npy per array, mapped on a hit
    got["v"][:] = 7  # copy-on-write: the entry keeps its values
    assert stage_cache.load(cfg, "demo", key)[0]["v"].tolist() == [0, 1, 2, 3, 4]
    stage_cache.save(cfg, "demo", key, {"v": np.arange(3)}, {"n": 1})  # replaced whole
    got, meta = stage_cache.load(cfg, "demo", key)
    assert set(got) == {"v"} and got["v"].tolist() == [0, 1, 2] and meta == {"n": 1}
    assert [p.name for p in (tmp_path / "c" / "demo").iterdir()] == [key]  # no leftovers
    # a damaged entry is a miss, not a crash
    (tmp_path / "c" / "demo" / key / "a0.npy").write_bytes(b"not an array")
    assert stage_cache.load(cfg, "demo", key) is None
    # network.cache = false turns every stage cache off; CAREBLOCKS_STAGE_CACHE=0 these only
    off = dataclasses.replace(cfg, network=dataclasses.replace(cfg.network, cache=False))
    stage_cache.save(off, "demo", key, arrays, {})
    assert stage_cache.load(off, "demo", key) is None
    monkeypatch.setenv("CAREBLOCKS_STAGE_CACHE", "0")
    assert stage_cache.load(cfg, "demo", key) is None and not stage_cache.enabled(cfg)
    monkeypatch.delenv("CAREBLOCKS_STAGE_CACHE")
    # digests follow content, dtype and shape
    a = np.arange(6, dtype=np.int64)
    assert stage_cache.array_digest(a) == stage_cache.array_digest(a.copy())
    assert stage_cache.array_digest(a) != stage_cache.array_digest(a.astype(np.int32))
    assert stage_cache.array_digest(a) != stage_cache.array_digest(a.reshape(2, 3))


def _poa_config(tmp_path, *, outputs: bool = False, **sites):
    cfg = load_config(PROJECT_ROOT / "configs" / "porto_alegre.toml")
    tr = dataclasses.replace(cfg.transit, window_start="14:00", window_end="14:10", percentiles=(50,))
    st = dataclasses.replace(cfg.sites, curve_k_max=3, **sites)
    out = dataclasses.replace(cfg.outputs, dir=tmp_path / "out", map=outputs, report=outputs, qgis_project=False)
    return dataclasses.replace(cfg, transit=tr, sites=st, outputs=out)


@contextmanager
def _cache_env(folder, *, on: bool = True):
    """The stage caches in ``folder``, on or off, for the code inside (module fixtures cannot
    use monkeypatch); the run date fixed, so that two runs' files can be compared whole."""
    keys = ("CAREBLOCKS_CACHE_DIR", "CAREBLOCKS_STAGE_CACHE", "SOURCE_DATE_EPOCH")
    old = {k: os.environ.get(k) for k in keys}
    os.environ["CAREBLOCKS_CACHE_DIR"] = str(folder)
    os.environ["SOURCE_DATE_EPOCH"] = "1796000000"
    if on:
        os.environ.pop("CAREBLOCKS_STAGE_CACHE", None)
    else:
        os.environ["CAREBLOCKS_STAGE_CACHE"] = "0"
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def poa_cache(tmp_path_factory):
    """One fresh cache folder for the Porto Alegre runs of this module."""
    return tmp_path_factory.mktemp("poa-cache") / "cache"


@pytest.fixture(scope="module")
def poa_runs(data, tmp_path_factory, poa_cache):
    """Three analyses sharing one fresh cache: cold, warm, and warm with other weights and K."""
    from careblocks import pipeline

    tmp = tmp_path_factory.mktemp("poa-runs")
    with _cache_env(poa_cache):
        cold = pipeline.analyse(_poa_config(tmp))
        warm = pipeline.analyse(_poa_config(tmp))
        weights = {"gap_closed": 0.1, "hours_returned_week": 0.1, "demand_covered": 0.7,
                   "colocated_services": 0.05, "is_public_anchor": 0.05}
        changed = pipeline.analyse(_poa_config(tmp, weights=weights, k=3))
        weights_only = pipeline.analyse(_poa_config(tmp, weights=weights))
        later_date = dataclasses.replace(_poa_config(tmp), transit=dataclasses.replace(
            _poa_config(tmp).transit, window_end="14:05"))
        window = pipeline.analyse(later_date, until="transit")
    return cold, warm, changed, window, weights_only


def test_warm_run_hits_every_cached_stage_with_the_same_results(poa_runs):
    cold, warm, *_ = poa_runs
    # every cached stage of the run: built cold, reused warm
    assert set(ALL_STAGES) <= set(cold.stats["cache"])
    assert {s: cold.stats["cache"][s] for s in ALL_STAGES} == dict.fromkeys(ALL_STAGES, "miss")
    assert warm.stats["cache"] == dict.fromkeys(cold.stats["cache"], "hit")
    for c in [c for c in cold.origins.columns if c.startswith(("walk_min_", "n_within_"))]:
        np.testing.assert_array_equal(cold.origins[c].to_numpy(float), warm.origins[c].to_numpy(float))
    pd.testing.assert_frame_equal(cold.sensitivity, warm.sensitivity)
    assert warm.sensitivity.attrs == cold.sensitivity.attrs
    t_cols = [c for c in cold.origins.columns if c.startswith(("transit_min_", "best_min_"))]
    assert t_cols
    for c in t_cols:
        np.testing.assert_array_equal(cold.origins[c].to_numpy(float), warm.origins[c].to_numpy(float))
    assert cold.selected["candidate_id"].tolist() == warm.selected["candidate_id"].tolist()
    np.testing.assert_allclose(cold.candidates["score"], warm.candidates["score"])
    # the timetable statistics (and its warnings) survive the cache
    assert warm.stats["transit"]["trips"] == cold.stats["transit"]["trips"]
    assert [w for w in warm.warnings if w.startswith("transit")] == \
        [w for w in cold.warnings if w.startswith("transit")]


def test_weight_and_k_change_recomputes_only_what_depends_on_them(poa_runs):
    cold, _, changed, *_ = poa_runs
    stages = ("network", "timetable", "transit_access", "catchments", "transit_coverage")
    assert {s: changed.stats["cache"][s] for s in stages} == dict.fromkeys(stages, "hit")
    # what depends on the weights and K did change
    assert len(changed.selected) == 3 and len(cold.selected) == 5
    assert not np.allclose(changed.candidates["score"], cold.candidates["score"])


def test_weight_only_change_reruns_only_what_depends_on_the_weights(poa_runs):
    cold, *_, weights_only = poa_runs
    log = weights_only.stats["cache"]
    upstream = ("network", "gtfs_audit", "inputs", "timetable", "transit_access", "walk_access",
                "accessibility_walk", "accessibility_transit", "candidates", "catchments", "transit_coverage")
    assert {s: log[s] for s in upstream} == dict.fromkeys(upstream, "hit")
    # the proposal maximises the people covered, which the score weights do not enter: the
    # selection and the coverage curve are reused, and the blocks' walking and transit times
    after = ("selection", "coverage_curve", "transit_after", "block_minutes")
    assert {s: log[s] for s in after} == dict.fromkeys(after, "hit")
    assert set(log) == set(ALL_STAGES) | {"catchment_polygons"}  # no stage left unchecked
    assert weights_only.selected["candidate_id"].tolist() == cold.selected["candidate_id"].tolist()
    # the scores and the sensitivity draws (around the configured weights) are recomputed
    assert log["sensitivity"] == "miss"
    assert not np.allclose(weights_only.candidates["score"], cold.candidates["score"])


def test_changed_transit_window_misses_the_timetable(poa_runs):
    _, _, _, window, _ = poa_runs
    assert window.stats["cache"]["network"] == "hit"
    assert window.stats["cache"]["timetable"] == "miss"
    assert window.stats["cache"]["transit_access"] == "miss"


def test_changed_input_file_misses_what_reads_it(poa_runs, poa_cache, tmp_path):
    """A population layer with one figure changed: the services and origins are read again,
    the network and the GTFS audit are reused, and walking times too (the origins' places
    on the streets did not move)."""
    from careblocks import pipeline

    cold, *_ = poa_runs
    cfg = _poa_config(tmp_path)
    src = cfg.population.layer.path
    table = pd.read_csv(src, dtype={"id": str})
    row = int(np.flatnonzero(table["population"].to_numpy() > 100)[0])
    table.loc[row, "population"] += 1000
    copy = tmp_path / src.name
    table.to_csv(copy, index=False)
    pop = dataclasses.replace(cfg.population, layer=dataclasses.replace(cfg.population.layer, path=copy))
    with _cache_env(poa_cache):
        ctx = pipeline.analyse(dataclasses.replace(cfg, population=pop), until="walk access")
    log = ctx.stats["cache"]
    assert {s: log[s] for s in ("network", "gtfs_audit", "inputs", "walk_access")} == {
        "network": "hit", "gtfs_audit": "hit", "inputs": "miss", "walk_access": "hit"}
    assert ctx.origins["population"].sum() == pytest.approx(cold.origins["population"].sum() + 1000)


def test_damaged_inputs_entry_is_a_miss(poa_runs, poa_cache, tmp_path):
    from careblocks import pipeline

    with _cache_env(poa_cache):
        ctx = pipeline.analyse(_poa_config(tmp_path), until="origins")
        assert ctx.stats["cache"]["inputs"] == "hit"
        entry = poa_cache / "inputs" / ctx.inputs_key
        meta = json.loads((entry / "meta.json").read_text())
        meta["meta"]["origins"]["columns"] = [{"name": "x", "kind": "mystery"}]
        (entry / "meta.json").write_text(json.dumps(meta))
        again = pipeline.analyse(_poa_config(tmp_path), until="origins")
    assert again.stats["cache"]["inputs"] == "miss"
    pd.testing.assert_frame_equal(pd.DataFrame(again.origins), pd.DataFrame(ctx.origins))


def test_output_pieces_round_trip_and_misses(tmp_path, monkeypatch):
    from careblocks.outputs import _cached

    monkeypatch.setenv("CAREBLOCKS_CACHE_DIR", str(tmp_path / "c"))
    cfg = load_config(PROJECT_ROOT / "configs" / "helsinki.toml")
    made = []

    def make(blob):
        return lambda: made.append(blob) or blob

    data = {"x": np.arange(4.0), "label": "a", "wkb": [b"\x00\x01"]}
    code = _cached.code_version("careblocks.outputs._cached", libraries=("numpy",))
    assert _cached.cached_bytes(cfg, "demo", data, make(b"one"), code=code) == b"one"
    assert _cached.STATUS["demo"] == "miss"
    assert _cached.cached_bytes(cfg, "demo", dict(data), make(b"two"), code=code) == b"one"
    assert _cached.STATUS["demo"] == "hit" and made == [b"one"]
    # any change of what it shows is another entry
    for other in ({**data, "x": np.arange(4.0) + 1e-9}, {**data, "label": "b"}, {**data, "wkb": [b"\x00\x02"]},
                  {**data, "x": np.arange(4, dtype=np.int64)}):
        assert _cached.digest(other) != _cached.digest(data)
    # damaged bytes (their sha256 no longer matches) are a miss, not a crash
    entry = next((tmp_path / "c" / "outputs").iterdir())
    arr = entry / "a0.npy"
    raw = bytearray(arr.read_bytes())
    raw[-1] ^= 0xFF
    arr.write_bytes(bytes(raw))
    assert _cached.cached_bytes(cfg, "demo", data, make(b"three"), code=code) == b"three"
    assert _cached.STATUS["demo"] == "miss"
    monkeypatch.setenv("CAREBLOCKS_STAGE_CACHE", "0")
    assert _cached.cached_bytes(cfg, "demo", data, make(b"four"), code=code) == b"four"
    assert _cached.STATUS["demo"] == "off"
    with pytest.raises(TypeError):
        _cached.digest({"frame": pd.DataFrame()})  # only plain data is digested


def _timeless(obj):
    """Metadata without the keys that say when, how long and what was cached."""
    drop = ("cache", "seconds", "timings", "created_utc", "written_at", "output_cache")
    if isinstance(obj, dict):
        return {k: _timeless(v) for k, v in obj.items() if not any(d in str(k) for d in drop)}
    if isinstance(obj, list):
        return [_timeless(v) for v in obj]
    return obj


@pytest.fixture(scope="module")
def poa_outputs(poa_runs, poa_cache, tmp_path_factory):
    """Whole runs with the map and the report: the first writes the output pieces, the
    second is warm everywhere, the third has the stage caches off."""
    from careblocks import pipeline

    tmp = tmp_path_factory.mktemp("poa-outputs")
    runs = {}
    for name, on in (("first", True), ("warm", True), ("off", False)):
        with _cache_env(poa_cache, on=on):
            results, written = pipeline.run(_poa_config(tmp / name, outputs=True))
        runs[name] = (results, {p.name: p for p in written})
    return runs


def test_warm_run_writes_the_outputs_of_a_cache_off_run(poa_outputs):
    import pyogrio

    first, warm, off = (poa_outputs[k] for k in ("first", "warm", "off"))
    assert first[0].metadata["output_cache"] == dict.fromkeys(OUTPUT_PIECES, "miss")
    assert warm[0].metadata["output_cache"] == dict.fromkeys(OUTPUT_PIECES, "hit")
    assert off[0].metadata["output_cache"] == dict.fromkeys(OUTPUT_PIECES, "off")
    assert set(warm[0].metadata["stats"]["cache"].values()) == {"hit"}
    assert {v for k, v in off[0].metadata["stats"]["cache"].items() if k != "network"} == {"off"}
    # the report and the map: the same bytes (figures included)
    for name in ("report.html", "map.html"):
        assert warm[1][name].read_bytes() == off[1][name].read_bytes(), name
    text = warm[1]["report.html"].read_text()
    assert len(re.findall(r'src="data:image/png;base64,', text)) == 5
    # the GeoPackage: every table equal, but the run's timings and cache log
    gw, go = warm[1]["careblocks.gpkg"], off[1]["careblocks.gpkg"]
    layers = [n for n, _ in pyogrio.list_layers(gw)]
    assert layers == [n for n, _ in pyogrio.list_layers(go)]
    assert {"origins", "services", "candidates", "selected_sites", "catchments", "sensitivity"} <= set(layers)
    for layer in layers:
        a, b = pyogrio.read_dataframe(gw, layer=layer), pyogrio.read_dataframe(go, layer=layer)
        if layer == "layer_styles":
            a, b = a.drop(columns="update_time"), b.drop(columns="update_time")
        if layer == "run_metadata":  # equal but for when, how long and what was cached
            ma, mb = ({k: _timeless(json.loads(v)) for k, v in zip(m["key"], m["value"], strict=True)}
                      for m in (a, b))
            for m in (ma, mb):
                m["config"]["outputs"].pop("dir")  # each run wrote to its own folder
            assert ma["warnings"] and ma == mb
            continue
        pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b), check_exact=True, obj=layer)
