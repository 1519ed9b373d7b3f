"""Shared fixtures: the BSM1 reference values and influent files, the compiled BSM1 plant."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SCENARIOS = ROOT / "scenarios"


def shared_file(*parts: str) -> Path | None:
    p = SHARED.joinpath(*parts)
    return p if p.exists() else None


PUBLISHED = ROOT / "analysis" / "bsm1_published.yaml"  # shipped with the package (twin verify)


@pytest.fixture(scope="session")
def bsm1_reference() -> dict:
    """Published BSM1 results (Jeppsson 2009 Matlab/Simulink implementation, with Alex et al. 2008);
    the source is cited in the file."""
    return yaml.safe_load(PUBLISHED.read_text())


def dry_weather_file() -> str | None:
    """The BSM1 dry-weather influent file: the shared copy, else the one inside bsm2-python."""
    from twin.verify import dry_weather_file as packaged

    p = shared_file("data", "bsm1", "dryinfluent.ascii")
    return str(p) if p is not None else packaged()


@pytest.fixture(scope="session")
def dry_file() -> str:
    f = dry_weather_file()
    if f is None:
        pytest.skip("the BSM1 dry-weather influent file is not available")
    return f


@pytest.fixture(scope="session")
def bsm1_plant():
    from twin.run import compile_flowsheet, load_flowsheet

    return compile_flowsheet(load_flowsheet("bsm1", None))
