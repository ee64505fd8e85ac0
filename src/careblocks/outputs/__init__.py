"""Writers of a run's results: GeoPackage (GIS teams), HTML map (council), report (decision makers).

Every writer takes a :class:`careblocks.results.Results` and a path, writes atomically (a
temporary file in the same folder, then ``os.replace``) and returns the path it wrote.
"""

from __future__ import annotations

from careblocks.outputs.geopackage import write_geopackage
from careblocks.outputs.report import write_report
from careblocks.outputs.webmap import write_map

__all__ = ["write_geopackage", "write_map", "write_report"]
