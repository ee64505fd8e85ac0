"""Every output column name, the one threshold tag, and the care groups with their labels.

Writers and readers of a column ask this module for its name, so that a threshold of
12.3456789 minutes is written and looked up under the same ``n_within_12.3456789min_<s>``.
Nothing here parses a column name back with string splitting: :func:`service_of` asks the
known service names.

Access columns on origins (DESIGN.md contracts), ``T`` = :func:`threshold_tag`:

- ``walk_min_<s>``, ``walk_min_<s>_<profile>``, ``transit_min_<s>`` (``_p<q>`` per
  percentile), ``best_min_<s>``: minutes, null when unreachable;
- ``n_within_<T>min_<s>``: facilities of ``s`` within T; ``services_within_<T>min``: how many
  service types have one within T; ``walk_min_<s>_after`` and ``services_within_<T>min_after``
  once the selected Care Blocks exist.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from careblocks.config import CensusGroups

__all__ = [
    "CARE_GROUPS",
    "CENSUS_GROUPS",
    "TIME_MODES",
    "best_min",
    "group_label",
    "group_words",
    "n_within",
    "service_of",
    "services_within",
    "threshold_tag",
    "time_column",
    "transit_min",
    "walk_min",
]

#: Travel-time modes of the access columns, in the order a reader prefers them.
TIME_MODES: tuple[str, ...] = ("best", "walk", "transit")

#: Census groups that may sit on the origins (the fields of ``census.groups``), in order.
CENSUS_GROUPS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(CensusGroups))
#: The care groups among them (people who need care or give it; ``poverty`` is a condition,
#: not a group a Care Block covers): the ``<group>_covered`` components of candidate sites.
CARE_GROUPS: tuple[str, ...] = tuple(g for g in CENSUS_GROUPS if g != "poverty")

#: How a council reads each group (table rows, legends); also ``population``.
_GROUP_LABELS: dict[str, str] = {
    "population": "Everyone",
    "children_under5": "Children under 5",
    "children_5_14": "Children 5-14",
    "older_60plus": "People 60+",
    "older_65plus": "People 65+",
    "older_80plus": "People 80+",
    "women_15plus": "Women 15+",
    "women_caregivers": "Women caregivers",
    "female_headed_households": "Female-headed households",
    "people_with_disabilities": "People with disabilities",
    "poverty": "People in poverty",
}

#: The groups named in a sentence ("2,900 of them children under 5"), in order of mention.
_GROUP_WORDS: dict[str, str] = {
    "children_under5": "children under 5",
    "children_5_14": "children aged 5 to 14",
    "older_80plus": "people over 80",
    "older_60plus": "people over 60",
    "people_with_disabilities": "people with disabilities",
    "women_caregivers": "women caregivers",
}


def threshold_tag(threshold_min: float) -> str:
    """The threshold as it appears in column names and labels: ``15.0 -> "15"``,
    ``7.5 -> "7.5"``, ``12.3456789 -> "12.3456789"`` (exact: the shortest text that reads
    back as the same number, so writer and reader always agree)."""
    t = float(threshold_min)
    return str(int(t)) if t.is_integer() else repr(t)


def walk_min(service: str, profile: str | None = None, *, after: bool = False) -> str:
    """``walk_min_<s>``, ``walk_min_<s>_<profile>`` or ``walk_min_<s>_after``."""
    name = f"walk_min_{service}" + (f"_{profile}" if profile else "")
    return name + "_after" if after else name


def transit_min(service: str, percentile: int | None = None) -> str:
    """``transit_min_<s>`` (the reported percentile) or ``transit_min_<s>_p<q>``."""
    return f"transit_min_{service}" + (f"_p{percentile}" if percentile is not None else "")


def best_min(service: str) -> str:
    """``best_min_<s>``: the shorter of walking and walk + transit."""
    return f"best_min_{service}"


def time_column(mode: str, service: str) -> str:
    """``<mode>_min_<s>`` for a mode of :data:`TIME_MODES`."""
    if mode not in TIME_MODES:
        raise ValueError(f"mode {mode!r}: use one of {', '.join(TIME_MODES)}")
    return f"{mode}_min_{service}"


def n_within(service: str, threshold_min: float) -> str:
    """``n_within_<T>min_<s>``: facilities of the service within T."""
    return f"n_within_{threshold_tag(threshold_min)}min_{service}"


def services_within(threshold_min: float, *, after: bool = False) -> str:
    """``services_within_<T>min`` (``_after`` once the selected sites exist)."""
    return f"services_within_{threshold_tag(threshold_min)}min" + ("_after" if after else "")


def service_of(column: str, services: Iterable[str]) -> str | None:
    """The service a ``<mode>_min_<s>`` column is about, among ``services`` (None if none)."""
    for s in sorted(services, key=len, reverse=True):
        for mode in TIME_MODES:
            if column == time_column(mode, s):
                return s
    return None


def group_label(group: str) -> str:
    """A group's label for tables and legends (``children_under5 -> "Children under 5"``)."""
    return _GROUP_LABELS.get(group, group.replace("_", " ").capitalize())


def group_words() -> dict[str, str]:
    """The groups a rationale sentence may name, in order, with the words it uses."""
    return dict(_GROUP_WORDS)
