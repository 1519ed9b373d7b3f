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


@st.composite
def lti_plants(draw):
    """FOPDT or SOPDT plants: gain 0.1-100 of either sign, time constants over three decades,
    delay / time constant 0.01-2; with a sample time of 1/25 of the plant's time scale."""
    from controllers.models import FOPDT, SOPDT

    k = draw(st.floats(0.1, 100.0)) * draw(st.sampled_from([-1.0, 1.0]))
    tau = 10 ** draw(st.floats(-1.0, 2.0))
    ratio = 10 ** draw(st.floats(-2.0, np.log10(2.0)))
    theta = ratio * tau
    if draw(st.booleans()):
        model = FOPDT(k, tau, theta)
        Ts = (theta + tau) / 25
    else:
        tau2 = tau * 10 ** draw(st.floats(-2.0, 0.0))
        model = SOPDT(k, tau, tau2, theta)
        Ts = (theta + tau + tau2) / 25
    return model, Ts
