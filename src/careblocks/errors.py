"""Exception and warning classes.

Every user mistake raises a :class:`CareblocksError` subclass whose message says *what* is
wrong, *where* (file, layer, column or config key path) and *the fix*. The CLI prints that
message as one line and exits with code 2. Any other exception is a bug.
"""

from __future__ import annotations


class CareblocksError(Exception):
    """Base class of every error caused by the user's input or config."""


class ConfigError(CareblocksError, ValueError):
    """A config key is unknown, of the wrong type, or has a value that is not allowed."""


class InputDataError(CareblocksError, ValueError):
    """An input file is missing, unreadable, of an unsupported format or has bad values."""


class MissingColumnError(InputDataError, KeyError):
    """A column named in the config does not exist in the layer."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CRSError(InputDataError):
    """A layer has no coordinate reference system, or one that cannot be used."""


class GTFSError(InputDataError):
    """A GTFS feed is broken or has no service on the requested date."""


class EmptyResultError(InputDataError):
    """The study area, or a layer clipped to it, holds nothing to analyse."""


class DataQualityWarning(UserWarning):
    """A data problem that does not stop the run (far snaps, dropped geometries, ...)."""


class OutputError(CareblocksError):
    """An output path cannot be written (not a folder, read-only, a dangling link)."""


class AuditError(InputDataError):
    """The input audit found a problem the analysis cannot be trusted with (or, with
    ``--strict``, a warning)."""
