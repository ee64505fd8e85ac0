"""``careblocks prioritise``: rank census units and districts, write the outputs."""

from __future__ import annotations

import warnings
from pathlib import Path

from careblocks.audit import Audit
from careblocks.audit.census import audit_census
from careblocks.config import Config
from careblocks.demand.prioritise import Prioritisation, prioritise
from careblocks.errors import DataQualityWarning
from careblocks.io.layers import study_area
from careblocks.outputs.prioritise import write_prioritisation


def run_prioritise(config: Config, *, out_dir: Path | None = None) -> tuple[Prioritisation, list[Path]]:
    """Rank every census unit and district of ``config``; write GeoPackage, map and tables.

    Returns the :class:`~careblocks.demand.prioritise.Prioritisation` and the paths written
    (into ``out_dir``, else ``outputs.dir``, else ``out/<study>/``).
    """
    audit = Audit(strict=config.audit.strict)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        # the census audit of `run` (duplicates, ranges, coarse rows without geometry)
        audit_census(config, study_area(config), audit)
        audit.raise_if_errors()
        res = prioritise(config)
    # each warning once: the audit read the census layers before the ranking did
    res.info["warnings"] = list(dict.fromkeys(str(w.message) for w in caught
                                              if issubclass(w.category, DataQualityWarning)))
    res.info["audit"] = audit.to_dict()
    for w in caught:
        if not issubclass(w.category, DataQualityWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    d = Path(out_dir) if out_dir is not None else (config.outputs.dir or Path("out") / config.study.slug)
    return res, write_prioritisation(res, config, d)
