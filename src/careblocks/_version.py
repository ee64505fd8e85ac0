"""The package version, importable by every layer without the public API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("careblocks")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0"
