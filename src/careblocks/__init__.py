"""careblocks: plan care infrastructure (Care Blocks) in cities."""

from careblocks._version import __version__

__all__ = ["__version__"]
