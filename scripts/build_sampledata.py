"""Rebuild src/careblocks/sampledata/ (the embedded Fontibón study) from the shared data.

Run from the project root: `python scripts/build_sampledata.py [DATA_DIR]` (default
`$CAREBLOCKS_DATA_DIR`, else ../shared/data). Reads, never modifies, the shared files; writes:

- fontibon.osm.pbf                 the Fontibón OSM extract, copied unchanged
- fontibon_localidad.gpkg          the Fontibón polygon of IDECA's localidades (to EPSG:4326)
- fontibon_sectores_cnpv2018.gpkg  the census sectors overlapping it (DANE CNPV 2018), the
                                   columns the preset uses
- fontibon_indicadores.gpkg        Fontibón's row of the localidad care indicators, the
                                   columns the preset uses
- sdis_cuidado_fontibon.gpkg       SDIS disability-care centres within 3 km of Fontibón
- colegios_fontibon.gpkg           public schools with inclusive education in Fontibón
                                   (COD_LOCA 09), name and enrolment columns
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import geopandas as gpd
import pyogrio

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "careblocks" / "sampledata"
SECTOR_COLUMNS = ["SETU_CCNCT", "LocNombre", "STVIVIENDA", "STP27_PERS", "STP32_1_SE",
                  "STP32_2_SE", *[f"STP34_{i}_ED" for i in range(1, 10)], "IPM_PROMEDIO"]
INDICATOR_COLUMNS = ["LocNombre", "cod_localidad", "porc_pobl_4_menos", "porc_pobl_65mas",
                     "porc_poblacion_81mas", "relacion_dependencia", "porc_mujeres_tarea_hogar",
                     "monoparental_femeninos", "no_lavadora"]
SCHOOL_COLUMNS = ["DANE12_SED", "NOMBRE_EST", "NOMBRE_SED", "TMATRIC_GENERAL", "COD_LOCA",
                  "direccion"]


def write(gdf: gpd.GeoDataFrame, name: str) -> None:
    path = OUT / name
    path.unlink(missing_ok=True)
    pyogrio.write_dataframe(gdf, path, driver="GPKG", layer=path.stem)
    print(f"{name}: {len(gdf)} features, {path.stat().st_size / 1024:.0f} KB")


def main(data: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    b = data / "bogota"
    shutil.copyfile(b / "osm/fontibon_overpass_2023-05-29.osm.pbf", OUT / "fontibon.osm.pbf")
    loc = gpd.read_file(b / "admin/localidades_ideca/loca.shp")
    fon = loc[loc["LocNombre"] == "FONTIBON"][["LocNombre", "geometry"]].to_crs(4326)
    write(fon.reset_index(drop=True), "fontibon_localidad.gpkg")
    area = fon.geometry.iloc[0]
    sec = gpd.read_file(b / "census/sectores_censales_cnpv2018.gpkg")
    sec = sec[sec.intersects(area)][[*SECTOR_COLUMNS, "geometry"]]
    write(sec.reset_index(drop=True), "fontibon_sectores_cnpv2018.gpkg")
    ind = gpd.read_file(b / "census/indicadores_cuidado_localidades.gpkg")
    ind = ind[(ind["LocNombre"] == "Fontibon") & ~ind.geometry.is_empty][[*INDICATOR_COLUMNS, "geometry"]]
    write(ind.reset_index(drop=True), "fontibon_indicadores.gpkg")
    sdis = gpd.read_file(b / "facilities/cuidados_sdis_discapacidad.gpkg")
    near = gpd.GeoSeries([area], crs=4326).to_crs(32618).buffer(3000).to_crs(4326).iloc[0]
    write(sdis[sdis.within(near)].reset_index(drop=True), "sdis_cuidado_fontibon.gpkg")
    sch = gpd.read_file(b / "facilities/colegios_educacion_inclusiva.gpkg")
    sch = sch[sch["COD_LOCA"].astype(str) == "09"][[*SCHOOL_COLUMNS, "geometry"]]
    write(sch.reset_index(drop=True), "colegios_fontibon.gpkg")
    total = sum(p.stat().st_size for p in OUT.iterdir() if p.is_file())
    print(f"total {total / 1e6:.2f} MB in {OUT}")


if __name__ == "__main__":
    arg = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CAREBLOCKS_DATA_DIR")
    main(Path(arg) if arg else (ROOT / ".." / "shared" / "data").resolve())
