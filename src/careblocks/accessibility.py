"""Supply against demand: gravity and two-step floating catchment (2SFCA) measures.

A daycare with 20 seats does not serve 3,000 children because they live within 15 minutes.
These measures set the capacity of the facilities (seats, beds, machines) against the people
who need them, on the travel times careblocks already computes.

Numeric core (arrays; ``cost`` is a sparse **origins x facilities** matrix of minutes whose
stored entries are the pairs within the longest trip counted; a pair not stored is out of
reach):

- :func:`decay_weights`: the weight of a trip of ``t`` minutes, in the shapes of the IPEA
  ``accessibility`` R package and PySAL ``access``: ``step`` (IPEA ``decay_binary``),
  ``linear`` (IPEA ``decay_linear``: ``max(0, 1 - t / cutoff)``), ``exponential`` (IPEA
  ``decay_exponential``: ``exp(-rate t)``), ``gaussian`` (PySAL ``weights.gaussian``:
  ``exp(-t^2 / (2 sd^2))``), ``logistic`` (IPEA ``decay_logistic``: ``g(0) / g(t)`` with
  ``g(t) = 1 + exp(pi (t - cutoff) / (sd sqrt 3))``) and ``steps`` (PySAL ``weights.step_fn``,
  the travel-time zones of Luo & Qi's enhanced 2SFCA).
- :func:`gravity`: ``A_i = sum_j S_j f(t_ij)`` (units of supply within reach, discounted by
  time; IPEA ``gravity``, PySAL ``weighted_catchment``).
- :func:`two_step_fca`: ``R_j = S_j / sum_k D_k f(t_kj)`` (supply per person in need reaching
  facility ``j``), then ``A_i = sum_j R_j f(t_ij)`` (Luo & Wang 2003; with zone or decay
  weights Luo & Qi 2009's enhanced 2SFCA; IPEA ``floating_catchment_area(method = "2sfca")``,
  PySAL ``two_stage_fca``). A facility that nobody in need reaches has ``R_j = 0``; an origin
  that reaches no facility has ``A_i = 0``.
- :func:`deserts`: ``A_i < 1 / ratio``, i.e. more than ``ratio`` people in need per unit
  within reach (the Center for American Progress childcare-desert test uses 3 children per
  licensed seat).

Adapters: :func:`facility_supply` (capacity per facility from the services layer and the
config), :func:`cost_matrix` (bounded walking searches from the facilities, gathered to the
origins, optionally merged with walk + transit), :func:`need_counts` (people in need per
origin) and :func:`access_measures` (GeoDataFrame in, columns out).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from careblocks.errors import ConfigError, DataQualityWarning, InputDataError
from careblocks.network.cost import WalkCost
from careblocks.network.search import gather_targets, min_union, reach_from

if TYPE_CHECKING:  # pragma: no cover
    from careblocks.config import AccessibilityConfig, Config

__all__ = [
    "DECAYS",
    "access_measures",
    "add_to_equity",
    "block_capacity",
    "cost_matrix",
    "decay_weights",
    "deserts",
    "facility_supply",
    "gravity",
    "need_counts",
    "summarise",
    "two_step_fca",
]

DECAYS = ("step", "linear", "exponential", "gaussian", "logistic", "steps")


# --------------------------------------------------------------------------------------
# numeric core
# --------------------------------------------------------------------------------------


def decay_weights(
    t_min: np.ndarray,
    decay: str,
    *,
    cutoff_min: float | None = None,
    rate_per_min: float | None = None,
    sd_min: float | None = None,
    steps_min: Sequence[float] = (),
    step_weights: Sequence[float] = (),
) -> np.ndarray:
    """Weight of each travel time (minutes) under a decay function; see the module docstring.

    Parameters
    ----------
    t_min
        Travel times in minutes (>= 0).
    decay
        One of :data:`DECAYS`.
    cutoff_min
        ``step``, ``linear``: where the weight reaches 0; ``logistic``: the inflection point.
    rate_per_min
        ``exponential``: the decay rate.
    sd_min
        ``gaussian``: the width sigma; ``logistic``: the standard deviation.
    steps_min, step_weights
        ``steps``: upper bounds of the zones (increasing) and the weight in each zone; 0
        beyond the last zone.
    """
    t = np.asarray(t_min, dtype=np.float64)

    def need(name: str, value):
        if value is None or not np.isfinite(value) or value <= 0:
            raise ConfigError(
                f"config key 'accessibility.{name}': decay {decay!r} needs {name} > 0, got {value!r}"
            )
        return float(value)

    if decay == "step":
        return (t <= need("cutoff_min", cutoff_min)).astype(np.float64)
    if decay == "linear":
        return np.maximum(0.0, 1.0 - t / need("cutoff_min", cutoff_min))
    if decay == "exponential":
        return np.exp(-need("rate_per_min", rate_per_min) * t)
    if decay == "gaussian":
        s = need("sd_min", sd_min)
        return np.exp(-t * t / (2.0 * s * s))
    if decay == "logistic":
        c, s = need("cutoff_min", cutoff_min), need("sd_min", sd_min)
        k = np.pi / (s * np.sqrt(3.0))
        # g(0) / g(t) with g(x) = 1 + exp(k (x - c)); written to stay finite for large t
        return np.exp(np.logaddexp(0.0, -k * c) - np.logaddexp(0.0, k * (t - c)))
    if decay == "steps":
        bounds = np.asarray(steps_min, dtype=np.float64)
        w = np.asarray(step_weights, dtype=np.float64)
        if bounds.size == 0 or bounds.size != w.size or np.any(np.diff(bounds) <= 0):
            raise ConfigError(
                "config key 'accessibility.steps_min': give increasing zone bounds and one "
                "weight per zone (accessibility.step_weights)"
            )
        pos = np.searchsorted(bounds, t, side="left")  # first bound >= t
        out = np.zeros_like(t)
        ok = pos < bounds.size
        out[ok] = w[pos[ok]]
        return out
    raise ConfigError(f"config key 'accessibility.decay': {decay!r} is not one of {', '.join(DECAYS)}")


def _as_cost(cost, n_f: int | None = None) -> sp.csr_matrix:
    m = sp.csr_matrix(cost, dtype=np.float64)
    if m.nnz and (not np.all(np.isfinite(m.data)) or m.data.min() < 0):
        raise InputDataError("cost: travel times must be finite and >= 0 (leave pairs out of reach unstored)")
    if n_f is not None and m.shape[1] != n_f:
        raise InputDataError(f"cost: {m.shape[1]} facility columns for {n_f} supply values; pass one per facility")
    return m


def _weighted(cost: sp.csr_matrix, weights: np.ndarray) -> sp.csr_matrix:
    return sp.csr_matrix((weights, cost.indices, cost.indptr), shape=cost.shape)


def gravity(cost, supply: np.ndarray, weight_fn) -> np.ndarray:
    """``A_i = sum_j S_j f(t_ij)`` over the stored pairs.

    Parameters
    ----------
    cost
        Origins x facilities, minutes (sparse; unstored = out of reach).
    supply
        Capacity of each facility.
    weight_fn
        Maps an array of minutes to weights (e.g. ``lambda t: decay_weights(t, "gaussian",
        sd_min=10)``).
    """
    s = np.asarray(supply, dtype=np.float64)
    m = _as_cost(cost, s.size)
    return np.asarray(_weighted(m, weight_fn(m.data)) @ s, dtype=np.float64).ravel()


def two_step_fca(cost, supply: np.ndarray, demand: np.ndarray, weight_fn=None) -> np.ndarray:
    """Two-step floating catchment ratio: supply per person in need within reach.

    Parameters
    ----------
    cost
        Origins x facilities, minutes (sparse; unstored = beyond the catchment).
    supply
        Capacity of each facility (seats, beds, ...).
    demand
        People in need at each origin.
    weight_fn
        Weights of the pairs in both steps (enhanced 2SFCA); None = 1 for every stored pair
        (the classic 2SFCA within the catchment).

    Returns
    -------
    numpy.ndarray
        ``A_i`` per origin (units per person in need); 0 where no facility is in reach.
    """
    s = np.asarray(supply, dtype=np.float64)
    d = np.asarray(demand, dtype=np.float64)
    m = _as_cost(cost, s.size)
    if d.shape != (m.shape[0],):
        raise InputDataError(f"demand: {d.size} values for {m.shape[0]} origins; pass one per origin")
    w = np.ones(m.nnz) if weight_fn is None else np.asarray(weight_fn(m.data), dtype=np.float64)
    wm = _weighted(m, w)
    reached = np.asarray(wm.T @ d, dtype=np.float64).ravel()  # weighted demand at each facility
    ratio = np.divide(s, reached, out=np.zeros_like(s), where=reached > 0)
    return np.asarray(wm @ ratio, dtype=np.float64).ravel()


def deserts(fca: np.ndarray, ratio: float) -> np.ndarray:
    """True where more than ``ratio`` people in need share one unit within reach."""
    return np.asarray(fca, dtype=np.float64) * float(ratio) < 1.0


# --------------------------------------------------------------------------------------
# adapters
# --------------------------------------------------------------------------------------


def max_minutes(config: Config) -> float:
    """``accessibility.max_min`` or, unset, ``access.threshold_min``."""
    m = config.accessibility.max_min
    return float(m if m is not None else config.access.threshold_min)


def weight_function(acc: AccessibilityConfig, max_min: float, *, for_fca: bool):
    """The weight function of 2SFCA (``for_fca``) or of the gravity measure, from the config."""
    if for_fca:
        if acc.fca == "2sfca":
            return None
        decay = acc.fca_weights
    else:
        decay = acc.decay
    steps = tuple(acc.steps_min) or (max_min / 3.0, 2.0 * max_min / 3.0, max_min)
    weights = tuple(acc.step_weights)
    if decay == "steps" and not acc.steps_min and len(weights) != 3:
        raise ConfigError(
            "config key 'accessibility.steps_min': give the zone bounds for "
            f"{len(weights)} step_weights (the default zones are thirds of max_min)"
        )
    kw: dict[str, Any] = {
        "cutoff_min": acc.cutoff_min if acc.cutoff_min is not None else max_min,
        "rate_per_min": acc.rate_per_min,
        "sd_min": acc.sd_min,
        "steps_min": steps,
        "step_weights": weights,
    }
    decay_weights(np.zeros(1), decay, **kw)  # validate now, not on the first call
    return lambda t: decay_weights(t, decay, **kw)


def facility_supply(services: pd.DataFrame, service: str, config: Config) -> tuple[np.ndarray, str, bool]:
    """Capacity of each facility of ``service`` (rows of ``services`` with that service).

    The layer's capacity (``capacity_column`` or ``count_column``) where known, else
    ``services.<s>.capacity_default``. When neither is known for some facility, every
    facility counts as one unit and the unit is "facilities".

    Returns
    -------
    (supply, unit, known)
        ``known`` is False when the capacity fell back to one unit per facility.
    """
    sel = services[services["service"].astype(str) == service]
    cap = pd.to_numeric(sel["capacity"], errors="coerce").to_numpy(np.float64, na_value=np.nan) \
        if "capacity" in sel.columns else np.full(len(sel), np.nan)
    svc = config.services.get(service)
    default = svc.capacity_default if svc is not None else None
    unit = svc.capacity_unit if svc is not None else "facilities"
    if default is not None:
        cap = np.where(np.isfinite(cap) & (cap > 0), cap, float(default))
    if len(cap) and np.all(np.isfinite(cap) & (cap > 0)):
        return cap, unit, True
    return np.ones(len(sel)), "facilities", len(sel) == 0


def block_capacity(config: Config, service: str) -> float:
    """Capacity of ``service`` in a new Care Block: ``block_capacity``, else
    ``capacity_default``, else one unit (a facility)."""
    svc = config.services.get(service)
    if svc is None:
        return 1.0
    for v in (svc.block_capacity, svc.capacity_default):
        if v is not None:
            return float(v)
    return 1.0


def need_counts(origins: pd.DataFrame, service: str, config: Config) -> tuple[np.ndarray, str]:
    """People in need of ``service`` at each origin, and the name of that group.

    The care group of ``services.<s>.user_group`` (e.g. ``children_under5`` for daycare;
    estimated as population x ``user_group_share`` when the group is not on the origins), or
    the whole population when the users are households.
    """
    pop = pd.to_numeric(origins["population"], errors="coerce").to_numpy(np.float64, na_value=0.0)
    pop = np.where(np.isfinite(pop) & (pop > 0), pop, 0.0)
    svc = config.services.get(service)
    group = svc.user_group if svc is not None else "households"
    if group == "households":
        return pop, "population"
    if group in origins.columns:
        g = pd.to_numeric(origins[group], errors="coerce").to_numpy(np.float64, na_value=0.0)
        return np.where(np.isfinite(g) & (g > 0), g, 0.0), group
    share = svc.user_group_share if svc is not None and svc.user_group_share is not None else 1.0
    return pop * float(share), group


def walk_seconds(network, origins: pd.DataFrame, facilities: pd.DataFrame, *, cost: WalkCost,
                 limit_s: float) -> sp.csr_matrix:
    """Facilities x origins walking seconds within ``limit_s`` (snap legs included): one
    bounded search per facility (:func:`careblocks.network.search.reach_sparse`) at the
    walking ``cost``, gathered to the origins snapped to the reached nodes."""
    reach = reach_from(network, facilities["node"].to_numpy(np.int64),
                       cost.leg_seconds(facilities["snap_m"].to_numpy(np.float64)), cost=cost,
                       limit_s=limit_s)
    return gather_targets(reach, origins["node"].to_numpy(np.int64),
                          cost.leg_seconds(origins["snap_m"].to_numpy(np.float64)), limit_s)


def cost_matrix(network, origins: pd.DataFrame, facilities: pd.DataFrame, *, cost: WalkCost,
                max_min: float, transit_seconds: sp.csr_matrix | None = None,
                walk=None) -> sp.csr_matrix:
    """Origins x facilities walking minutes within ``max_min`` (snap legs included).

    The walking seconds come from :func:`walk_seconds`, or from ``walk(nodes, snap_m,
    limit_s)`` when given (the pipeline's cached version of it). ``transit_seconds``
    (facilities x origins, walk + transit) is merged by taking the shorter of the two times.
    """
    limit_s = cost.limit_s(max_min)
    n_o = len(origins)
    if len(facilities) == 0:
        return sp.csr_matrix((n_o, 0))
    if walk is not None:
        fo = walk(facilities["node"].to_numpy(np.int64), facilities["snap_m"].to_numpy(np.float64), limit_s)
    else:
        fo = walk_seconds(network, origins, facilities, cost=cost, limit_s=limit_s)
    if transit_seconds is not None:
        fo = min_union(fo, transit_seconds)
    out = sp.csr_matrix(fo.T) / 60.0
    out.sort_indices()
    return sp.csr_matrix(out)


def access_measures(config: Config, origins: pd.DataFrame, services: pd.DataFrame, network, *,
                    transit=None, walk=None, suffix: str = "") -> tuple[pd.DataFrame, dict[str, Any]]:
    """``fca_<s>``, ``gravity_<s>`` (and ``desert_<s>``) for every service, per origin.

    Parameters
    ----------
    config
        ``accessibility``, ``services.<s>`` (capacity, users, desert ratio), ``walk.speed_kmh``.
    origins
        ``node``, ``snap_m``, ``population`` (and care groups when mapped).
    services
        ``service``, ``node``, ``snap_m``, ``capacity``.
    network
        :class:`careblocks.network.graph.WalkNetwork`.
    transit
        Optional ``callable(nodes, snap_m, limit_s) -> facilities x origins seconds`` by walk
        + transit; its times are merged with walking (the shorter counts).
    walk
        Optional ``callable(nodes, snap_m, limit_s) -> facilities x origins seconds`` on foot
        (default :func:`walk_seconds`; the pipeline passes a cached one).
    suffix
        Appended to every column name (``"_best"`` for walk + transit).

    Returns
    -------
    (table, stats)
        Columns indexed like ``origins``; stats per service: unit, capacity known, total
        supply, people in need, facilities, pairs in reach.
    """
    acc = config.accessibility
    mx = max_minutes(config)
    fca_w = weight_function(acc, mx, for_fca=True)
    grav_w = weight_function(acc, mx, for_fca=False)
    out = pd.DataFrame(index=origins.index)
    stats: dict[str, Any] = {}
    # walk + transit: one search for every facility of every service, then each service's
    # rows (a facility's row does not depend on the other facilities searched with it;
    # one Range-RAPTOR per origin instead of one per origin and service)
    t_all = None
    kinds = services["service"].astype(str).to_numpy() if len(services) else np.zeros(0, str)
    if transit is not None and len(services):
        t_all = sp.csr_matrix(transit(services["node"].to_numpy(np.int64),
                                      services["snap_m"].to_numpy(np.float64), mx * 60.0))
    for s in config.service_names:
        fac = services[kinds == s] if len(services) else services
        supply, unit, known = facility_supply(services, s, config) if len(services) else (np.zeros(0), "facilities", True)
        need, group = need_counts(origins, s, config)
        tsec = None
        if t_all is not None and len(fac):
            tsec = t_all[np.flatnonzero(kinds == s)]
        cost = cost_matrix(network, origins, fac, cost=WalkCost.from_config(config.walk), max_min=mx,
                           transit_seconds=tsec, walk=walk)
        fca = two_step_fca(cost, supply, need, fca_w)
        out[f"fca_{s}{suffix}"] = fca
        out[f"gravity_{s}{suffix}"] = gravity(cost, supply, grav_w)
        svc = config.services.get(s)
        ratio = svc.desert_ratio if svc is not None else None
        if ratio is not None:
            if known and len(fac):
                out[f"desert_{s}{suffix}"] = deserts(fca, ratio)
            elif not suffix:
                warnings.warn(
                    f"accessibility: no desert indicator for {s}: the capacity of its facilities is "
                    f"not known; set services.{s}.capacity_default (in {svc.capacity_unit}) or "
                    f"services.{s}.layers[].capacity_column",
                    DataQualityWarning,
                    stacklevel=2,
                )
        stats[s] = {"unit": unit, "capacity_known": bool(known), "supply": float(supply.sum()),
                    "need_group": group, "people_in_need": float(need.sum()),
                    "facilities": int(len(fac)), "pairs": int(cost.nnz),
                    "units_per_1000_in_need": float(1000 * supply.sum() / need.sum()) if need.sum() > 0 else None}
    return out, stats


def summarise(origins: pd.DataFrame, services: Sequence[str], groups: Sequence[str], *,
              by: str | None = None, suffix: str = "") -> pd.DataFrame:
    """Group-weighted means of ``fca_<s>`` and ``gravity_<s>`` and the desert share, for every
    service and care group, overall (``district`` = "all") and per value of ``by``.

    ``fca_mean`` = sum(people of the group x fca) / people of the group: the units per
    person in need that an average member of the group reaches; ``people_per_unit`` its
    inverse; ``share_desert`` the share of the group living where ``desert_<s>`` is true
    (null when the service has no desert indicator).
    """
    rows = []
    keys = [("all", np.ones(len(origins), dtype=bool))]
    if by is not None and by in origins.columns:
        vals = origins[by].astype("string")
        keys += [(str(v), (vals == v).fillna(False).to_numpy(dtype=bool)) for v in sorted(vals.dropna().unique())]
    for s in services:
        fcol, gcol, dcol = f"fca_{s}{suffix}", f"gravity_{s}{suffix}", f"desert_{s}{suffix}"
        if fcol not in origins.columns:
            continue
        f = origins[fcol].to_numpy(np.float64)
        g = origins[gcol].to_numpy(np.float64)
        d = origins[dcol].to_numpy(bool) if dcol in origins.columns else None
        for grp in groups:
            w = pd.to_numeric(origins[grp], errors="coerce").to_numpy(np.float64, na_value=0.0)
            w = np.where(np.isfinite(w) & (w > 0), w, 0.0)
            for name, m in keys:
                n = float(w[m].sum())
                fm = float((w[m] * f[m]).sum() / n) if n > 0 else np.nan
                rows.append({
                    "service": s, "group": grp, "district": name,
                    "fca_mean": fm,
                    "people_per_unit": (1.0 / fm) if fm > 0 else np.nan,
                    "gravity_mean": float((w[m] * g[m]).sum() / n) if n > 0 else np.nan,
                    "share_desert": float(w[m][d[m]].sum() / n) if d is not None and n > 0 else np.nan,
                })
    return pd.DataFrame(rows, columns=["service", "group", "district", "fca_mean", "people_per_unit",
                                       "gravity_mean", "share_desert"])


def add_to_equity(equity: pd.DataFrame | None, summary: pd.DataFrame, mode: str) -> pd.DataFrame | None:
    """Join the summary columns onto the rows of ``equity`` with the same mode, service,
    group and district (other rows get nulls)."""
    if equity is None or len(equity) == 0 or len(summary) == 0:
        return equity
    eq = equity.copy()
    keys = ["service", "group", "district"]
    cols = [c for c in summary.columns if c not in keys]
    for c in cols:
        if c not in eq.columns:
            eq[c] = np.nan
    m = eq["mode"] == mode if "mode" in eq.columns else np.ones(len(eq), dtype=bool)
    joined = eq.loc[m, keys].merge(summary, on=keys, how="left")
    for c in cols:
        eq.loc[m, c] = joined[c].to_numpy()
    return eq
