"""Outputs of ``careblocks prioritise``: a GeoPackage, a map and a table, written together.

* ``prioritise.gpkg``: layers ``census_units`` (every unit: counts, indicators, components,
  ``care_need_index``, ``rank``) and ``districts`` (the same among districts), and the table
  ``run_metadata`` (formula, weights, groups, facilities, distance method);
* ``prioritise.html``: the units and districts coloured by the index, ranks in the tooltips
  (Leaflet embedded; names from data HTML-escaped);
* ``prioritise_units.csv`` and ``prioritise_districts.csv``: the rankings, best first.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from careblocks.outputs._common import json_default

__all__ = ["write_prioritisation"]

_NEED_COLORS = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")


def _metadata(res, config) -> Any:
    import pandas as pd

    from careblocks._version import __version__

    rows = {
        "careblocks_version": __version__,
        "study": config.study.name,
        "formula_units": res.formula,
        "formula_districts": res.district_formula or "",
        "info": json.dumps(res.info, default=json_default, ensure_ascii=False),
    }
    return pd.DataFrame({"key": list(rows), "value": [str(v) for v in rows.values()]})


def _gpkg(res, config, path: Path) -> Path:
    import pyogrio

    pyogrio.write_dataframe(res.units, path, layer="census_units", driver="GPKG")
    if res.districts is not None:
        pyogrio.write_dataframe(res.districts, path, layer="districts", driver="GPKG", append=True)
    pyogrio.write_dataframe(_metadata(res, config), path, layer="run_metadata", driver="GPKG",
                            append=True)
    return path


def _csv(gdf, path: Path) -> Path:
    gdf.drop(columns="geometry").to_csv(path, index=False)
    return path


def _map(res, config, path: Path) -> Path:
    import branca.colormap as bcm
    import folium
    from branca.element import Element

    from careblocks.outputs.webmap import _area_layer, _feature_collection, _inline_assets, esc

    units = res.units
    b = units.total_bounds
    m = folium.Map(tiles="OpenStreetMap", control_scale=True)
    m.fit_bounds([[b[1], b[0]], [b[3], b[2]]])
    cmap = bcm.LinearColormap(list(_NEED_COLORS), vmin=0.0, vmax=1.0, caption="care-need index")

    def color(v):
        return "#cccccc" if v is None else cmap(float(v))

    comps = [c for c in ("care_demand", "caregiver_density", "poverty_score", "supply_gap")
             if c in units.columns]
    name_col = "census_name" if "census_name" in units.columns else "census_unit_id"
    props = [name_col, *(["district"] if "district" in units.columns else []), "rank",
             "care_need_index", *comps, "census_total"]
    dec = {c: 3 for c in ("care_need_index", *comps)} | {"census_total": 0}
    fc = _feature_collection(units, props, dec)
    _area_layer(fc, f"Census units ({len(units)}), by care need", "care_need_index", color,
                props, ["unit", *(["district"] if "district" in units.columns else []), "rank",
                        "care-need index", *[c.replace("_", " ") for c in comps], "people"],
                True).add_to(m)
    if res.districts is not None:
        d = res.districts
        dprops = ["district", "rank", "care_need_index", *[c for c in comps if c in d.columns],
                  "census_total"]
        dfc = _feature_collection(d, dprops, dec)
        _area_layer(dfc, f"Districts ({len(d)}), by care need", "care_need_index", color, dprops,
                    ["district", "rank", "care-need index",
                     *[c.replace("_", " ") for c in comps if c in d.columns], "people"],
                    False).add_to(m)
    cmap.add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    top = units.head(int(config.prioritise.top))
    rows = "".join(
        f"<tr><td>{int(r['rank'])}</td><td>{esc(r[name_col])}</td>"
        f"<td>{esc(r['district']) if 'district' in units.columns else ''}</td>"
        f"<td>{float(r['care_need_index']):.2f}</td></tr>"
        for _, r in top.iterrows()
    )
    box = (
        "<div style='position:fixed;bottom:20px;left:10px;z-index:999;background:white;"
        "padding:6px 10px;font:12px sans-serif;max-height:45%;overflow:auto;border-radius:4px'>"
        f"<b>{html.escape(config.study.name)}: where care need is highest</b><br>"
        f"{len(units)} census units"
        + (f", {len(res.districts)} districts" if res.districts is not None else "")
        + "<table><tr><th>#</th><th>unit</th><th>district</th><th>index</th></tr>"
        + rows + "</table></div>"
    )
    m.get_root().html.add_child(Element(box))
    _inline_assets(m)
    path.write_text(m.get_root().render(), encoding="utf-8")
    return path


def write_prioritisation(res, config, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write the GeoPackage, map and tables into ``out_dir`` as one set (all or none)."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    jobs = [
        (d / "prioritise.gpkg", lambda p: _gpkg(res, config, p)),
        (d / "prioritise.html", lambda p: _map(res, config, p)),
        (d / "prioritise_units.csv", lambda p: _csv(res.units, p)),
    ]
    if res.districts is not None:
        jobs.append((d / "prioritise_districts.csv", lambda p: _csv(res.districts, p)))
    staged: list[tuple[Path, Path]] = []
    try:
        for target, writer in jobs:
            tmp = target.with_name(f".{target.stem}.{os.getpid()}.partial{target.suffix}")
            tmp.unlink(missing_ok=True)
            writer(tmp)
            staged.append((tmp, target))
        for tmp, target in staged:
            os.replace(tmp, target)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return [t for _, t in staged]


