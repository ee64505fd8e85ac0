"""Score candidate Care Block sites: catchments, explainable components, score and rank.

Catchments are a sparse coverage matrix (candidates x origins, data = seconds), built from
ONE pass of bounded searches from the candidates' nodes (:func:`careblocks.network.search.reach_sparse`,
the candidate's snap leg as the start offset) followed by a gather from reached nodes to the
origins snapped there, adding each origin's own snap leg. Nothing dense of size
candidates x nodes is ever built. See ``docs/site_selection.md`` for every formula.

Components (one column each; ``<s>`` is each service the block offers, ``sites.offers``):

- ``population_covered``: people within T of the candidate; ``<group>_covered`` for each care
  group on the origins (``children_under5``, ``older_60plus``, ...); ``need_covered`` =
  sum of population x ``care_need_index`` when the origins carry the index.
- ``demand_covered``: ``need_covered`` when present, else ``population_covered`` (the
  component that enters the score).
- ``gap_closed_<s>``: people within T of the candidate who today are beyond T of service
  ``<s>`` (``walk_min_<s>`` > T or unreachable); ``gap_closed`` is the sum over services
  (person-services).
- ``colocated_<s>``: existing facilities of ``<s>`` within T of the candidate (the anchor +
  alternates model); ``colocated_services`` their total; ``is_public_anchor`` (0/1).
- ``hours_returned_<s>``: weekly caregiver hours returned on the trips people make today =
  round trips per week per user x 2 x one-way minutes saved x users / 60, summed over covered
  origins, where the one-way saving is ``max(0, current - time to the block)`` for origins
  that reach the service today within the cap (``sites.current_time_cap_min``, default
  60 min; see :func:`today_minutes`) and the users are ``services.<s>.user_share`` of the
  households or of the care group ``services.<s>.user_group`` (see :func:`user_households`);
  ``hours_returned_week`` their sum.
- ``first_access_<s>``: people within T of the candidate who cannot reach the service today
  (unreachable, or beyond the cap): new access, counted as people, never as hours.
- ``transit_population_covered``: people within T by walk + transit (or on foot), when a
  walk + transit coverage matrix is given (``sites.use_transit``, built by
  :func:`careblocks.transit.reach.transit_coverage`).

``score`` = sum of weight x min-max-normalised component / sum of weights (in [0, 1]);
``rank`` 1 = best, ties broken by ``candidate_id``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely

from careblocks import columns as C
from careblocks.columns import CARE_GROUPS
from careblocks.config import DEFAULT_SITE_WEIGHTS
from careblocks.errors import ConfigError, DataQualityWarning, MissingColumnError
from careblocks.network.cost import WalkCost
from careblocks.network.search import gather_targets, min_union, nearest_times, reach_from
from careblocks.sites.hours import (
    _col,
    _counts,
    current_minutes,
    hours_at,
    hours_pair_values,
    hours_returned,
    household_size,
    time_cap_min,
    today_minutes,
    trips_per_week,
    user_households,
)

if TYPE_CHECKING:  # pragma: no cover
    from careblocks.config import Config




# --------------------------------------------------------------------------------------
# catchments: bounded searches + gather
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Catchments:
    """Bounded-search results of the candidates, shared by scoring, selection and maps.

    Attributes
    ----------
    reach
        Candidates x network nodes, seconds (candidate snap leg included).
    coverage
        Candidates x origins, seconds (both snap legs included), entries <= ``limit_s``.
    services
        Candidates x existing facilities, seconds, entries <= ``limit_s``.
    limit_s
        The catchment threshold in seconds.
    """

    reach: sp.csr_matrix
    coverage: sp.csr_matrix
    services: sp.csr_matrix | None
    limit_s: float

    @property
    def threshold_min(self) -> float:
        return self.limit_s / 60.0


def sites_threshold_min(config: Config) -> float:
    """``sites.threshold_min`` or, when not set, ``access.threshold_min``."""
    t = config.sites.threshold_min
    return float(t if t is not None else config.access.threshold_min)


def compute_catchments(
    config: Config,
    candidates: gpd.GeoDataFrame,
    origins: gpd.GeoDataFrame,
    network,
    *,
    services: gpd.GeoDataFrame | None = None,
    reach_fn=None,
) -> Catchments:
    """Catchment of every candidate: origins and facilities within T minutes on foot.

    Parameters
    ----------
    config
        ``walk.speed_kmh`` (as :meth:`WalkCost.from_config`) and the threshold
        (:func:`sites_threshold_min`) are used.
    candidates, origins, services
        Each with ``node`` and ``snap_m`` columns (snap legs walked at the same speed).
    network
        :class:`careblocks.network.WalkNetwork`.
    reach_fn
        Replaces :func:`reach_from` (tests, baselines); same signature.

    Returns
    -------
    Catchments
    """
    for what, df in (("candidates", candidates), ("origins", origins)):
        for col in ("node", "snap_m"):
            if col not in df.columns:
                raise MissingColumnError(f"{what}: column '{col}' missing; snap them to the network first")
    cost = WalkCost.from_config(config.walk)
    limit_s = cost.limit_s(sites_threshold_min(config))
    has_svc = services is not None and len(services) > 0
    shared = {
        "network": network, "cost": cost, "limit_s": limit_s,
        "cand": (candidates["node"].to_numpy(np.int64), cost.leg_seconds(candidates["snap_m"].to_numpy(float))),
        "orig": (origins["node"].to_numpy(np.int64), cost.leg_seconds(origins["snap_m"].to_numpy(float))),
        "svc": (services["node"].to_numpy(np.int64), cost.leg_seconds(services["snap_m"].to_numpy(float)))
        if has_svc else None,
    }
    if reach_fn is not None or len(candidates) == 0:  # one call (the replacement search)
        reach, cov, svc = _catchment_rows(0, len(candidates), **shared, reach_fn=reach_fn)
    else:  # one bounded search per candidate: in chunks of candidates, here or on a cluster
        from careblocks.compute import map_chunks

        parts = map_chunks(_catchment_rows, len(candidates), shared, keep=("network",), label="catchments")
        reach = _stack([p[0] for p in parts])
        cov = _stack([p[1] for p in parts])
        svc = _stack([p[2] for p in parts]) if has_svc else None
    return Catchments(reach=reach, coverage=cov, services=svc, limit_s=limit_s)


def _stack(parts: list[sp.csr_matrix]) -> sp.csr_matrix:
    if len(parts) == 1:
        return parts[0]
    m = sp.vstack(parts, format="csr")
    m.sort_indices()
    return m


def _catchment_rows(lo: int, hi: int, *, network, cost: WalkCost, limit_s: float, cand, orig, svc,
                    reach_fn=None) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix | None]:
    """Reach (nodes), coverage (origins) and services rows of candidates ``lo..hi-1``."""
    reach = (reach_fn or reach_from)(network, cand[0][lo:hi], cand[1][lo:hi], cost=cost, limit_s=limit_s)
    cov = gather_targets(reach, orig[0], orig[1], limit_s)
    s = gather_targets(reach, svc[0], svc[1], limit_s) if svc is not None else None
    return reach, cov, s


# --------------------------------------------------------------------------------------
# components
# --------------------------------------------------------------------------------------


def _warn_upper_bounds(origins, offers, currents, cap: float) -> None:
    """Say when the hours returned rest on the upper-bound assumptions."""
    if "daycare" in offers and "children_under5" not in origins.columns:
        warnings.warn(
            "sites: the origins have no children_under5, so daycare users in the hours "
            "returned are estimated as population x services.daycare.user_group_share; map "
            "census.groups.children_under5 for a measured figure",
            DataQualityWarning,
            stacklevel=3,
        )
    none = [s for s in offers if not np.isfinite(today_minutes(currents[s], cap)).any()]
    if none:
        warnings.warn(
            f"sites: no facility of {', '.join(none)} is within {cap:g} minutes of anyone "
            "(sites.current_time_cap_min), so a Care Block offering it gives new access "
            "(first_access_<s>, people) and no hours returned; add the facilities "
            "(services.<s>.layers) if they exist",
            DataQualityWarning,
            stacklevel=3,
        )


def _pattern(m: sp.csr_matrix) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(m.nnz), m.indices, m.indptr), shape=m.shape)


def score_components(
    config: Config,
    origins: pd.DataFrame,
    catchments: Catchments,
    *,
    services: pd.DataFrame | None = None,
    is_public_anchor: np.ndarray | None = None,
    transit_coverage: sp.csr_matrix | None = None,
) -> pd.DataFrame:
    """One row per candidate (catchment row order), one column per component.

    Parameters
    ----------
    origins
        ``population`` and ``walk_min_<s>``; optional care-group columns, ``households`` and
        ``care_need_index``.
    catchments
        From :func:`compute_catchments`.
    services
        Existing facilities (``service`` column) in the column order of ``catchments.services``.
    is_public_anchor
        Boolean per candidate.
    transit_coverage
        Candidates x origins within T by walk + transit (walking included), as from
        :func:`careblocks.transit.reach.transit_coverage`; adds
        ``transit_population_covered`` (its pattern times ``population``).
    """
    if "population" not in origins.columns:
        raise MissingColumnError("origins: column 'population' missing; load origins with population first")
    T = catchments.threshold_min
    cov = catchments.coverage
    pat = _pattern(cov)
    # gaps closed and hours returned by the faster of walking and walk + transit (transit studies)
    fast = cov if transit_coverage is None else min_union(cov, transit_coverage)
    fast_pat = _pattern(fast)
    n = cov.shape[0]
    out: dict[str, np.ndarray] = {}
    pop = _counts(origins, "population")
    out["population_covered"] = pat @ pop
    for g in CARE_GROUPS:
        if g in origins.columns:
            out[f"{g}_covered"] = pat @ _counts(origins, g)
    if "care_need_index" in origins.columns:
        need = np.nan_to_num(_col(origins, "care_need_index"), nan=0.0)
        out["need_covered"] = pat @ (pop * need)
    out["demand_covered"] = out.get("need_covered", out["population_covered"])
    offers = list(config.sites.offers)
    hh_size = household_size(config)
    cap = time_cap_min(config)
    gap_total = np.zeros(n)
    hours_total = np.zeros(n)
    currents = {s: current_minutes(origins, s) for s in offers}
    _warn_upper_bounds(origins, offers, currents, cap)
    for s in offers:
        cur = currents[s]
        beyond = ~np.isfinite(cur) | (cur > T)
        out[f"gap_closed_{s}"] = fast_pat @ (pop * beyond)
        gap_total += out[f"gap_closed_{s}"]
    out["gap_closed"] = gap_total
    for s in offers:
        out[f"first_access_{s}"] = fast_pat @ (pop * ~np.isfinite(today_minutes(currents[s], cap)))
    for s in offers:
        h = hours_returned(fast, currents[s], user_households(origins, s, hh_size, config),
                           trips_per_week(config, s), cap_min=cap)
        out[f"hours_returned_{s}"] = h
        hours_total += h
    out["hours_returned_week"] = hours_total
    total_col = np.zeros(n)
    if catchments.services is not None and services is not None and len(services):
        kinds = services["service"].astype(str).to_numpy()
        sp_pat = _pattern(catchments.services)
        for s in sorted(set(kinds)):
            c = sp_pat @ (kinds == s).astype(float)
            out[f"colocated_{s}"] = c
            total_col += c
    out["colocated_services"] = total_col
    out["is_public_anchor"] = (
        np.zeros(n) if is_public_anchor is None else np.asarray(is_public_anchor, dtype=float)
    )
    if transit_coverage is not None:
        out["transit_population_covered"] = _pattern(sp.csr_matrix(transit_coverage)) @ pop
    return pd.DataFrame(out)


def weighted_score(
    components: pd.DataFrame, weights: Mapping[str, float] | None, candidate_ids: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """``score`` (sum of weight x min-max component / sum of weights) and ``rank``.

    Components named in ``weights`` but absent (e.g. transit without GTFS) are skipped; a
    name that is no component raises :class:`ConfigError`.
    """
    w = dict(DEFAULT_SITE_WEIGHTS)
    if weights:
        w = dict(weights)
    known = set(components.columns) | {"transit_population_covered", "need_covered"}
    for k, v in w.items():
        if k not in known:
            raise ConfigError(
                f"config key 'sites.weights.{k}': not a score component; use one of "
                + ", ".join(sorted(components.columns))
            )
        if not v >= 0:
            raise ConfigError(f"config key 'sites.weights.{k}': must be >= 0, got {v}")
    n = len(components)
    score = np.zeros(n)
    wsum = 0.0
    for k, v in w.items():
        if k not in components.columns or v == 0:
            continue
        x = components[k].to_numpy(dtype=float)
        lo, hi = np.nanmin(x) if n else 0.0, np.nanmax(x) if n else 0.0
        norm = (x - lo) / (hi - lo) if hi > lo else np.zeros(n)
        score += v * norm
        wsum += v
    if wsum > 0:
        score /= wsum
    ids = np.asarray(candidate_ids, dtype=str)
    order = np.lexsort((ids, -np.round(score, 12)))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    return score, rank


def score_candidates(
    config: Config,
    candidates: gpd.GeoDataFrame,
    origins: gpd.GeoDataFrame,
    services: gpd.GeoDataFrame | None,
    catchments: Catchments,
    *,
    transit_coverage: sp.csr_matrix | None = None,
) -> gpd.GeoDataFrame:
    """The candidates with every component, ``score`` and ``rank`` (same row order).

    Parameters
    ----------
    config
        ``sites.offers``, ``sites.weights``, ``services.<s>.trips_per_week``,
        ``census.household_size``, ``sites.current_time_cap_min``.
    candidates
        From :func:`careblocks.sites.candidates.build_candidates`.
    origins
        With ``population`` and ``walk_min_<s>`` (and optional care groups / index).
    services
        Existing facilities (``service`` column), the ones given to :func:`compute_catchments`.
    catchments
        From :func:`compute_catchments` on the same candidates, origins and services.
    transit_coverage
        Optional walk + transit coverage (see :func:`score_components`).
    """
    comp = score_components(
        config, origins, catchments, services=services,
        is_public_anchor=candidates["is_public_anchor"].to_numpy(dtype=bool)
        if "is_public_anchor" in candidates.columns else None,
        transit_coverage=transit_coverage,
    )
    score, rank = weighted_score(comp, config.sites.weights, candidates["candidate_id"].astype(str))
    out = candidates.copy()
    for c in comp.columns:
        if c == "is_public_anchor":
            continue
        out[c] = comp[c].to_numpy()
    out["score"] = score
    out["rank"] = rank
    return out


def selection_inputs(config, origins, coverage: sp.csr_matrix, *, threshold_min: float
                     ) -> tuple[sp.csr_matrix, np.ndarray | None, bool]:
    """What maximal covering selects on for ``sites.objective``: ``(matrix, weights,
    pair_gains)``. ``hours_returned`` is exact: each origin's hours with its nearest chosen
    site (:func:`hours_pair_values` on the coverage, no weights, ``pair_gains``); the other
    objectives cover ``coverage`` with :func:`objective_weights`."""
    if config.sites.objective == "hours_returned":
        return hours_pair_values(config, origins, coverage), None, True
    return coverage, objective_weights(config, origins, threshold_min=threshold_min), False


def objective_weights(config, origins, *, objective: str | None = None, threshold_min: float | None = None) -> np.ndarray:
    """Weight per origin for the maximal covering objective (``sites.objective``).

    - ``population``: people.
    - ``gap_closed``: people x number of offered services the origin is beyond T of today
      (unreachable counts as beyond): covering it closes that many person-service gaps.
    - ``hours_returned``: the caregiver hours a week the origin gets back when each trip
      made today beyond T shrinks to T (``trips x 2 x max(0, current - T) x households / 60``
      summed over offered services, trips made today only, see :func:`today_minutes`): a
      lower bound of the hours returned that does not depend on which site covers the
      origin, as maximal covering needs.
    """
    objective = objective or config.sites.objective
    T = float(threshold_min if threshold_min is not None else sites_threshold_min(config))
    pop = _counts(origins, "population")
    if objective == "population":
        return pop
    offers = list(config.sites.offers)
    if objective == "gap_closed":
        gaps = np.zeros(len(origins))
        for s in offers:
            cur = current_minutes(origins, s)
            gaps += ~np.isfinite(cur) | (cur > T)
        return pop * gaps
    if objective == "hours_returned":
        return hours_at(config, origins, T)
    raise ConfigError(
        f"config key 'sites.objective': {objective!r} is not allowed; use 'gap_closed', 'hours_returned' or 'population'"
    )


def access_after(network, origins, site_nodes, site_snap_m, *, cost: WalkCost, offers: Sequence[str],
                 transit_block_min=None, block_min=None):
    """Minutes to each offered service once the selected Care Blocks exist.

    ``walk_min_<s>`` = min(today's ``walk_min_<s>``, walking minutes to the nearest selected
    block) for every offered service, from one unbounded multi-source search over the sites
    (their snap legs as offsets; the origin's snap leg added). With ``transit_block_min``
    (walk + transit minutes to the nearest selected block, on transit studies) also
    ``best_min_<s>`` = min(today's ``best_min_<s>``, walking and walk + transit to a block).

    Parameters
    ----------
    cost
        The base walk's cost (directed, slope-aware edge times, as ``walk_min_<s>``).
    transit_block_min
        float per origin, NaN where no block is reached.
    block_min
        Walking minutes of each origin to the nearest selected block as :func:`block_minutes`
        gives them, when already known (the pipeline caches them); computed otherwise.

    Returns
    -------
    pandas.DataFrame
        Same index as ``origins``: ``walk_min_<s>`` for each offered service, ``block_min``
        (walking minutes to the nearest selected block) and, with transit, ``best_min_<s>``
        and ``block_transit_min``.
    """
    block = (np.asarray(block_min, dtype=float) if block_min is not None
             else block_minutes(network, origins, site_nodes, site_snap_m, cost=cost))
    out = pd.DataFrame(index=origins.index)
    for s in offers:
        out[C.walk_min(s)] = np.fmin(current_minutes(origins, s, mode="walk"), block)
    out["block_min"] = block
    if transit_block_min is not None:
        tb = np.asarray(transit_block_min, dtype=float)
        for s in offers:
            out[f"best_min_{s}"] = np.fmin(np.fmin(current_minutes(origins, s), block), tb)
        out["block_transit_min"] = tb
    return out


def block_minutes(network, origins, site_nodes, site_snap_m, *, cost: WalkCost) -> np.ndarray:
    """Walking minutes of each origin to the nearest of the sites (snap legs included), NaN
    where none is reached: one unbounded multi-source search over the sites."""
    nodes = np.asarray(site_nodes, dtype=np.int64)
    if not nodes.size:
        return np.full(len(origins), np.nan)
    d = nearest_times(network.indptr, network.indices, cost.inbound_seconds(network), nodes,
                      cost.leg_seconds(site_snap_m))
    block = (d[origins["node"].to_numpy(np.int64)] + cost.leg_seconds(origins["snap_m"].to_numpy(float))) / 60.0
    return np.where(np.isfinite(block), block, np.nan)


def catchment_polygons(
    network,
    reach_rows: sp.csr_matrix,
    *,
    ids: Sequence[str],
    limit_s: float,
    buffer_m: float = 40.0,
    crs: str | None = None,
) -> gpd.GeoDataFrame:
    """The walkable area of each catchment: reached edges buffered by ``buffer_m``.

    An edge is drawn when both its ends are reached within ``limit_s`` (edges half-walked at
    the limit are left out); single reached nodes get the buffer alone. Buffering streets is
    truer than a convex hull, which would paint rivers and rail yards as reachable.

    Returns
    -------
    geopandas.GeoDataFrame
        ``candidate_id``, ``threshold_min``, ``reached_nodes``, geometry (working CRS).
    """
    r = sp.csr_matrix(reach_rows)
    src = np.repeat(np.arange(network.n_nodes, dtype=np.int64), np.diff(network.indptr))
    dst = network.indices.astype(np.int64)
    once = src < dst
    src, dst = src[once], dst[once]
    geoms, counts = [], []
    for i in range(r.shape[0]):
        cols = r.indices[r.indptr[i] : r.indptr[i + 1]]
        vals = r.data[r.indptr[i] : r.indptr[i + 1]]
        nodes = cols[vals <= limit_s]
        hit = np.zeros(network.n_nodes, dtype=bool)
        hit[nodes] = True
        e = hit[src] & hit[dst]
        lines = shapely.linestrings(
            np.stack([np.column_stack([network.x[src[e]], network.y[src[e]]]),
                      np.column_stack([network.x[dst[e]], network.y[dst[e]]])], axis=1)
        ) if e.any() else np.array([], dtype=object)
        pts = shapely.points(network.x[nodes], network.y[nodes])
        parts = np.concatenate([np.asarray(lines, dtype=object), np.asarray(pts, dtype=object)])
        geom = shapely.union_all(shapely.buffer(parts, buffer_m, quad_segs=4)) if len(parts) else None
        geoms.append(geom)
        counts.append(int(nodes.size))
    return gpd.GeoDataFrame(
        {"candidate_id": list(ids), "threshold_min": limit_s / 60.0, "reached_nodes": counts},
        geometry=geoms,
        crs=crs or network.crs,
    )
