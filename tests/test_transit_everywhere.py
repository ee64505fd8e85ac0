"""Transit in every figure: on Porto Alegre (bus + metro GTFS, r5r sample data; see
../shared/data/README.md) the hours returned, the after scenario, "all services within T" and
the equity tables use the faster of walking and walk + transit; transit modes can be chosen."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest

from careblocks.config import ConfigError, load_config

CONFIGS = Path(__file__).parents[1] / "configs"


@pytest.fixture(scope="module")
def poa(data):
    from careblocks.pipeline import analyse

    cfg = load_config(CONFIGS / "porto_alegre.toml")
    cfg = dataclasses.replace(
        cfg,
        transit=dataclasses.replace(cfg.transit, window_start="14:00", window_end="14:30", step_min=5),
        sites=dataclasses.replace(cfg.sites, k=3, h3_resolution=8),  # fewer candidates: quicker
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return analyse(cfg)


def test_all_services_within_T_counts_the_faster_mode(poa):
    o, cfg = poa.origins, poa.config
    T = cfg.access.threshold_min
    best = np.zeros(len(o), int)
    walk = np.zeros(len(o), int)
    for s in cfg.service_names:
        b = o[f"best_min_{s}"].to_numpy(float)
        w = o[f"walk_min_{s}"].to_numpy(float)
        assert (np.nan_to_num(b, nan=np.inf) <= np.nan_to_num(w, nan=np.inf) + 1e-9).all()
        best += b <= T
        walk += w <= T
    np.testing.assert_array_equal(o["services_within_15min"].to_numpy(), best)
    assert (best >= walk).all() and (best > walk).any()  # the bus brings someone within 15 min


def test_hours_returned_use_the_faster_mode(poa):
    from careblocks.config import DEFAULT_SERVICES
    from careblocks.network.search import min_union
    from careblocks.pipeline.sites_stage import _transit_seconds
    from careblocks.sites.scoring import (
        compute_catchments,
        household_size,
        score_candidates,
        user_households,
    )

    cfg, o, cands = poa.config, poa.origins, poa.candidates
    before = o[[c for c in o.columns if not c.endswith("_after")]]
    catch = compute_catchments(cfg, cands, before, poa.network, services=poa.services)
    tcov = _transit_seconds(poa, poa.timetable, cands["node"].to_numpy(np.int64),
                            cands["snap_m"].to_numpy(float), catch.limit_s)
    fast = min_union(catch.coverage, tcov).tocoo()
    cap = cfg.sites.current_time_cap_min
    expect = np.zeros(len(cands))
    for s in cfg.sites.offers:
        svc = cfg.services.get(s)
        trips = svc.trips_per_week if svc is not None and svc.trips_per_week is not None \
            else DEFAULT_SERVICES[s]["trips_per_week"]
        cur = before[f"best_min_{s}"].to_numpy(float)  # today by the faster mode
        cur = np.where(np.isfinite(cur) & (cur <= cap), cur, 0.0)  # trips made today only
        users = user_households(before, s, household_size(cfg), cfg)
        saved = np.maximum(0.0, cur[fast.col] - fast.data / 60.0) * users[fast.col]
        expect += np.bincount(fast.row, weights=saved, minlength=len(cands)) * 2 * trips / 60.0
    np.testing.assert_allclose(cands["hours_returned_week"].to_numpy(), expect, rtol=1e-9, atol=1e-9)
    # on foot only (no best_min columns, no transit catchments) the figures differ
    walk_only = before.drop(columns=[c for c in before.columns if c.startswith(("best_min_", "transit_min_"))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = score_candidates(cfg, cands.drop(columns=[c for c in cands.columns if c not in
                                                      ("candidate_id", "kind", "category", "name", "is_public_anchor",
                                                       "node", "snap_m", "n_merged", "geometry")]),
                             walk_only, poa.services, catch)
    assert not np.allclose(w["hours_returned_week"].to_numpy(), expect)


def test_after_scenario_uses_the_faster_mode(poa):
    cfg, o, sel = poa.config, poa.origins, poa.selected
    T = cfg.access.threshold_min
    assert len(sel) == 3
    for s in cfg.sites.offers:
        best_after = o[f"best_min_{s}_after"].to_numpy(float)
        walk_after = o[f"walk_min_{s}_after"].to_numpy(float)
        best_now = o[f"best_min_{s}"].to_numpy(float)
        inf = np.inf
        assert (np.nan_to_num(best_after, nan=inf) <= np.nan_to_num(walk_after, nan=inf) + 1e-9).all()
        assert (np.nan_to_num(best_after, nan=inf) <= np.nan_to_num(best_now, nan=inf) + 1e-9).all()
    # some homes reach a new block faster by bus than on foot
    s0 = cfg.sites.offers[0]
    ba, wa = o[f"best_min_{s0}_after"].to_numpy(float), o[f"walk_min_{s0}_after"].to_numpy(float)
    assert (np.nan_to_num(ba, nan=np.inf) < np.nan_to_num(wa, nan=np.inf) - 0.5).any()
    n_after = sum((o[f"best_min_{s}_after"] if f"best_min_{s}_after" in o.columns else o[f"best_min_{s}"])
                  .to_numpy(float) <= T for s in cfg.service_names)
    np.testing.assert_array_equal(o["services_within_15min_after"].to_numpy(), n_after)


def test_route_types_choose_the_transit_modes(data):
    from careblocks.config import TRANSIT_MODES
    from careblocks.io.gtfs import ROUTE_TYPES, read_gtfs, route_type_mask

    assert set(ROUTE_TYPES) == set(TRANSIT_MODES)
    assert route_type_mask([3, 700, 715, 1, 401, 4, 1200, 1501], ["bus"]).tolist() == \
        [True, True, True, False, False, False, False, False]
    assert route_type_mask([1, 401, 402], ["subway"]).all()
    assert route_type_mask([1501], ["taxi"]).all()
    feeds = [data / "porto_alegre/poa_eptc.zip", data / "porto_alegre/poa_trensurb.zip"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        every, _ = read_gtfs(feeds, "2019-05-15", window_s=(14 * 3600, 15 * 3600))
        bus, st = read_gtfs(feeds, "2019-05-15", window_s=(14 * 3600, 15 * 3600), modes=["bus"])
    kinds = set(every.trips["route_type"])
    assert len(kinds) >= 2  # buses and the metro
    assert set(bus.trips["route_type"]) <= {3} | set(range(700, 800)) and len(bus.trips) < len(every.trips)
    assert st["trips_dropped_by_mode"] > 0
    p = CONFIGS / "porto_alegre.toml"
    text = p.read_text().replace("[transit]\n", '[transit]\nmodes = ["bus", "hovercraft"]\n')
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        q = Path(tmp) / "c.toml"
        q.write_text(text.replace("${CAREBLOCKS_DATA_DIR}", str(data)))
        with pytest.raises(ConfigError, match="transit.modes.*hovercraft"):
            load_config(q)
