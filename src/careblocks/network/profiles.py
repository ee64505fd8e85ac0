"""Slope functions and barriers of the carer travel profiles (the formulas of WalkCost).

A profile turns the walking network into DIRECTED edge seconds: the two CSR entries of an
edge (``u -> v`` and ``v -> u``) get different times on a slope, and an entry the profile
cannot use (steps for a stroller or a wheelchair, a grade beyond its limits) gets ``inf``,
which every search kernel treats as no edge, so a trip that needs it is unreachable (NaN),
never a silent detour through steps.

Slope functions (``g`` = rise per metre in the direction of travel):

- ``"tobler"``: Tobler's hiking function, W. Tobler (1993), *Three presentations on
  geographical analysis and modeling*, NCGIA Technical Report 93-1:
  ``speed = 6 exp(-3.5 |g + 0.05|)`` km/h, fastest on a gentle descent (-5 %), scaled so that
  ``speed(0)`` is the profile's flat speed.
- ``"wheelchair"``: the cost function of AccessMap (Taskar Center for Accessible Technology,
  University of Washington; Bolten & Caspi 2019, "AccessMap website demonstration:
  Individualized, accessible pedestrian trip planning at scale", ASSETS '19): a Tobler-shaped
  exponential around an ideal incline of -0.87 %, whose decay on each side makes the speed fall
  to 1/5 of the ideal speed at the user's steepest uphill and downhill grades; beyond those
  grades the way is impassable. Defaults: 8.33 % uphill (1:12, the steepest ramp of the 2010
  ADA Standards for Accessible Design, section 405.2, also OpenTripPlanner's wheelchair
  ``maxSlope``) and 10 % downhill.
- ``"flat"``: slope ignored.

The profile itself is a :class:`careblocks.network.cost.WalkCost` (the one owner of walking
cost); this module holds its formulas. Trips are timed from the household TO the service (as
r5py and routers time an origin -> destination trip); searches that start at the services use
``WalkCost.inbound_seconds``. The straight snap legs between a point and its street are walked
at the flat speed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Barrier bits of :attr:`WalkNetwork.barrier` (one uint8 per CSR entry): what a travel
# profile may refuse to use. Set from the OSM tags the readers keep (see io/osm.EDGE_TAGS).
#: ``highway=steps`` (unless ``ramp:wheelchair=yes``)
STEPS = 1
#: ``wheelchair=no``
WHEELCHAIR_NO = 2
#: ``kerb=raised`` (a kerb mapped on the way: ``highway=footway`` + ``footway=crossing``)
KERB_RAISED = 4
#: ``wheelchair=limited``
WHEELCHAIR_LIMITED = 8
#: ``tunnel=yes``: usable, but no home, facility or stop is snapped onto it (a building
#: above an underground service tunnel is not entered from the tunnel; GraphHopper's
#: ``snap_preventions`` makes the same choice)
TUNNEL = 16
BARRIERS = {"steps": STEPS, "wheelchair_no": WHEELCHAIR_NO, "kerb_raised": KERB_RAISED,
            "wheelchair_limited": WHEELCHAIR_LIMITED, "tunnel": TUNNEL}

#: Tobler's constants: decay per unit grade and the grade of the fastest walk
TOBLER_K = 3.5
TOBLER_IDEAL = -0.05
#: AccessMap's wheelchair constants: ideal grade and the speed ratio at the limits
WHEELCHAIR_IDEAL = -0.0087
WHEELCHAIR_DIVISOR = 5.0
#: steepest grades a manual wheelchair user is expected to manage (ADA 2010 section 405.2 ramps;
#: AccessMap's default descent limit)
WHEELCHAIR_MAX_UPHILL = 0.0833
WHEELCHAIR_MAX_DOWNHILL = 0.10

SLOPE_FUNCTIONS = ("tobler", "wheelchair", "flat")


def tobler_factor(grade: np.ndarray) -> np.ndarray:
    """Speed on ``grade`` over speed on the flat, by Tobler's hiking function."""
    g = np.asarray(grade, np.float64)
    return np.exp(-TOBLER_K * np.abs(g - TOBLER_IDEAL)) / math.exp(-TOBLER_K * abs(TOBLER_IDEAL))


