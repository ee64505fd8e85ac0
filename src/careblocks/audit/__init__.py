"""The input audit: what the inputs can support, checked before any heavy analysis.

Every check adds a :class:`Finding` to an :class:`Audit`. Severity policy:

* ``error`` stops the run (the CLI prints one line naming the file, column or config key and
  the fix, and exits 2); no output is written, so no figure is computed from flagged data;
* ``warning`` goes to the terminal, the report (in full) and ``run_metadata``; ``--strict``
  (or ``audit.strict = true``) turns warnings into errors for unattended runs;
* ``info`` is a figure (coverage, trip counts) shown in the report's audit table.

The checks live in small modules: :mod:`.inputs` (only regular files, size limits),
:mod:`.census` (duplicates, geometry types, value ranges, published totals),
:mod:`.gtfs` (feed statistics against the raw files) and :mod:`.coverage` (the study area
covered by the network extract, the census and the facility layers).
"""

from __future__ import annotations

from careblocks.audit.core import Audit, Finding

__all__ = ["Audit", "Finding"]
