"""plant twin: a discrete-event digital twin of wastewater treatment plants.

``from twin import Twin`` gives the twin as an object (see :mod:`twin.twin`); the import is
lazy, so importing a submodule does not load the whole engine.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Twin", "package_version"]


def package_version() -> str:
    """The installed version of plant-twin ("source" when run from an uninstalled tree)."""
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return "source"
    try:
        return version("plant-twin")
    except PackageNotFoundError:
        return "source"


def __getattr__(name: str) -> Any:
    if name == "Twin":
        from twin.twin import Twin

        return Twin
    raise AttributeError(f"module 'twin' has no attribute '{name}'")
