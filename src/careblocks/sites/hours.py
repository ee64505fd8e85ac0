"""The one caregiver-hours model: weekly hours a carer gets back when a service comes closer.

For an origin ``j``, a service ``s`` and a new one-way time ``t`` (minutes)::

    hours_js(t) = trips_s x 2 x max(0, current_js - t) x users_js / 60

for the trips people make today only:

- ``trips_s``: round trips per week per user (``services.<s>.trips_per_week``, else the
  service's default in ``DEFAULT_SERVICES``) - :func:`trips_per_week`;
- ``current_js``: today's walking minutes (``walk_min_<s>``) when the service is reachable
  within the cap ``sites.current_time_cap_min`` (default 60); an origin that cannot reach it
  today makes no trip, so a Care Block gives it new access (``first_access_<s>``, people),
  not hours - :func:`today_minutes`;
- ``users_js``: households or care-group members who make the trips - :func:`user_households`.

Every figure of hours in the outputs comes from :func:`weekly_hours`: per candidate
(:func:`hours_returned`), per catchment entry (:func:`hours_pair_values`, the exact objective of
``sites.objective = "hours_returned"``) and per origin at the threshold (:func:`hours_at`, the
lower bound used by maximal covering). See ``docs/site_selection.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from careblocks import columns as C
from careblocks.config import DEFAULT_HOUSEHOLD_SIZE, DEFAULT_SERVICES, ServiceConfig, SitesConfig
from careblocks.errors import DataQualityWarning

if TYPE_CHECKING:  # pragma: no cover
    from careblocks.config import Config

__all__ = [
    "current_minutes",
    "household_size",
    "hours_at",
    "hours_pair_values",
    "hours_returned",
    "today_minutes",
    "trips_per_week",
    "user_households",
    "weekly_hours",
]

#: Current one-way times are capped at this many minutes when counting minutes saved (the
#: default of ``sites.current_time_cap_min``).
_DEFAULT_CAP_MIN: float = SitesConfig.current_time_cap_min


def _col(df: pd.DataFrame, name: str) -> np.ndarray:
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _counts(df: pd.DataFrame, name: str) -> np.ndarray:
    v = _col(df, name)
    return np.where(np.isfinite(v) & (v > 0), v, 0.0)


def weekly_hours(trips: float, current_min, new_min, users) -> np.ndarray:
    """THE formula: ``trips x 2 x max(0, current - new) x users / 60`` (a trip is a round
    trip, hence the 2), element-wise over aligned arrays; ``current`` is the trip made today
    (0 where none, see :func:`today_minutes`)."""
    saved = np.maximum(0.0, np.asarray(current_min, np.float64) - np.asarray(new_min, np.float64))
    return float(trips) * 2.0 * saved * np.asarray(users, np.float64) / 60.0


def trips_per_week(config: Config | None, service: str) -> float:
    """``services.<s>.trips_per_week``, else the default of the service (0 when unknown)."""
    svc = config.services.get(service) if config is not None else None
    if svc is not None and svc.trips_per_week is not None:
        return float(svc.trips_per_week)
    return float(DEFAULT_SERVICES.get(service, {}).get("trips_per_week", 0.0))


def household_size(config: Config) -> float:
    """People per household: ``census.household_size`` or 3.0."""
    hs = getattr(config.census, "household_size", None)
    return float(hs) if hs else DEFAULT_HOUSEHOLD_SIZE


def time_cap_min(config: Config) -> float:
    """``sites.current_time_cap_min``."""
    return float(config.sites.current_time_cap_min)


def current_minutes(origins: pd.DataFrame, service: str, *, mode: str | None = None) -> np.ndarray:
    """Today's minutes of each origin to ``service`` (NaN when unreachable or unknown).

    By the faster of walking and walk + transit (``best_min_<s>``) when the study has transit,
    else on foot (``walk_min_<s>``); ``mode="walk"`` or ``"best"`` asks for one of them.
    """
    if mode is None:
        mode = "best" if C.best_min(service) in origins.columns else "walk"
    col = C.best_min(service) if mode == "best" else C.walk_min(service)
    if col not in origins.columns:
        warnings.warn(
            f"origins: no column '{col}'; service '{service}' is treated as out of reach "
            "everywhere (add it to [services] so its access is measured)",
            DataQualityWarning,
            stacklevel=3,
        )
        return np.full(len(origins), np.nan)
    return _col(origins, col)


def today_minutes(current_min, cap_min: float) -> np.ndarray:
    """One-way minutes of the trips people make today, NaN where they make none.

    A service that is unreachable, or farther than ``cap_min`` minutes, is taken as one the
    origin cannot use today: a new Care Block gives it *new access* (counted as people, see
    ``first_access_<s>``), not hours saved on an existing trip. Every caregiver-hours figure
    goes through this function.
    """
    cur = np.asarray(current_min, dtype=np.float64)
    return np.where(np.isfinite(cur) & (cur <= float(cap_min)), cur, np.nan)


def _trip_minutes(current_min, cap_min: float) -> np.ndarray:
    """:func:`today_minutes` with no trip as 0 (so it saves 0 hours in :func:`weekly_hours`)."""
    return np.nan_to_num(today_minutes(current_min, cap_min), nan=0.0)


def user_households(
    origins: pd.DataFrame, service: str, hh_size: float, config: Config | None = None
) -> np.ndarray:
    """Users per origin who make the weekly trips to ``service``.

    ``users = base x services.<s>.user_share``, where the base is the households
    (``households`` column, else population / household size) or, when
    ``services.<s>.user_group`` names a care group, that group's count (estimated as
    population x ``user_group_share`` when the group is not mapped). Defaults: daycare =
    half of the children under 5; health = every household; laundromat = a quarter of the
    households (no washing machine at home); community kitchen = 5 % of the households.
    """
    svc = config.services.get(service) if config is not None else None
    if svc is None:
        svc = ServiceConfig(**{k: v for k, v in DEFAULT_SERVICES.get(service, {}).items() if k != "osm_tags"})
    pop = _counts(origins, "population")
    hh = _counts(origins, "households") if "households" in origins.columns else pop / hh_size
    group = svc.user_group
    if group == "households":
        base = hh
    elif group in origins.columns:
        base = _counts(origins, group)
    else:
        base = pop * float(svc.user_group_share if svc.user_group_share is not None else 1.0 / hh_size)
    return base * float(svc.user_share)


def hours_returned(
    coverage_s: sp.csr_matrix,
    current_min: np.ndarray,
    households: np.ndarray,
    trips_per_week: float,
    *,
    cap_min: float = _DEFAULT_CAP_MIN,
) -> np.ndarray:
    """Weekly caregiver hours returned per candidate for one service.

    :func:`weekly_hours` summed over the origins ``j`` in the candidate's catchment that make
    the trip today (:func:`today_minutes`), the new time ``t_ij`` in minutes from the entries
    of ``coverage_s`` (seconds).
    """
    cov = sp.csr_matrix(coverage_s)
    cur = _trip_minutes(current_min, cap_min)
    per_entry = weekly_hours(trips_per_week, cur[cov.indices], cov.data / 60.0,
                             np.asarray(households, np.float64)[cov.indices])
    rows = np.repeat(np.arange(cov.shape[0]), np.diff(cov.indptr))
    return np.bincount(rows, weights=per_entry, minlength=cov.shape[0])


def _per_service(config: Config, origins: pd.DataFrame, services=None):
    """(trips, minutes of today's trip or 0, users) of each service (default the offered)."""
    cap = time_cap_min(config)
    hh = household_size(config)
    for s in (config.sites.offers if services is None else services):
        yield (trips_per_week(config, s), _trip_minutes(current_minutes(origins, s), cap),
               user_households(origins, s, hh, config))


def hours_pair_values(config: Config, origins: pd.DataFrame, coverage_s: sp.csr_matrix, *,
                      services: Sequence[str] | None = None) -> sp.csr_matrix:
    """Caregiver hours a week origin j gets back from site i, for every catchment entry.

    :func:`weekly_hours` summed over the offered services (or ``services``): the per-pair
    terms of :func:`hours_returned`, so a site's row sum is its ``hours_returned_week``
    column. Used with ``select_sites(..., pair_gains=True)`` for ``sites.objective =
    "hours_returned"``.
    """
    cov = sp.csr_matrix(coverage_s)
    t_min = cov.data / 60.0
    vals = np.zeros(cov.nnz)
    for trips, cur, users in _per_service(config, origins, services):
        vals += weekly_hours(trips, cur[cov.indices], t_min, users[cov.indices])
    out = sp.csr_matrix((vals, cov.indices.copy(), cov.indptr.copy()), shape=cov.shape)
    out.eliminate_zeros()
    return out


def hours_at(config: Config, origins: pd.DataFrame, threshold_min: float) -> np.ndarray:
    """Hours a week each origin gets back on today's trips when every offered service is
    ``threshold_min`` away (a lower bound of the hours returned by any site covering it
    within T)."""
    out = np.zeros(len(origins))
    for trips, cur, users in _per_service(config, origins):
        out += weekly_hours(trips, cur, float(threshold_min), users)
    return out
