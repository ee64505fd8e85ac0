"""Per-site table and rationale sentences of the selected Care Block sites.

:func:`selected_sites` turns a :class:`~careblocks.sites.selection.SelectionResult` into the
``selected_sites`` layer with the marginal figures of :func:`marginal_figures` (what each
site adds to the sites before it) and one plain-language :func:`rationale` per site. See
``docs/site_selection.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from careblocks.columns import CARE_GROUPS
from careblocks.i18n import N_, label_text, lower_first
from careblocks.i18n import language as get_language
from careblocks.sites.hours import _counts, current_minutes, hours_pair_values, today_minutes
from careblocks.sites.scoring import sites_threshold_min
from careblocks.sites.selection import SelectionResult

_GROUP_WORDS = {
    "children_under5": N_("children under 5"),
    "children_5_14": N_("children aged 5 to 14"),
    "older_80plus": N_("people over 80"),
    "older_60plus": N_("people over 60"),
    "people_with_disabilities": N_("people with disabilities"),
    "women_caregivers": N_("women caregivers"),
}


def round_sensibly(x: float) -> int:
    """Round for a sentence: < 100 exact, < 1,000 to 10, < 100,000 to 100, else to 1,000."""
    x = float(x)
    if not np.isfinite(x):
        return 0
    step = 1 if abs(x) < 100 else 10 if abs(x) < 1_000 else 100 if abs(x) < 100_000 else 1_000
    return int(round(x / step) * step)


def rationale(row, *, threshold_min: float, offers: Sequence[str], labels: dict[str, str] | None = None,
              cap_min: float = 60.0, language: str | None = None) -> str:
    """One sentence a council member can read, from a site's figures.

    For a selected site (``new_*`` columns from :func:`marginal_figures`) every figure is
    marginal, what the site adds to the sites before it, so the sentences of a proposal add
    up to no more than the population: "Brings 18,400 more people within 15 minutes, 2,900
    of them children under 5; brings daycare within reach of 6,100 and health of 900; first
    community kitchen within 60 minutes for 1,200 people; returns about 4,300 caregiver hours
    a week on trips made today." For a candidate alone (component columns, no ``new_*``) the
    gross figures: "Serves 18,400 people within 15 minutes, ...". Care groups appear only when
    the origins carry them; services only when at least 1 person. With transit catchments
    (``sites.use_transit``) the first clause says "on foot" and is followed by "31,000 within 15
    minutes by walk + transit". In ``language`` (``outputs.language``), numbers in its format.
    """
    L = get_language(language)
    labels = labels or {}
    num = lambda v: L.integer(v) if float(v).is_integer() else L.number(v, 1)  # noqa: E731
    t, cap = num(threshold_min), num(cap_min)
    marginal = "new_population_covered" in row.index
    pre = "new_" if marginal else ""

    def val(col: str) -> float | None:
        c = pre + col
        return float(row[c]) if c in row.index and np.isfinite(row[c]) else None

    transit = val("transit_population_covered") is not None
    people = L.rounded(val("population_covered") or 0.0)
    s = (L._("Brings {people} more people within {minutes} minutes") if marginal
         else L._("Serves {people} people within {minutes} minutes")).format(people=people, minutes=t)
    if transit:
        s += " " + L._("on foot")
    groups = [(L.rounded(val(f"{g}_covered")), L._(w)) for g, w in _GROUP_WORDS.items()
              if (val(f"{g}_covered") or 0.0) >= 1][:2]
    if groups:
        parts = [L._("{count} of them {group}").format(count=groups[0][0], group=groups[0][1])]
        parts += [L._("{count} {group}").format(count=c, group=g) for c, g in groups[1:]]
        s += ", " + L.join(parts)
    if transit:
        s += "; " + L._("{people} within {minutes} minutes by walk + transit").format(
            people=L.rounded(val("transit_population_covered")), minutes=t)
    name = {sv: lower_first(label_text(labels.get(sv) or sv.replace("_", " ").capitalize(), L)) for sv in offers}
    gaps = [(name[sv], val(f"gap_closed_{sv}")) for sv in offers if (val(f"gap_closed_{sv}") or 0.0) >= 1]
    if gaps:
        first = L._("brings {service} within reach of {people}").format(
            service=gaps[0][0], people=L.rounded(gaps[0][1]))
        rest = [L._("{service} of {people}").format(service=n, people=L.rounded(v)) for n, v in gaps[1:]]
        s += "; " + L.join([first, *rest])
    new = [(name[sv], val(f"first_access_{sv}")) for sv in offers]
    new = [(n, v) for n, v in new if (v or 0.0) >= 1]
    if new:
        n, v = max(new, key=lambda x: x[1])
        s += "; " + L._("first {service} within {minutes} minutes for {people} people").format(
            service=n, minutes=cap, people=L.rounded(v))
    hours = val("hours_returned_week")
    if hours is not None and hours >= 1:
        s += "; " + L._("returns about {hours} caregiver hours a week on trips made today").format(
            hours=L.rounded(hours))
    return s + "."


def marginal_figures(config, origins, coverage_s: sp.csr_matrix, order: Sequence[int], *,
                     existing: sp.csr_matrix | None = None, transit: sp.csr_matrix | None = None,
                     existing_transit: sp.csr_matrix | None = None):
    """What each site adds to the sites before it (and to existing Care Blocks).

    Parameters
    ----------
    config
        ``sites.offers``, the threshold, the hours model's settings.
    origins
        ``population``, ``walk_min_<s>`` and optional care groups.
    coverage_s
        Candidates x origins walking seconds within T (the catchments).
    order
        Rows of ``coverage_s`` in selection order.
    existing
        Existing Care Blocks x origins walking seconds within T (their people count as served).
    transit, existing_transit
        The same by walk + transit (adds ``new_transit_population_covered``).

    Returns
    -------
    pandas.DataFrame
        One row per site in ``order``: ``new_population_covered``, ``new_<group>_covered``,
        ``new_gap_closed_<s>`` (people beyond T of ``<s>`` today, first within T of a block
        here), ``new_first_access_<s>`` (of them, people who cannot reach ``<s>`` today: no
        facility within the cap), ``new_hours_returned_week`` (the hours the proposal returns with this
        site minus without it, each origin using its nearest block) and
        ``new_transit_population_covered``. Each column sums over the sites to the figure of
        the whole proposal, so no column can exceed the people who live in the study area.
    """

    T = sites_threshold_min(config)
    cap = float(config.sites.current_time_cap_min)
    offers = list(config.sites.offers)
    pop = _counts(origins, "population")
    weights = {"population_covered": pop}
    for g in CARE_GROUPS:
        if g in origins.columns:
            weights[f"{g}_covered"] = _counts(origins, g)
    for sv in offers:
        cur = current_minutes(origins, sv)
        weights[f"gap_closed_{sv}"] = pop * (~np.isfinite(cur) | (cur > T))
        weights[f"first_access_{sv}"] = pop * ~np.isfinite(today_minutes(cur, cap))
    n_o = len(origins)

    def served_by(m) -> np.ndarray:
        hit = np.zeros(n_o, dtype=bool)
        if m is not None and m.shape[0]:
            hit[sp.csr_matrix(m).indices] = True
        return hit

    cov = sp.csr_matrix(coverage_s)
    covered = served_by(existing)
    hours = hours_pair_values(config, origins, cov)
    best = np.zeros(n_o)
    if existing is not None and existing.shape[0]:
        ex = hours_pair_values(config, origins, existing)
        np.maximum.at(best, ex.indices, ex.data)
    tcov = sp.csr_matrix(transit) if transit is not None else None
    tcovered = served_by(existing_transit if existing_transit is not None else existing)
    rows = []
    for i in order:
        i = int(i)
        idx = cov.indices[cov.indptr[i]:cov.indptr[i + 1]]
        new = idx[~covered[idx]]
        row = {f"new_{k}": float(w[new].sum()) for k, w in weights.items()}
        covered[new] = True
        h_idx = hours.indices[hours.indptr[i]:hours.indptr[i + 1]]
        h_val = hours.data[hours.indptr[i]:hours.indptr[i + 1]]
        gain = np.maximum(0.0, h_val - best[h_idx])
        row["new_hours_returned_week"] = float(gain.sum())
        best[h_idx] = np.maximum(best[h_idx], h_val)
        if tcov is not None:
            t_idx = tcov.indices[tcov.indptr[i]:tcov.indptr[i + 1]]
            t_new = t_idx[~tcovered[t_idx]]
            row["new_transit_population_covered"] = float(pop[t_new].sum())
            tcovered[t_new] = True
        rows.append(row)
    cols = [f"new_{k}" for k in weights] + ["new_hours_returned_week"]
    if tcov is not None:
        cols.append("new_transit_population_covered")
    return pd.DataFrame(rows, columns=cols)


def fixed_first(result: SelectionResult, fixed: np.ndarray, matrix, weights, *, pair: bool,
                capacitated: bool, existing=None) -> SelectionResult:
    """The selection with the blocks that stay (``fixed``) first, then the new ones.

    The fixed blocks' gains are what each adds, in turn, over the existing blocks: people
    (or care gaps) first within reach, or with ``pair`` the hours gained with each origin's
    nearest block. Capacitated gains of fixed blocks depend on the assignment and are left
    NaN. ``total_weight`` grows by the fixed blocks' gains, so shares are of everything not
    served before any block (existing excluded)."""
    if not len(fixed):
        return result
    m = sp.csr_matrix(matrix)
    n_o = m.shape[1]
    gains = np.full(len(fixed), np.nan)
    if pair:
        best = np.zeros(n_o)
        for j, i in enumerate(fixed):
            a, b = m.indptr[i], m.indptr[i + 1]
            idx, val = m.indices[a:b], m.data[a:b]
            gains[j] = float(np.maximum(0.0, val - best[idx]).sum())
            best[idx] = np.maximum(best[idx], val)
    elif not capacitated:
        w = np.asarray(weights, dtype=float)
        w = w.sum(axis=1) if w.ndim == 2 else w
        hit = np.zeros(n_o, dtype=bool)
        if existing is not None:
            ex = np.asarray(existing)
            if ex.dtype == bool and ex.shape == (n_o,):
                hit |= ex
            else:
                hit[sp.csr_matrix(existing).indices] = True
        for j, i in enumerate(fixed):
            idx = m.indices[m.indptr[i]:m.indptr[i + 1]]
            new = idx[~hit[idx]]
            gains[j] = float(w[new].sum())
            hit[new] = True
    add = float(np.nansum(gains)) if not pair else 0.0  # pair: the total already counts them
    marg = np.concatenate([gains, result.marginal_gain])
    return dataclasses.replace(
        result, selected=np.concatenate([np.asarray(fixed, np.int64), result.selected]),
        marginal_gain=marg, cumulative=np.cumsum(np.nan_to_num(marg)),
        total_weight=result.total_weight + add, existing_weight=result.existing_weight - add)


def selected_sites(scored, result: SelectionResult, *, threshold_min: float, offers: Sequence[str],
                   objective: str, labels: dict[str, str] | None = None, marginal=None,
                   cap_min: float = 60.0, language: str | None = None):
    """The chosen candidates (rows of ``scored`` at ``result.selected``) in selection order.

    Adds ``order`` (1..K), ``objective``, ``marginal_gain``, ``cumulative_gain``,
    ``cumulative_share`` (of the weight not already served), the ``new_*`` columns of
    ``marginal`` (:func:`marginal_figures`, same order) and ``rationale``.
    """
    out = scored.iloc[result.selected].copy()
    out.insert(0, "order", np.arange(1, len(out) + 1))
    out["objective"] = objective
    out["marginal_gain"] = result.marginal_gain
    out["cumulative_gain"] = result.cumulative
    out["cumulative_share"] = result.cumulative / result.total_weight if result.total_weight > 0 else 0.0
    if marginal is not None:
        for c in marginal.columns:
            out[c] = marginal[c].to_numpy()
    out["rationale"] = [rationale(r, threshold_min=threshold_min, offers=offers, labels=labels, cap_min=cap_min,
                                  language=language)
                        for _, r in out.iterrows()]
    return out.reset_index(drop=True)
