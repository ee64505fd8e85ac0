"""Robustness of the proposal: does the choice of sites survive other weightings?

A council rightly asks whether the proposed Care Blocks depend on the exact weights in the
config. :func:`sensitivity` answers by drawing many weightings (seeded), re-selecting K sites
for each, and counting, per candidate, how often it is chosen.

Selection maximises the objective of ``sites.objective`` (people, care gaps closed, or hours
returned) on the coverage matrix; the score ranks candidates. One draw (see
``docs/site_selection.md``, "Robustness") perturbs both:

- the weights inside the objective: each offered service's gaps (``gap_closed``) or each
  service's trip rate (``hours_returned``) is multiplied by a log-normal factor
  ``exp(N(0, spread))`` (``trip_rate_spread`` for trip rates), so a council that counts a
  daycare gap twice a laundromat gap, or a survey that finds other trip rates, is covered;
  with ``objective = "population"`` each care group mapped on the origins gets such a weight
  on top of everyone's;
- each score weight (``sites.weights``) by ``exp(N(0, spread))``, and the hours and gap
  components by the same service factors: every candidate's score and rank are recomputed;
- K sites are re-selected on the same coverage matrix and constraints (spacing, districts,
  existing blocks) with ``sensitivity.method`` (greedy by default), then improved by
  swapping one site at a time, starting both from that set and from the run's proposal; the
  better set counts (the proposal on ties), so greedy's weaker answers do not pass for
  instability.

With every factor 1 the draw is the run's own selection problem. The core works on arrays
(:func:`draw_factors`, :func:`run_draws`); :func:`sensitivity` is the adapter the sites stage
calls.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from careblocks.columns import CARE_GROUPS
from careblocks.config import DEFAULT_SITE_WEIGHTS
from careblocks.sites.hours import _counts, current_minutes, hours_pair_values

__all__ = ["draw_factors", "draw_rng", "objective_parts", "robustness_sentence", "run_draws", "sensitivity"]


def objective_parts(config, origins, coverage: sp.csr_matrix, *, threshold_min: float):
    """The parts of the run's objective that the draws weigh.

    Returns
    -------
    (kind, parts)
        ``kind`` = "weights" with ``parts`` parts x origins (the objective is the sum of
        factor x part over parts, per origin), or "pairs" with a list of candidates x origins
        matrices (hours per service; the objective uses pair gains).
    """
    objective = config.sites.objective
    offers = list(config.sites.offers)
    pop = _counts(origins, "population")
    if objective == "gap_closed":
        parts = np.zeros((len(offers), len(origins)))
        for k, s in enumerate(offers):
            cur = current_minutes(origins, s)
            parts[k] = pop * (~np.isfinite(cur) | (cur > threshold_min))
        return "weights", parts
    if objective == "hours_returned":
        return "pairs", [hours_pair_values(config, origins, coverage, services=[s]) for s in offers]
    groups = [_counts(origins, g) for g in CARE_GROUPS if g in origins.columns]
    return "weights", np.vstack([pop, *groups]) if groups else pop[None, :]


def draw_factors(rng: np.random.Generator, base: dict[str, float], n_parts: int, *, spread: float,
                 part_spread: float) -> tuple[dict[str, float], np.ndarray]:
    """One weighting: perturbed score weights and a factor per objective part."""
    w = {k: float(v) * float(np.exp(rng.normal(0.0, spread))) for k, v in base.items()}
    return w, np.exp(rng.normal(0.0, part_spread, n_parts))


def _perturbed_components(components: pd.DataFrame, offers: Sequence[str], objective: str,
                          factors: np.ndarray) -> pd.DataFrame:
    c = components.copy()
    if objective == "gap_closed" and all(f"gap_closed_{s}" in c.columns for s in offers) and offers:
        c["gap_closed"] = sum(m * c[f"gap_closed_{s}"].to_numpy(float) for m, s in zip(factors, offers, strict=True))
    if objective == "hours_returned" and all(f"hours_returned_{s}" in c.columns for s in offers) and offers:
        c["hours_returned_week"] = sum(m * c[f"hours_returned_{s}"].to_numpy(float)
                                       for m, s in zip(factors, offers, strict=True))
    return c


def _swap_search(pattern: sp.csr_matrix, omega: np.ndarray, start: np.ndarray, neighbours: list[set[int]],
                 dcodes: np.ndarray | None, max_per_district: int | None, served: np.ndarray) -> tuple[np.ndarray, float]:
    """Best-improvement 1-swap local search for maximal covering from ``start``.

    Swaps one chosen site for one candidate outside the set while that adds weight and keeps
    the constraints (spacing ``neighbours``, at most ``max_per_district`` per district).
    Returns the set and its covered weight (origins in ``served`` count for nothing).
    """
    w = np.where(served, 0.0, omega)
    chosen = [int(i) for i in start]
    count = np.asarray(pattern[chosen].sum(axis=0)).ravel() if chosen else np.zeros(pattern.shape[1])
    value = float(w[count > 0].sum())
    n_c = pattern.shape[0]
    for _ in range(50):  # passes; each strictly improves, so this bound is never the limit in practice
        best = (1e-9 * max(1.0, value), None, None)
        for p in chosen:
            row = pattern.indices[pattern.indptr[p]:pattern.indptr[p + 1]]
            count[row] -= 1
            loss = float(w[row][count[row] == 0].sum())
            gains = pattern @ (w * (count == 0))
            others = [o for o in chosen if o != p]
            ok = np.ones(n_c, dtype=bool)
            ok[chosen] = False
            for o in others:
                ok[list(neighbours[o])] = False
            if dcodes is not None and max_per_district is not None:
                for d in set(int(dcodes[o]) for o in others if dcodes[o] >= 0):
                    if sum(1 for o in others if dcodes[o] == d) >= max_per_district:
                        ok &= dcodes != d
            gains = np.where(ok, gains, -np.inf)
            c = int(np.argmax(gains))
            if gains[c] - loss > best[0]:
                best = (gains[c] - loss, p, c)
            count[row] += 1
        if best[1] is None:
            break
        _, p, c = best
        count[pattern.indices[pattern.indptr[p]:pattern.indptr[p + 1]]] -= 1
        count[pattern.indices[pattern.indptr[c]:pattern.indptr[c + 1]]] += 1
        chosen = [c if o == p else o for o in chosen]
        value = float(w[count > 0].sum())
    return np.array(sorted(chosen), dtype=np.int64), value


def run_draws(coverage: sp.csr_matrix, kind: str, parts, components: pd.DataFrame,
              candidate_ids: Sequence[str], *, base: dict[str, float], offers: Sequence[str],
              objective: str, k: int, draws: int, spread: float, part_spread: float, seed: int,
              select_kw: dict | None = None, method: str = "greedy",
              incumbent: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Re-select ``k`` sites under ``draws`` seeded weightings.

    Each draw selects with ``method``; without capacity, that set and ``incumbent`` (the run's
    proposal, rows of ``coverage``) are each improved by 1-swaps (:func:`_swap_search`) and
    the better one is the draw's choice, the proposal on ties, so a heuristic alone never
    "moves" a proposal that an exact solver placed and that is still best. With pair gains
    (hours) the proposal is kept when it does at least as well as the heuristic's set.
    Draw ``d`` draws its weighting from :func:`draw_rng` ``(seed, d)``, so the draws run in
    chunks, here or on a Dask cluster (:mod:`careblocks.compute`), with the same result.

    Returns
    -------
    (chosen, ranks)
        ``chosen``: draws x candidates booleans; ``ranks``: draws x candidates score ranks.
    """
    cov = sp.csr_matrix(coverage)
    n_c, n_o = cov.shape
    n_parts = len(parts) if kind == "pairs" else parts.shape[0]
    kw = dict(select_kw or {})
    inc = np.asarray(incumbent if incumbent is not None else [], dtype=np.int64)
    served = np.zeros(n_o, dtype=bool)  # origins the existing Care Blocks already serve
    ex = kw.get("existing")
    if ex is not None:
        ex = np.asarray(ex) if not sp.issparse(ex) else ex
        if sp.issparse(ex):
            served[sp.csr_matrix(ex).indices] = True
        else:
            served |= ex.astype(bool)
    pattern = sp.csr_matrix((np.ones(cov.nnz), cov.indices, cov.indptr), shape=cov.shape)
    neighbours: list[set[int]] = [set() for _ in range(n_c)]
    xy, spacing = kw.get("candidate_xy"), float(kw.get("min_spacing_m") or 0.0)
    if xy is not None and spacing > 0:
        from careblocks.sites.selection import conflict_pairs

        for a, b in conflict_pairs(xy, spacing):
            neighbours[int(a)].add(int(b))
            neighbours[int(b)].add(int(a))
    dcodes = None
    if kw.get("districts") is not None and kw.get("max_per_district") is not None:
        labels = pd.Series(list(kw["districts"]), dtype=object)
        dcodes = np.where(labels.isna().to_numpy(), -1, pd.factorize(labels)[0])
    # the draws are independent (each has its own seed): in chunks, here or on a cluster
    from careblocks.compute import map_chunks

    out = map_chunks(_draw_range, int(draws), {
        "cov": cov, "kind": kind, "parts": parts, "components": components,
        "candidate_ids": list(candidate_ids), "base": dict(base), "offers": list(offers),
        "objective": objective, "k": int(k), "n_parts": n_parts, "spread": float(spread),
        "part_spread": float(part_spread), "seed": int(seed), "kw": kw, "method": method,
        "inc": inc, "served": served, "pattern": pattern, "neighbours": neighbours, "dcodes": dcodes,
    }, label="sensitivity")
    if not out:
        return np.zeros((0, n_c), dtype=bool), np.zeros((0, n_c), dtype=np.int64)
    return np.concatenate([c for c, _ in out]), np.concatenate([r for _, r in out])


