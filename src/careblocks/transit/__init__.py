"""Public transport: GTFS timetable arrays, Range-RAPTOR and stop profiles (issue #4).

The pipeline calls :func:`load_timetable` once and :func:`transit_access` per walking speed
(times to the nearest facility, read from every stop's profile to each service:
:mod:`careblocks.transit.profile`); site selection calls :func:`transit_coverage` for walk +
transit catchments of candidates (one Range-RAPTOR per origin: :mod:`careblocks.transit.raptor`).
"""

from careblocks.transit.adapter import departure_times, load_timetable, transit_access
from careblocks.transit.reach import transit_coverage
from careblocks.transit.timetable import Timetable, build_timetable

__all__ = [
    "Timetable",
    "build_timetable",
    "departure_times",
    "load_timetable",
    "transit_access",
    "transit_coverage",
]
