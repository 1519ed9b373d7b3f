"""Hypothesis strategies shared by the property tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from twin.units.asm1 import NAMES

_MAX = {"SI": 100, "SS": 300, "XI": 3000, "XS": 500, "XBH": 5000, "XBA": 500, "XP": 1500, "SO": 9,
        "SNO": 30, "SNH": 60, "SND": 15, "XND": 20, "SALK": 10}


@st.composite
def asm1_concentrations(draw, positive: bool = True) -> np.ndarray:
    """A plausible activated-sludge concentration vector (g/m3; SALK mol/m3)."""
    lo = 1e-3 if positive else 0.0
    return np.array([draw(st.floats(lo, _MAX[n], allow_nan=False)) for n in NAMES])


flows_m3_d = st.floats(10.0, 2e5, allow_nan=False)
durations = st.tuples(st.integers(1, 10_000), st.sampled_from(["s", "min", "h", "d", "y"]))
