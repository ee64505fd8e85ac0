"""Census allocation and equity tables: careblocks against a plain geopandas/pandas baseline.

Run from the project root: ``.venv/bin/python benchmarks/demand.py [n_buildings] [n_origins]``.
Prints times and ratios (baseline / careblocks) measured in the same process; no thresholds.

* allocation: Freetown's 20 population polygons spread over ``n_buildings`` synthetic building
  footprints scattered over the CBD-to-Western-Area box, cut by the CBD-sized study area;
  baseline = ``gpd.overlay`` for the cut + ``sjoin`` + ``groupby().transform`` for the shares.
* equity: ``n_origins`` origins, 4 services, 3 groups, 20 districts, 4 thresholds; baseline =
  pandas ``groupby().apply`` computing the same shares and Gini.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import geopandas as gpd  # noqa: E402
import pandas as pd  # noqa: E402
import shapely  # noqa: E402
from _common import timed  # noqa: E402

from careblocks.config import data_dir  # noqa: E402
from careblocks.demand.census import TOTAL, allocate_census  # noqa: E402
from careblocks.demand.equity import equity_table, gini  # noqa: E402

CRS = "EPSG:32628"


def bench_allocation(n: int) -> None:
    raw = gpd.read_file(data_dir() / "freetown" / "population_sites_western_area.geojson")
    census = gpd.GeoDataFrame({TOTAL: raw["total_pop_e"].astype(float),
                               "children_under5": raw["children_under5"].astype(float)},
                              geometry=raw.geometry, crs=raw.crs).to_crs(CRS)
    urban = census[raw["admin2"] == "Western Area Urban"].union_all()
    rng = np.random.default_rng(0)
    x0, y0, x1, y1 = urban.bounds
    xs, ys = rng.uniform(x0, x1, n * 3), rng.uniform(y0, y1, n * 3)
    keep = shapely.contains_xy(urban, xs, ys)
    xs, ys = xs[keep][:n], ys[keep][:n]
    sizes = rng.uniform(6, 20, len(xs))
    b = gpd.GeoDataFrame({"origin_id": np.arange(len(xs)).astype(str)},
                         geometry=shapely.box(xs, ys, xs + sizes, ys + sizes), crs=CRS)
    area = urban.centroid.buffer(3000)
    cols = [TOTAL, "children_under5"]

    def ours():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return allocate_census(b, census, cols, method="buildings", area=area)[0]

    def baseline():
        c = census.copy()
        c["unit"] = np.arange(len(c))
        c["full_area"] = c.area
        cut = gpd.overlay(c, gpd.GeoDataFrame(geometry=[area], crs=CRS), how="intersection")
        share = cut.area / cut["full_area"]
        for col in cols:
            cut[col] = cut[col] * share
        pts = b.copy()
        pts["w"] = b.area
        pts["geometry"] = b.representative_point()
        j = gpd.sjoin(pts, cut[["unit", *cols, "geometry"]], predicate="within")
        j = j[~j.index.duplicated()]
        frac = j["w"] / j.groupby("unit")["w"].transform("sum")
        out = b[["origin_id"]].copy()
        for col in cols:
            out[col] = (j[col] * frac).reindex(out.index).fillna(0.0)
        return out

    t_ours, a = timed(ours, repeat=3)
    t_base, bl = timed(baseline, repeat=3)
    print(f"allocation  {len(b):>8,} buildings  careblocks {t_ours:7.3f} s  baseline "
          f"{t_base:7.3f} s  ratio {t_base / t_ours:5.2f}x  "
          f"(totals {a[TOTAL].sum():,.0f} vs baseline {bl[TOTAL].sum():,.0f}; the baseline "
          "drops units without a building)")


def bench_equity(n: int) -> None:
    rng = np.random.default_rng(1)
    services = ["daycare", "health", "laundromat", "kitchen"]
    groups = ["population", "children_under5", "women_15plus"]
    df = pd.DataFrame({g: rng.gamma(2.0, 20.0, n) for g in groups})
    for s in services:
        t = rng.gamma(3.0, 5.0, n)
        t[rng.random(n) < 0.03] = np.nan
        df[f"walk_min_{s}"] = t
    df["district"] = rng.integers(0, 20, n).astype(str)
    thresholds = (10, 15, 20, 30)

    def ours():
        return equity_table(df, services, groups, thresholds=thresholds, district_col="district")

    def baseline():
        rows = []
        for s in services:
            for g in groups:
                sub = df[[f"walk_min_{s}", g, "district"]].rename(
                    columns={f"walk_min_{s}": "t", g: "w"})
                for name, part in [("all", sub), *sub.groupby("district")]:
                    gi = gini(part["t"].to_numpy(), part["w"].to_numpy())
                    for thr in thresholds:
                        within = part.loc[part["t"] <= thr, "w"].sum()
                        rows.append((s, g, name, thr, within / part["w"].sum(), gi))
        return pd.DataFrame(rows)

    t_ours, a = timed(ours, repeat=3)
    t_base, bl = timed(baseline, repeat=3)
    print(f"equity      {n:>8,} origins    careblocks {t_ours:7.3f} s  baseline "
          f"{t_base:7.3f} s  ratio {t_base / t_ours:5.2f}x  ({len(a):,} rows; adds Palma, "
          "mean, unreachable share)")


if __name__ == "__main__":
    nb = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    no = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
    bench_allocation(nb)
    bench_equity(no)
