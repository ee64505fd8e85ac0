"""``careblocks prioritise``: rank census units and districts, write the outputs."""

from __future__ import annotations

import warnings
from pathlib import Path

from careblocks.config import Config
from careblocks.demand.prioritise import Prioritisation, prioritise
from careblocks.errors import DataQualityWarning
from careblocks.outputs.prioritise import write_prioritisation


def run_prioritise(config: Config, *, out_dir: Path | None = None) -> tuple[Prioritisation, list[Path]]:
    """Rank every census unit and district of ``config``; write GeoPackage, map and tables.

    Returns the :class:`~careblocks.demand.prioritise.Prioritisation` and the paths written
    (into ``out_dir``, else ``outputs.dir``, else ``out/<study>/``).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        res = prioritise(config)
    res.info["warnings"] = [str(w.message) for w in caught
                            if issubclass(w.category, DataQualityWarning)]
    for w in caught:
        if not issubclass(w.category, DataQualityWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    d = Path(out_dir) if out_dir is not None else (config.outputs.dir or Path("out") / config.study.slug)
    return res, write_prioritisation(res, config, d)
