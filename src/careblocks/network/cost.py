"""The one walking-cost object: how many seconds a walk takes.

Every layer that turns metres into walking seconds asks a :class:`WalkCost`: the network
searches (edge seconds of every CSR entry), the snap legs of origins, facilities, candidate
sites and transit stops (straight-line metres to the network), transfers between stops, and
the limits of bounded searches (minutes -> seconds, and the metres a limit can reach).

Edge weights are per CSR entry, so a cost that differs by direction fills the two directions
of an edge with different seconds: a carer travel profile (``walk.profiles``) has a speed on
the flat, a slope function and ways it cannot use (see :mod:`careblocks.network.profiles`
for the formulas and their sources). An entry a profile cannot use costs ``inf``, which every
search treats as no edge, so a trip that needs it is unreachable (null), never a detour
through steps. Unreachable stays ``inf``, never a sentinel.

Direction: :meth:`WalkCost.edge_seconds` is the time of travelling each CSR entry ``u -> v``;
searches that start at the destinations (facilities, candidate sites, stops for egress) and
run outwards use :meth:`WalkCost.inbound_seconds`, so the times they find are those of trips
from home TO the service.
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
    #: "flat", "tobler" or "wheelchair" (see careblocks.network.profiles)
    slope: str = "flat"
    #: barrier names (careblocks.network.graph.BARRIERS) this walker cannot use
    avoid: tuple[str, ...] = ()
    #: steepest grades (rise per metre, positive) it can use; None = no limit
    max_uphill: float | None = None
    max_downhill: float | None = None

    def __post_init__(self) -> None:
        try:
            ok = float(self.speed_kmh) > 0 and np.isfinite(float(self.speed_kmh))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InputDataError(f"{self.key}: {self.speed_kmh!r} is not a speed; use a value > 0 (km/h)")

    @classmethod
    def from_config(cls, walk: WalkConfig) -> WalkCost:
        """The cost of ``[walk]`` in a study config (``walk.speed_kmh``, ``walk.slope``)."""
        return cls(walk.speed_kmh, key="walk.speed_kmh", slope=getattr(walk, "slope", "flat"))

    @classmethod
    def profiles_from_config(cls, walk: WalkConfig) -> dict[str, WalkCost]:
        """One cost per ``walk.profiles`` entry.

        A profile given as a number is its flat speed; unset keys come from the default
        profile of the same name (:data:`careblocks.config.DEFAULT_PROFILES`), else from the
        base walk.
        """
        from careblocks.config import DEFAULT_PROFILES, ProfileConfig

        out: dict[str, WalkCost] = {}
        for name, v in dict(walk.profiles).items():
            d = DEFAULT_PROFILES.get(name, ProfileConfig())
            v = v if isinstance(v, ProfileConfig) else ProfileConfig(speed_kmh=float(v))

            def pick(k: str, fallback: Any, v: Any = v, d: Any = d) -> Any:
                for src in (v, d):
                    if getattr(src, k) is not None:
                        return getattr(src, k)
                return fallback

            out[name] = cls(
                float(pick("speed_kmh", walk.speed_kmh)), key=f"walk.profiles.{name}",
                slope=pick("slope", getattr(walk, "slope", "flat")), avoid=tuple(pick("avoid", ())),
                max_uphill=pick("max_uphill", None), max_downhill=pick("max_downhill", None),
            )
        return out

    @property
    def directed(self) -> bool:
        """Whether the two directions of an edge may cost differently (slope, barriers)."""
        return (self.slope != "flat" or bool(self.avoid) or self.max_uphill is not None
                or self.max_downhill is not None)

    @property
    def speed_mps(self) -> float:
        """Metres per second."""
        return float(self.speed_kmh) / 3.6

    # -- metres -> seconds ------------------------------------------------------------
    def speed_factor(self, network: Any) -> np.ndarray | None:
        """Speed over the flat speed of every CSR entry in its direction (0 = cannot be
        used), or None when the cost is the same on every entry of this network."""
        from careblocks.network.profiles import barrier_mask, slope_factor

        if not self.directed:
            return None
        has_grade = getattr(network, "z", None) is not None or getattr(network, "incline", None) is not None
        f = None
        if has_grade and (self.slope != "flat" or self.max_uphill is not None or self.max_downhill is not None):
            g = network.grade()
            if g.any():  # a network without heights or mapped incline is flat for everyone
                f = slope_factor(g, self.slope, max_uphill=self.max_uphill,
                                 max_downhill=self.max_downhill)
        if self.avoid and getattr(network, "barrier", None) is not None:
            blocked = barrier_mask(network.barrier, self.avoid)
            f = np.where(blocked, 0.0, 1.0 if f is None else f)
        return f

    def edge_seconds(self, network: Any) -> np.ndarray:
        """Seconds of travelling every CSR entry ``u -> v`` of ``network`` (anything with
        ``length_m``; ``inf`` where this walker cannot use it)."""
        flat = np.asarray(network.length_m, dtype=np.float64) / self.speed_mps
        f = self.speed_factor(network)
        if f is None:
            return flat
        with np.errstate(divide="ignore"):
            return np.where(f > 0, flat / np.where(f > 0, f, 1.0), np.inf)

    def inbound_seconds(self, network: Any) -> np.ndarray:
        """Per CSR entry ``u -> v``, the seconds of travelling ``v -> u``: the weights of a
        search that starts at the destinations and runs outwards (trips TO them)."""
        w = self.edge_seconds(network)
        if self.speed_factor(network) is None:
            return w  # the same both ways
        return w[network.reverse]

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
        import dataclasses

        return dataclasses.replace(self, speed_kmh=speed_kmh, key=key or self.key)
