"""A large test city made by tiling a real extract: Porto Alegre's r5r sample, copied ``nx * ny``
times side by side.

Every copy ("tile") gets its OSM ids shifted by ``(tile + 1) * ID_STEP`` and its coordinates
shifted east/north by the extent of the extract plus a gap; short footways (new OSM ways) join
each tile to its east and north neighbours, so that the whole city is one walking network. The
result is written as a real PBF with pyosmium's writer, with a matching population grid
(points at random street nodes, ``population`` people each), service and candidate layers
(CSV points) and one GTFS feed with the EPTC bus feed replicated per tile (stop, trip, route
and shape ids suffixed ``_t<tile>``, stops shifted like the streets). Nothing is downloaded.

Used by ``benchmarks/metro.py`` and tested in ``tests/test_metro_city.py``.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: OSM ids of tile t are the originals plus (t + 1) * ID_STEP (the extract's ids are < 1e10)
ID_STEP = 10_000_000_000
#: gap between tiles (degrees, about 110 m)
GAP_DEG = 0.001
BASE_PBF = "porto_alegre/poa_osm.pbf"
BASE_GTFS = "porto_alegre/poa_eptc.zip"
GTFS_DATE = "2019-05-15"
#: facilities per tile of each service (the counts of Fontibón's OSM, as in benchmarks/_common.py)
SERVICES_PER_TILE = {"daycare": 17, "health": 12, "laundromat": 15, "community_kitchen": 2}
#: links (footways) between two neighbouring tiles
LINKS = 4


@dataclass(frozen=True)
class City:
    folder: Path
    pbf: Path
    gtfs: Path
    population: Path
    services: dict[str, Path]
    candidates: Path
    tiles: int
    base_walk_nodes: int
    config: Path


def _base_nodes(data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Node ids and lon/lat of the walking network of the base extract (its kept component),
    and its lon/lat extent."""
    import warnings

    from careblocks.io.osm import read_osm_network
    from careblocks.network.graph import build_walk_network, local_crs

    nodes, edges = read_osm_network(data / BASE_PBF)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net, _ = build_walk_network(nodes, edges, crs=local_crs(nodes.geometry))
    ids = np.sort(net.node_id)
    nid = nodes["node_id"].to_numpy()
    pos = np.searchsorted(nid, ids)
    lon = nodes.geometry.x.to_numpy()[pos]
    lat = nodes.geometry.y.to_numpy()[pos]
    all_lon, all_lat = nodes.geometry.x.to_numpy(), nodes.geometry.y.to_numpy()
    return ids, lon, lat, float(all_lon.max() - all_lon.min()), float(all_lat.max() - all_lat.min())


