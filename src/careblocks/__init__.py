"""careblocks: plan care infrastructure (Care Blocks) in cities."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("careblocks")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0"

__all__ = ["__version__"]
