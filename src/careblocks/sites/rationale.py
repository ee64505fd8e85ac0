"""Per-site table and rationale sentences of the selected Care Block sites.

:func:`selected_sites` turns a :class:`~careblocks.sites.selection.SelectionResult` into the
``selected_sites`` layer with one plain-language :func:`rationale` per site. See
``docs/site_selection.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from careblocks.sites.selection import SelectionResult

_GROUP_WORDS = {
    "children_under5": "children under 5",
    "children_5_14": "children aged 5 to 14",
    "older_80plus": "people over 80",
    "older_60plus": "people over 60",
    "people_with_disabilities": "people with disabilities",
    "women_caregivers": "women caregivers",
}


def round_sensibly(x: float) -> int:
    """Round for a sentence: < 100 exact, < 1,000 to 10, < 100,000 to 100, else to 1,000."""
    x = float(x)
    if not np.isfinite(x):
        return 0
    step = 1 if abs(x) < 100 else 10 if abs(x) < 1_000 else 100 if abs(x) < 100_000 else 1_000
    return int(round(x / step) * step)


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def rationale(row, *, threshold_min: float, offers: Sequence[str], labels: dict[str, str] | None = None) -> str:
    """One sentence a council member can read, from a scored candidate's component columns.

    "Serves 18,400 people within 15 minutes, 2,900 of them children under 5; brings daycare
    within reach of 6,100 and health of 900; returns about 4,300 caregiver hours a week."
    Care groups appear only when the origins carry them; services only when the gap closed
    is at least 1 person. With a ``transit_population_covered`` column (walk + transit
    catchments, ``sites.use_transit``) the first clause says "on foot" and is followed by
    "31,000 within 15 minutes by walk + transit".
    """
    labels = labels or {}
    t = int(threshold_min) if float(threshold_min).is_integer() else threshold_min
    transit = "transit_population_covered" in row.index and np.isfinite(row["transit_population_covered"])
    s = f"Serves {round_sensibly(row['population_covered']):,} people within {t} minutes"
    if transit:
        s += " on foot"
    groups = [
        f"{round_sensibly(row[f'{g}_covered']):,} {w}"
        for g, w in _GROUP_WORDS.items()
        if f"{g}_covered" in row.index and row[f"{g}_covered"] >= 1
    ][:2]
    if groups:
        s += ", " + _join(groups).replace(" ", " of them ", 1)
    if transit:
        s += f"; {round_sensibly(row['transit_population_covered']):,} within {t} minutes by walk + transit"
    gaps = [
        (labels.get(sv, sv.replace("_", " ")).lower(), row[f"gap_closed_{sv}"])
        for sv in offers
        if f"gap_closed_{sv}" in row.index and row[f"gap_closed_{sv}"] >= 1
    ]
    if gaps:
        first = f"{gaps[0][0]} within reach of {round_sensibly(gaps[0][1]):,}"
        rest = [f"{n} of {round_sensibly(v):,}" for n, v in gaps[1:]]
        s += "; brings " + _join([first, *rest])
    if "hours_returned_week" in row.index and row["hours_returned_week"] >= 1:
        s += f"; returns about {round_sensibly(row['hours_returned_week']):,} caregiver hours a week"
    return s + "."


def selected_sites(scored, result: SelectionResult, *, threshold_min: float, offers: Sequence[str],
                   objective: str, labels: dict[str, str] | None = None):
    """The chosen candidates (rows of ``scored`` at ``result.selected``) in selection order.

    Adds ``order`` (1..K), ``objective``, ``marginal_gain``, ``cumulative_gain``,
    ``cumulative_share`` (of the weight not already served) and ``rationale``.
    """
    out = scored.iloc[result.selected].copy()
    out.insert(0, "order", np.arange(1, len(out) + 1))
    out["objective"] = objective
    out["marginal_gain"] = result.marginal_gain
    out["cumulative_gain"] = result.cumulative
    out["cumulative_share"] = result.cumulative / result.total_weight if result.total_weight > 0 else 0.0
    out["rationale"] = [rationale(r, threshold_min=threshold_min, offers=offers, labels=labels)
                        for _, r in out.iterrows()]
    return out.reset_index(drop=True)
