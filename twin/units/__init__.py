"""Process units and their registry.

Unit types are found through the Python entry-point group ``twin.units`` (this project's
own units are registered there too, in ``pyproject.toml``), loaded lazily on first use.
A type whose entry point fails to load is an error, never replaced by a stand-in.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points

from twin.errors import ConfigError
from twin.units.base import UnitModel, did_you_mean

ENTRY_POINT_GROUP = "twin.units"


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, object]:
    found: dict[str, object] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep
    return found


def registered_types() -> list[str]:
    """Names of all registered unit types, sorted."""
    return sorted(_entry_points())


def unit_type(name: str) -> type[UnitModel]:
    """Load the unit class registered under ``name``; ConfigError if unknown or broken."""
    eps = _entry_points()
    if name not in eps:
        if not eps:
            raise ConfigError(
                f"unknown unit type '{name}': no unit types are registered under the entry-point "
                f"group '{ENTRY_POINT_GROUP}' (is plant-twin installed, e.g. 'pip install -e .'?)"
            )
        raise ConfigError(f"unknown unit type '{name}'{did_you_mean(name, eps)}; "
                          f"registered: {', '.join(sorted(eps))}")
    ep = eps[name]
    try:
        cls = ep.load()
    except Exception as exc:  # a broken plug-in is the plug-in author's error; name it
        raise ConfigError(f"unit type '{name}' ({ep.value}) failed to load: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, UnitModel)):
        raise ConfigError(f"unit type '{name}' ({ep.value}) is not a twin.units.base.UnitModel subclass")
    return cls
