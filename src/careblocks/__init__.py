"""careblocks: plan care infrastructure (Care Blocks) in cities.

The Python API (GeoDataFrames in and out, keyword-only options, no Config needed):

- :func:`walk_network` - the walking network from OSM, a road layer, node/edge frames or an
  osmnx graph;
- :func:`walk_access`, :func:`transit_access` - minutes to the nearest facility of each service;
- :func:`travel_time_matrix` - long ``from_id, to_id, travel_time_min`` (r5py's shape);
- :func:`isochrones` - walkable areas per point and cut-off;
- :func:`care_need_index`, :func:`score_candidates`, :func:`select_sites`;
- :func:`load_config`, :func:`analyse` (a study's :class:`Results`, nothing written),
  :func:`validate` (every input read and checked, no access computed), :func:`run` (a study's
  outputs written) and :func:`prioritise` (census units and districts ranked by care need);
  the CLI is a client of these.

The functions load on first use, so ``import careblocks`` (and the CLI's ``--help``) stays fast.
See ``docs/python_api.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

from careblocks._version import __version__

_API = ("walk_network", "walk_access", "transit_access", "travel_time_matrix", "isochrones",
        "care_need_index", "score_candidates", "select_sites", "load_config", "analyse", "validate",
        "run", "prioritise")

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module("careblocks.api"), name)
    raise AttributeError(f"module 'careblocks' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
