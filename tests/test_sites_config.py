"""Costs, a budget and blocks that stay, from the config (``sites.cost_column``,
``sites.default_cost``, ``sites.budget``, ``sites.fixed``, ``sites.fixed_column``), on Fontibón.

The candidate layer with costs is built in the test from the real public schools; the costs
are made up (a planner's would come from a public-works estimate).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyogrio
import pytest
from click.testing import CliRunner

from careblocks.cli import cli

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs/bogota_fontibon.toml"
FIXED = "PUERTA DE TEJA"  # a public school inside Fontibón
SCHOOL_COSTS = (300.0, 400.0, 500.0)
ANCHOR_COST = 350.0
BUDGET = 800.0
K = 5


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def schools(data, tmp_path_factory) -> Path:
    """The real schools layer with a made-up cost column (300, 400 or 500 by OBJECTID) and a
    yes/no ``stays`` column."""
    g = pyogrio.read_dataframe(data / "bogota/facilities/colegios_educacion_inclusiva.gpkg")
    g["cost"] = np.asarray(SCHOOL_COSTS)[g["OBJECTID"].to_numpy() % 3]
    g["stays"] = np.where(g["NOMBRE_SED"] == FIXED, "yes", "no")
    path = tmp_path_factory.mktemp("schools") / "schools_with_costs.gpkg"
    pyogrio.write_dataframe(g, path, driver="GPKG")
    return path


def _layer(path: Path) -> str:
    return f'sites.candidates_layer={{ path = "{path.as_posix()}" }}'


def test_budget_and_fixed_block_on_fontibon(schools, tmp_path) -> None:
    out = tmp_path / "out"
    r = invoke("run", str(CONFIG), "--out", str(out), "-q", "--set", _layer(schools),
               "--set", 'sites.cost_column="cost"', "--set", f"sites.default_cost={ANCHOR_COST}",
               "--set", f"sites.budget={BUDGET}", "--set", f'sites.fixed=["{FIXED}"]',
               "--set", f"sites.k={K}", "--set", "sensitivity.draws=0", "--set", "sites.curve_k_max=0",
               "--set", "outputs.report=false")
    assert r.exit_code == 0, r.output
    gpkg = out / "careblocks.gpkg"
    sel = pyogrio.read_dataframe(gpkg, layer="selected_sites", read_geometry=False).sort_values("order")
    # the block that stays comes first, marked, and the new ones follow
    assert sel["name"].iloc[0] == FIXED and bool(sel["fixed"].iloc[0])
    assert sel["rationale"].iloc[0].startswith("Una manzana que se mantiene (sites.fixed). ")
    assert not sel["fixed"].iloc[1:].astype(bool).any()
    new = sel.iloc[1:]
    # the costs written are those of the layer (schools) or the default (OSM anchors)
    layer = pyogrio.read_dataframe(schools, read_geometry=False).set_index("NOMBRE_SED")["cost"]
    for _, row in new.iterrows():
        want = layer.get(row["name"]) if row["kind"] == "parcel" else ANCHOR_COST
        if isinstance(want, type(layer)):  # a name shared by several schools
            assert row["cost"] in set(want)
        else:
            assert row["cost"] == pytest.approx(want)
    # the budget holds (the fixed block is not charged) and it binds: without it K blocks
    assert new["cost"].sum() <= BUDGET + 1e-9
    assert 1 <= len(new) < K
    # the fixed block's people are counted first: the new blocks add people it does not reach
    assert sel["new_population_covered"].iloc[0] > 0
    o = pyogrio.read_dataframe(gpkg, layer="origins", read_geometry=False)
    assert sel["new_population_covered"].sum() <= o["population"].sum() + 1e-6
    meta = pyogrio.read_dataframe(gpkg, layer="run_metadata", read_geometry=False)
    stats = json.loads(meta.set_index("key").loc["stats", "value"])["sites"]
    assert stats["budget"] == BUDGET and len(stats["fixed"]) == 1
    assert stats["cost_selected"] == pytest.approx(new["cost"].sum())
    # the map marks the block that stays (hollow marker, its own title and legend row)
    text = (out / "map.html").read_text(encoding="utf-8")
    data = json.loads(re.findall(r'<script type="application/json" id="careblocks-data">(.*?)</script>',
                                 text, re.S)[0])
    sites = next(o for o in data["overlays"] if o["kind"] == "sites")["sites"]
    assert [s["fixed"] for s in sites] == [True] + [False] * len(new)
    assert sites[0]["title"].startswith("Manzana del Cuidado 1, que se mantiene")
    assert all("que se mantiene" not in s["title"] for s in sites[1:])
    rows = [r["kind"] for sec in data["legend"]["sections"] for r in sec["rows"]]
    assert "site_fixed" in rows and rows.index("site_fixed") == rows.index("site") + 1


@pytest.fixture(scope="module")
def fontibon_ctx(data):
    """Fontibón up to its origins (network, services, census origins), for candidate checks."""
    from careblocks import pipeline
    from careblocks.config import load_config

    return pipeline.analyse(load_config(CONFIG), until="origins")


def _candidates(ctx, schools, *sets: str):
    import dataclasses

    from careblocks.config import load_config, parse_override
    from careblocks.pipeline.sites_stage import site_candidates
    from careblocks.sites.candidates import costs_and_fixed

    cfg = load_config(CONFIG, dict(parse_override(s) for s in (_layer(schools), *sets)))
    ctx = dataclasses.replace(ctx, config=cfg)  # the same network and origins, another config
    cands = site_candidates(ctx)
    return cands, *costs_and_fixed(cfg, cands)


def test_fixed_column_marks_the_same_block(fontibon_ctx, schools) -> None:
    """``sites.fixed_column`` (a yes/no column of the layer) keeps the same block as its name,
    and the costs are the layer's (schools) or ``sites.default_cost`` (OSM anchors)."""
    cands, cost, fixed = _candidates(fontibon_ctx, schools, 'sites.fixed_column="stays"',
                                     'sites.cost_column="cost"', f"sites.default_cost={ANCHOR_COST}")
    assert cands["name"].iloc[fixed].tolist() == [FIXED]
    school = (cands["kind"] == "parcel").to_numpy()
    assert set(cost[school]) <= set(SCHOOL_COSTS) and (cost[~school] == ANCHOR_COST).all()
    # a misspelt name: one line naming the key and the closest candidate
    from careblocks.errors import CareblocksError

    for sets, needles in [
        (['sites.fixed=["PUERTA DE TEJAS"]'], ["sites.fixed", "did you mean", "'PUERTA DE TEJA'"]),
        (['sites.cost_column="precio"', "sites.default_cost=1"], ["precio", "sites.cost_column", "NOMBRE_SED"]),
        (['sites.cost_column="cost"'], ["sites.cost_column", "sites.default_cost"]),
        (['sites.fixed_column="NOMBRE_SED"'], ["NOMBRE_SED", "sites.fixed_column", "yes/no"]),
    ]:
        with pytest.raises(CareblocksError) as e:
            _candidates(fontibon_ctx, schools, *sets)
        msg = str(e.value)
        assert "\n" not in msg and all(n in msg for n in needles), msg


def _one_line_error(r, *needles: str) -> None:
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert err.startswith("careblocks: error: ") and "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


@pytest.mark.parametrize("sets, needles", [
    # a fixed block that is not a candidate (checked by validate on the candidates run builds)
    (['sites.fixed=["PUERTA DE TEJAS"]'], ["sites.fixed", "did you mean", "'PUERTA DE TEJA'"]),
    # a negative budget, a budget without costs, a misspelt key
    (["sites.budget=-5", "sites.default_cost=1"], ["sites.budget", ">= 0"]),
    (["sites.budget=5"], ["sites.budget", "sites.cost_column"]),
    (["sites.budgett=5"], ["sites.budgett", "did you mean 'budget'"]),
])
def test_bad_cost_and_fixed_keys_are_one_line(schools, sets, needles) -> None:
    args = ["validate", str(CONFIG), "--set", _layer(schools)]
    for s in sets:
        args += ["--set", s]
    _one_line_error(invoke(*args), *needles)