def write_tiled_pbf(src: Path, dst: Path, nx: int, ny: int, dlon: float, dlat: float,
                    links: list[tuple[int, int]], *, id_step: int = ID_STEP) -> None:
    """``nx * ny`` shifted copies of ``src`` (nodes, ways; relations dropped) plus one footway
    per pair of (already shifted) node ids in ``links``, as a PBF. The ids of tile ``t`` are
    the originals plus ``(t + 1) * id_step``: ValueError when ``src`` has ids that large."""
    import osmium

    if dst.exists():
        dst.unlink()
    w = osmium.SimpleWriter(str(dst))
    try:
        tiles = [(t % nx, t // nx) for t in range(nx * ny)]
        for t, (i, j) in enumerate(tiles):  # nodes of every tile first (ids ascending)
            off = (t + 1) * id_step
            for n in osmium.FileProcessor(str(src), osmium.osm.NODE):
                if n.id >= id_step:
                    raise ValueError(f"{src}: node id {n.id} is not below id_step {id_step}")
                loc = n.location
                w.add_node(n.replace(id=n.id + off,
                                     location=osmium.osm.Location(loc.lon + i * dlon, loc.lat + j * dlat)))
        for t in range(len(tiles)):
            off = (t + 1) * id_step
            for way in osmium.FileProcessor(str(src), osmium.osm.WAY):
                w.add_way(way.replace(id=way.id + off, nodes=[r.ref + off for r in way.nodes]))
        for k, (a, b) in enumerate(links):
            w.add_way(osmium.osm.mutable.Way(id=(len(tiles) + 1) * id_step + k + 1, nodes=[a, b],
                                             tags={"highway": "footway", "note": "tile link"}))
    finally:
        w.close()


def _links(ids: np.ndarray, lon: np.ndarray, lat: np.ndarray, nx: int, ny: int) -> list[tuple[int, int]]:
    east, west = np.argsort(-lon)[:LINKS], np.argsort(lon)[:LINKS]
    north, south = np.argsort(-lat)[:LINKS], np.argsort(lat)[:LINKS]
    out = []
    for t in range(nx * ny):
        i, j = t % nx, t // nx
        off = (t + 1) * ID_STEP
        if i + 1 < nx:
            out += [(int(ids[a] + off), int(ids[b] + off + ID_STEP)) for a, b in zip(east, west, strict=True)]
        if j + 1 < ny:
            out += [(int(ids[a] + off), int(ids[b] + off + nx * ID_STEP)) for a, b in zip(north, south, strict=True)]
    return out


def write_tiled_gtfs(src: Path, dst: Path, nx: int, ny: int, dlon: float, dlat: float) -> None:
    """The feed ``src`` copied per tile: ids suffixed ``_t<tile>``, stops shifted (shapes dropped)."""
    import pandas as pd

    suffixed = {"stops.txt": ["stop_id", "parent_station"], "routes.txt": ["route_id"],
                "trips.txt": ["trip_id", "route_id", "shape_id"],
                "stop_times.txt": ["trip_id", "stop_id"], "frequencies.txt": ["trip_id"]}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in zin.namelist():
            if name in ("shapes.txt",):
                continue
            df = pd.read_csv(zin.open(name), dtype=str, keep_default_na=False)
            if name == "trips.txt" and "shape_id" in df:
                df = df.drop(columns="shape_id")
            if name not in suffixed:
                zout.writestr(name, df.to_csv(index=False))
                continue
            with zout.open(name, "w") as fh:
                text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
                for t in range(nx * ny):
                    i, j = t % nx, t // nx
                    part = df.copy()
                    for col in suffixed[name]:
                        if col in part:
                            part[col] = part[col].where(part[col] == "", part[col] + f"_t{t}")
                    if name == "stops.txt":
                        part["stop_lon"] = (part["stop_lon"].astype(float) + i * dlon).map("{:.7f}".format)
                        part["stop_lat"] = (part["stop_lat"].astype(float) + j * dlat).map("{:.7f}".format)
                    part.to_csv(text, index=False, header=(t == 0))
                text.flush()
                text.detach()


def _points_csv(path: Path, lon: np.ndarray, lat: np.ndarray, extra: dict[str, np.ndarray]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        wr = csv.writer(fh)
        wr.writerow(["id", "lon", "lat", *extra])
        cols = list(extra.values())
        for k in range(lon.size):
            wr.writerow([k + 1, f"{lon[k]:.7f}", f"{lat[k]:.7f}", *(c[k] for c in cols)])


def make_city(folder: Path, data: Path, nx: int, ny: int, *, origins: int, candidates: int,
              people: int, seed: int = 0, gtfs: bool = True) -> City:
    """Write the tiled city into ``folder`` (reused when its ``city.json`` says the same
    parameters) and a study config for it."""
    folder.mkdir(parents=True, exist_ok=True)
    params = {"nx": nx, "ny": ny, "origins": origins, "candidates": candidates, "people": people,
              "seed": seed, "gtfs": gtfs, "version": 1}
    stamp = folder / "city.json"
    ids, lon, lat, ext_lon, ext_lat = _base_nodes(data)
    dlon, dlat = ext_lon + GAP_DEG, ext_lat + GAP_DEG
    tiles = nx * ny
    paths = {"pbf": folder / "city.osm.pbf", "gtfs": folder / "city_gtfs.zip",
             "population": folder / "population.csv", "candidates": folder / "candidates.csv",
             "config": folder / "city.toml"}
    services = {s: folder / f"{s}.csv" for s in SERVICES_PER_TILE}
    fresh = stamp.is_file() and json.loads(stamp.read_text()) == params
    if not fresh:
        write_tiled_pbf(data / BASE_PBF, paths["pbf"], nx, ny, dlon, dlat, _links(ids, lon, lat, nx, ny))
        if gtfs:
            write_tiled_gtfs(data / BASE_GTFS, paths["gtfs"], nx, ny, dlon, dlat)
        rng = np.random.default_rng(seed)

        def at_nodes(k: int, jitter_deg: float = 0.0002) -> tuple[np.ndarray, np.ndarray]:
            tile = rng.integers(0, tiles, k)
            pick = rng.integers(0, ids.size, k)
            return (lon[pick] + (tile % nx) * dlon + rng.uniform(-jitter_deg, jitter_deg, k),
                    lat[pick] + (tile // nx) * dlat + rng.uniform(-jitter_deg, jitter_deg, k))

        x, y = at_nodes(origins)
        per = np.full(origins, people // origins, dtype=np.int64)
        per[: people - int(per.sum())] += 1
        _points_csv(paths["population"], x, y, {"population": per})
        for s, k in SERVICES_PER_TILE.items():
            x, y = at_nodes(k * tiles)
            _points_csv(services[s], x, y, {})
        x, y = at_nodes(candidates)
        _points_csv(paths["candidates"], x, y, {"name": np.array([f"site {k + 1}" for k in range(candidates)])})
        stamp.write_text(json.dumps(params))
    paths["config"].write_text(_config_text(paths, services, gtfs), encoding="utf-8")
    return City(folder=folder, pbf=paths["pbf"], gtfs=paths["gtfs"], population=paths["population"],
                services=services, candidates=paths["candidates"], tiles=tiles,
                base_walk_nodes=int(ids.size), config=paths["config"])


def _config_text(paths: dict[str, Path], services: dict[str, Path], gtfs: bool) -> str:
    def q(p: Path) -> str:
        return json.dumps(str(p))

    lines = [
        "[study]", 'name = "Tiled metro city - benchmark"', "",
        "[network]", 'source = "osm"', f"path = {q(paths['pbf'])}",
        "cache = false  # every run reads and builds everything", "",
        "[population]", 'source = "layer"',
        f'layer = {{ path = {q(paths["population"])}, x = "lon", y = "lat", crs = "EPSG:4326" }}',
        'column = "population"', 'id_column = "id"', "",
    ]
    for s, p in services.items():
        lines += [f"[services.{s}]", "use_osm = false",
                  f'layers = [ {{ path = {q(p)}, x = "lon", y = "lat", crs = "EPSG:4326", label = "generated" }} ]', ""]
    if gtfs:
        lines += ["[transit]", "enabled = true", f"feeds = [{q(paths['gtfs'])}]", f'date = "{GTFS_DATE}"',
                  'window_start = "14:00"', 'window_end = "16:00"  # 120 departure minutes', ""]
    lines += ["[access]", "threshold_min = 15", "",
              "[sites]", "enabled = true", "k = 10", 'method = "greedy"', "candidates_osm_anchors = false",
              f'candidates_layer = {{ path = {q(paths["candidates"])}, x = "lon", y = "lat", crs = "EPSG:4326" }}',
              "curve_k_max = 0", ""]
    return "\n".join(lines)