def wheelchair_factor(grade: np.ndarray, *, max_uphill: float, max_downhill: float) -> np.ndarray:
    """Speed on ``grade`` over speed on the flat, by AccessMap's wheelchair function.

    0 (impassable) beyond ``max_uphill`` (a positive grade) or steeper than ``max_downhill``
    (a positive number, the steepest descent).
    """
    g = np.asarray(grade, np.float64)
    m = WHEELCHAIR_IDEAL
    k_up = math.log(WHEELCHAIR_DIVISOR) / abs(max_uphill - m)
    k_down = math.log(WHEELCHAIR_DIVISOR) / abs(-max_downhill - m)
    k = np.where(g >= m, k_up, k_down)
    flat = math.exp(-k_up * abs(0.0 - m))
    f = np.exp(-k * np.abs(g - m)) / flat
    return np.where((g > max_uphill) | (g < -max_downhill), 0.0, f)


def slope_factor(grade: np.ndarray, slope: str, *, max_uphill: float | None = None,
                 max_downhill: float | None = None) -> np.ndarray:
    """Speed on each grade over the flat speed (0 = cannot be used), for a slope function.

    ``max_uphill`` / ``max_downhill`` (positive rise per metre) close steeper entries for any
    slope function; ``"wheelchair"`` defaults them to :data:`WHEELCHAIR_MAX_UPHILL` and
    :data:`WHEELCHAIR_MAX_DOWNHILL`.
    """
    g = np.asarray(grade, np.float64)
    if slope == "tobler":
        f = tobler_factor(g)
    elif slope == "wheelchair":
        up = WHEELCHAIR_MAX_UPHILL if max_uphill is None else max_uphill
        down = WHEELCHAIR_MAX_DOWNHILL if max_downhill is None else max_downhill
        f = wheelchair_factor(g, max_uphill=up, max_downhill=down)
    elif slope == "flat":
        f = np.ones_like(g)
    else:
        raise ValueError(f"slope function {slope!r}: use one of {', '.join(SLOPE_FUNCTIONS)}")
    if max_uphill is not None:
        f = np.where(g > max_uphill, 0.0, f)
    if max_downhill is not None:
        f = np.where(g < -max_downhill, 0.0, f)
    return f


def barrier_mask(barrier: np.ndarray, avoid: tuple[str, ...]) -> np.ndarray:
    """Which CSR entries carry one of the ``avoid`` barriers (names of ``BARRIERS``)."""
    bits = 0
    for b in avoid:
        bits |= BARRIERS[b]
    return (np.asarray(barrier) & bits) != 0


_SLOPE_TEXT = {"tobler": "slowed on slopes by Tobler's hiking function",
               "wheelchair": "slowed on slopes by AccessMap's wheelchair function",
               "flat": "slope ignored"}


def describe_profile(p: Any) -> str:
    """``"3.6 km/h, slowed on slopes by Tobler's hiking function, avoids steps"`` (for reports)."""
    parts = [f"{p.speed_kmh:g} km/h", _SLOPE_TEXT.get(p.slope, p.slope)]
    if p.slope == "wheelchair" or p.max_uphill is not None or p.max_downhill is not None:
        up = p.max_uphill if p.max_uphill is not None else (
            WHEELCHAIR_MAX_UPHILL if p.slope == "wheelchair" else None)
        down = p.max_downhill if p.max_downhill is not None else (
            WHEELCHAIR_MAX_DOWNHILL if p.slope == "wheelchair" else None)
        lim = [f"{up * 100:.3g} % uphill" if up is not None else "",
               f"{down * 100:.3g} % downhill" if down is not None else ""]
        parts.append("no grades steeper than " + " or ".join(x for x in lim if x))
    if p.avoid:
        parts.append("avoids " + ", ".join(a.replace("_", " ") for a in p.avoid))
    return ", ".join(parts)
