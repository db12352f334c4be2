"""detectkd: one daemon that schedules, collects, detects and alerts for every metric."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("detectkd")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
