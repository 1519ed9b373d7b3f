"""The air header of a diffused-aeration system, as a place in the flowsheet for its actuator.

Air in a header and its drop legs settles within seconds, three orders of magnitude faster
than dissolved oxygen, so the air system is algebraic: the equipment layer
(:mod:`twin.equipment.layer`) solves the blowers' operating point against the zones' control
valves at every sample (header pressure, airflow per zone, valve openings). This unit carries
no states and no streams; it declares the blower-speed input that a header-pressure loop
drives, so that the loop, the recorder and scenario events treat it like any other actuator.
The header pressure itself is a measurable signal of the plant (``air_header.pressure_kPa``)
provided by the equipment layer.
"""

from __future__ import annotations

from twin.units.base import InputVar, UnitModel
from twin.units.junctions import no_derivatives, no_outlets


class AirHeader(UnitModel):
    """Air header fed by the blower station: input ``blower_speed_ratio`` (speed / rated speed)."""

    type_name = "air_header"
    description = "air header of the blower station: blower speed input (air system solved by the equipment layer)"
    feedthrough = False
    outlets_kernel = no_outlets
    derivatives_kernel = no_derivatives

    def inputs(self):
        return (InputVar("blower_speed_ratio", "-", 0.9),)

    def external_signals(self):
        return (("pressure_kPa", "kPa"),)
