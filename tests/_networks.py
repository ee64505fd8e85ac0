"""Walk networks for tests, built from reader output without the config/cache layer."""

from __future__ import annotations

import warnings

import shapely

from careblocks.errors import DataQualityWarning
from careblocks.network.graph import WalkNetwork, build_walk_network, local_crs


def walk_network(nodes, edges) -> WalkNetwork:
    """Build a WalkNetwork in the UTM zone of the nodes (LCC warnings silenced)."""
    crs = local_crs(shapely.box(*nodes.total_bounds))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        net, _ = build_walk_network(nodes, edges, crs=crs)
    return net
