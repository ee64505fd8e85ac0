"""The one walking-cost object: how many seconds a walk takes.

Every layer that turns metres into walking seconds asks a :class:`WalkCost`: the network
searches (edge seconds of every CSR entry), the snap legs of origins, facilities, candidate
sites and transit stops (straight-line metres to the network), transfers between stops, and
the limits of bounded searches (minutes -> seconds, and the metres a limit can reach).

Edge weights are per CSR entry, so a cost that differs by direction (slope, steps) can fill
both directions of an edge with different seconds; today the cost is one speed on flat
ground. Unreachable stays ``inf``, never a sentinel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from careblocks.config import WalkConfig
from careblocks.errors import InputDataError

__all__ = ["WalkCost"]


@dataclass(frozen=True)
class WalkCost:
    """Walking at ``speed_kmh`` on flat ground.

    Parameters
    ----------
    speed_kmh
        Walking speed in km/h (> 0).
    key
        The name of where the speed came from, for error messages (a config key such as
        ``walk.speed_kmh`` or ``walk.profiles.stroller``).

    Examples
    --------
    >>> cost = WalkCost(4.8)
    >>> float(cost.leg_seconds(100.0))
    75.0
    >>> cost.limit_s(15)
    900.0
    >>> float(cost.metres_within(15))
    1200.0
    """

    speed_kmh: float = WalkConfig.speed_kmh  # the one default, in config.py
    key: str = "walk.speed_kmh"

    def __post_init__(self) -> None:
        try:
            ok = float(self.speed_kmh) > 0 and np.isfinite(float(self.speed_kmh))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InputDataError(f"{self.key}: {self.speed_kmh!r} is not a speed; use a value > 0 (km/h)")

    @classmethod
    def from_config(cls, walk: WalkConfig) -> WalkCost:
        """The cost of ``[walk]`` in a study config (``walk.speed_kmh``)."""
        return cls(walk.speed_kmh, key="walk.speed_kmh")

    @classmethod
    def profiles_from_config(cls, walk: WalkConfig) -> dict[str, WalkCost]:
        """One cost per ``walk.profiles`` entry (name -> km/h)."""
        return {name: cls(v, key=f"walk.profiles.{name}") for name, v in dict(walk.profiles).items()}

    @property
    def speed_mps(self) -> float:
        """Metres per second."""
        return float(self.speed_kmh) / 3.6

    # -- metres -> seconds ------------------------------------------------------------
    def edge_seconds(self, network: Any) -> np.ndarray:
        """Seconds of every CSR entry of ``network`` (anything with ``length_m``)."""
        return np.asarray(network.length_m, dtype=np.float64) / self.speed_mps

    def leg_seconds(self, metres) -> np.ndarray:
        """Seconds of straight-line legs (a point's snap to its node, a stop transfer)."""
        return np.asarray(metres, dtype=np.float64) / self.speed_mps

    # -- limits -----------------------------------------------------------------------
    @staticmethod
    def limit_s(minutes: float) -> float:
        """A limit in minutes as the seconds the searches use."""
        return float(minutes) * 60.0

    def metres_within(self, minutes: float) -> float:
        """The longest walk, in metres, that fits in ``minutes`` (a search radius)."""
        return float(minutes) * 60.0 * self.speed_mps

    def slowdown(self, other: WalkCost) -> float:
        """How many times longer ``other`` takes than this cost over the same flat walk."""
        return self.speed_mps / other.speed_mps

    def with_speed(self, speed_kmh: float, *, key: str | None = None) -> WalkCost:
        """The same cost at another speed (a walking profile)."""
        return WalkCost(speed_kmh, key=key or self.key)