def draw_rng(seed: int, draw: int) -> np.random.Generator:
    """The generator of draw ``draw``: the ``draw``-th child of ``SeedSequence(seed)``, so a
    draw's weighting depends on the seed and its number only (not on which draws run with it,
    in which process or chunk)."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(draw),)))


def _draw_range(lo: int, hi: int, *, cov, kind, parts, components, candidate_ids, base, offers,
                objective, k, n_parts, spread, part_spread, seed, kw, method, inc, served,
                pattern, neighbours, dcodes) -> tuple[np.ndarray, np.ndarray]:
    """Draws ``lo..hi-1`` of :func:`run_draws`: (chosen, ranks) rows."""
    from careblocks.sites.scoring import weighted_score
    from careblocks.sites.selection import select_sites

    n_c = cov.shape[0]
    kw = dict(kw)
    chosen = np.zeros((hi - lo, n_c), dtype=bool)
    ranks = np.zeros((hi - lo, n_c), dtype=np.int64)
    exact_local = kind == "weights" and kw.get("capacity") is None
    for i, d in enumerate(range(lo, hi)):
        w, factors = draw_factors(draw_rng(seed, d), base, n_parts, spread=spread, part_spread=part_spread)
        if kind == "pairs":
            values = sp.csr_matrix(sum((f * m for f, m in zip(factors, parts, strict=True)),
                                       sp.csr_matrix(cov.shape)))
            kw.pop("capacity", None)
            res = select_sites(values, None, k=k, method=method, pair_gains=True, **kw)
            inc_value = float(np.asarray(values[inc].max(axis=0).todense()).ravel()[~served].sum()) \
                if inc.size else -1.0
            # keep the run's proposal when it still does at least as well under this weighting
            pick = inc if inc_value >= res.objective - 1e-9 * max(1.0, abs(res.objective)) else res.selected
        else:
            omega = factors @ parts
            res = select_sites(cov, omega, k=k, method=method, **kw)
            pick = res.selected
            if exact_local:
                # improve both the heuristic's set and the run's proposal by 1-swaps; the
                # better of the two (the proposal on ties) is this draw's choice
                a, va = _swap_search(pattern, omega, res.selected, neighbours, dcodes,
                                     kw.get("max_per_district"), served)
                pick = a
                if inc.size:
                    b, vb = _swap_search(pattern, omega, inc, neighbours, dcodes, kw.get("max_per_district"), served)
                    if vb >= va - 1e-9 * max(1.0, abs(va)):
                        pick = b
        chosen[i, pick] = True
        _, ranks[i] = weighted_score(_perturbed_components(components, offers, objective, factors), w,
                                     candidate_ids)
    return chosen, ranks


def sensitivity(config, scored: pd.DataFrame, origins: pd.DataFrame, coverage: sp.csr_matrix,
                selected_ids: Sequence[str], *, threshold_min: float,
                select_kw: dict | None = None) -> pd.DataFrame:
    """The ``sensitivity`` table: per candidate, how often it is selected across weightings.

    Parameters
    ----------
    scored
        The scored candidates (component columns, ``score``, ``rank``), rows as ``coverage``.
    origins
        The origins the run selected on.
    coverage
        Candidates x origins within T (the matrix the run selected on).
    selected_ids
        The run's proposal, in order.
    select_kw
        The run's constraints for :func:`careblocks.selection.select_sites`.

    Returns
    -------
    pandas.DataFrame
        ``candidate_id``, ``name``, ``order`` (in the run's proposal, null if not proposed),
        ``selected_share`` (0-1, share of the draws that select it), ``rank`` (in the run),
        ``rank_median``, ``rank_p5``, ``rank_p95`` (its score rank across the draws) and
        ``rank_spread`` (``rank_p95 - rank_p5``); sorted by ``selected_share``, then ``rank``.
        Candidates never selected, not proposed and outside the run's top 2K are left out.
        ``attrs["draws"]`` holds the number of draws.
    """
    sc = config.sensitivity
    objective = config.sites.objective
    ids = scored["candidate_id"].astype(str).tolist()
    kind, parts = objective_parts(config, origins, coverage, threshold_min=threshold_min)
    base = dict(config.sites.weights) if config.sites.weights else dict(DEFAULT_SITE_WEIGHTS)
    chosen, ranks = run_draws(
        coverage, kind, parts, scored, ids, base=base, offers=list(config.sites.offers),
        objective=objective, k=config.sites.k, draws=sc.draws, spread=sc.spread,
        part_spread=sc.trip_rate_spread if objective == "hours_returned" else sc.spread,
        seed=sc.seed, select_kw=select_kw, method=sc.method,
        incumbent=[ids.index(c) for c in selected_ids],
    )
    order = {c: i + 1 for i, c in enumerate(selected_ids)}
    p5, p50, p95 = np.percentile(ranks, [5, 50, 95], axis=0, method="nearest")
    out = pd.DataFrame({
        "candidate_id": ids,
        "name": scored["name"].to_numpy() if "name" in scored.columns else None,
        "order": pd.array([order.get(c) for c in ids], dtype="Int64"),
        "selected_share": chosen.mean(axis=0),
        "rank": scored["rank"].to_numpy(np.int64),
        "rank_median": p50.astype(np.int64),
        "rank_p5": p5.astype(np.int64),
        "rank_p95": p95.astype(np.int64),
    })
    out["rank_spread"] = out["rank_p95"] - out["rank_p5"]
    keep = (out["selected_share"] > 0) | out["order"].notna() | (out["rank"] <= 2 * config.sites.k)
    out = out[keep].sort_values(["selected_share", "rank"], ascending=[False, True], kind="stable")
    out = out.reset_index(drop=True)
    out.attrs["draws"] = int(sc.draws)
    return out


def _ranges(orders: list[int]) -> str:
    parts, start = [], None
    for i, o in enumerate(orders):
        if start is None:
            start = o
        if i + 1 == len(orders) or orders[i + 1] != o + 1:
            parts.append(f"{start}" if start == o else f"{start}-{o}")
            start = None
    return ", ".join(parts)


def robustness_sentence(table: pd.DataFrame, language: str | None = None) -> str | None:
    """"Sites 1-3 are chosen in 95 % of weightings; site 5 in 40 %." from the table, in
    ``language`` (an ``outputs.language`` code; English by default).

    Proposed sites with the same share (whole per cent, rounded down so that 99.6 % never
    reads 100 %) are grouped; None without draws.
    """
    from careblocks.i18n import N_
    from careblocks.i18n import language as get_language

    L = get_language(language)
    sel = table[table["order"].notna()].sort_values("order")
    draws = int(table.attrs.get("draws", 0))
    if not len(sel) or draws <= 0:
        return None
    pct = np.floor(sel["selected_share"].to_numpy(float) * 100 + 1e-9).astype(int)
    groups: dict[int, list[int]] = {}
    for o, p in zip(sel["order"].astype(int), pct, strict=True):
        groups.setdefault(int(p), []).append(o)
    first = (N_("Site {sites} is chosen in {pct} % of weightings"),
             N_("Sites {sites} are chosen in {pct} % of weightings"))
    later = (N_("site {sites} in {pct} %"), N_("sites {sites} in {pct} %"))
    parts = []
    for n, (p, orders) in enumerate(sorted(groups.items(), key=lambda x: (-x[0], x[1]))):
        template = (later if n else first)[len(orders) > 1]
        parts.append(L._(template).format(sites=_ranges(orders), pct=L.integer(p)))
    return "; ".join(parts) + " " + L._("({n} weightings of the score and trip rates).").format(
        n=L.integer(draws))
