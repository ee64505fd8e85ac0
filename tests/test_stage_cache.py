"""The stage cache: timetable, transit access and catchments reused when their inputs did not
change, recomputed when they did, and a weight- or K-only change reusing every cached stage.

Real data: Porto Alegre (OSM roads, IPEA hex grid, EPTC + Trensurb GTFS), with a short
departure window to keep the runs small.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from careblocks.config import PROJECT_ROOT, load_config
from careblocks.network import cache as stage_cache

#: the cached stages a Porto Alegre run with sites, transit and sensitivity goes through
ALL_STAGES = ("network", "gtfs_audit", "timetable", "transit_access", "walk_access", "candidates", "catchments",
              "transit_coverage", "selection", "coverage_curve", "sensitivity", "transit_after")


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


def _poa_config(tmp_path, **sites):
    cfg = load_config(PROJECT_ROOT / "configs" / "porto_alegre.toml")
    tr = dataclasses.replace(cfg.transit, window_start="14:00", window_end="14:10", percentiles=(50,))
    st = dataclasses.replace(cfg.sites, curve_k_max=3, **sites)
    out = dataclasses.replace(cfg.outputs, dir=tmp_path / "out", map=False, report=False)
    return dataclasses.replace(cfg, transit=tr, sites=st, outputs=out)


@pytest.fixture(scope="module")
def poa_runs(data, tmp_path_factory):
    """Three analyses sharing one fresh cache: cold, warm, and warm with other weights and K."""
    import os

    from careblocks import pipeline

    tmp = tmp_path_factory.mktemp("poa-cache")
    old = os.environ.get("CAREBLOCKS_CACHE_DIR")
    old_flag = os.environ.pop("CAREBLOCKS_STAGE_CACHE", None)
    os.environ["CAREBLOCKS_CACHE_DIR"] = str(tmp / "cache")
    try:
        cold = pipeline.analyse(_poa_config(tmp))
        warm = pipeline.analyse(_poa_config(tmp))
        weights = {"gap_closed": 0.1, "hours_returned_week": 0.1, "demand_covered": 0.7,
                   "colocated_services": 0.05, "is_public_anchor": 0.05}
        changed = pipeline.analyse(_poa_config(tmp, weights=weights, k=3))
        weights_only = pipeline.analyse(_poa_config(tmp, weights=weights))
        later_date = dataclasses.replace(_poa_config(tmp), transit=dataclasses.replace(
            _poa_config(tmp).transit, window_end="14:05"))
        window = pipeline.analyse(later_date, until="transit")
    finally:
        if old is None:
            os.environ.pop("CAREBLOCKS_CACHE_DIR", None)
        else:
            os.environ["CAREBLOCKS_CACHE_DIR"] = old
        if old_flag is not None:
            os.environ["CAREBLOCKS_STAGE_CACHE"] = old_flag
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
    upstream = ("network", "gtfs_audit", "timetable", "transit_access", "walk_access", "candidates", "catchments",
                "transit_coverage")
    assert {s: log[s] for s in upstream} == dict.fromkeys(upstream, "hit")
    # the proposal maximises the people covered, which the score weights do not enter: the
    # selection and the coverage curve are reused, and the blocks' transit times with them
    assert {s: log[s] for s in ("selection", "coverage_curve", "transit_after")} == \
        dict.fromkeys(("selection", "coverage_curve", "transit_after"), "hit")
    assert weights_only.selected["candidate_id"].tolist() == cold.selected["candidate_id"].tolist()
    # the scores and the sensitivity draws (around the configured weights) are recomputed
    assert log["sensitivity"] == "miss"
    assert not np.allclose(weights_only.candidates["score"], cold.candidates["score"])


def test_changed_transit_window_misses_the_timetable(poa_runs):
    _, _, _, window, _ = poa_runs
    assert window.stats["cache"]["network"] == "hit"
    assert window.stats["cache"]["timetable"] == "miss"
    assert window.stats["cache"]["transit_access"] == "miss"
