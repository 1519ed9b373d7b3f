"""Diffused aeration: diffuser grids (oxygen transfer from airflow) and blowers (power from airflow
and pressure).

Oxygen transfer (ASCE/EWRI 2-06, *Measurement of Oxygen Transfer in Clean Water*; Metcalf &
Eddy, *Wastewater Engineering*, 5th ed., 2014, section 5-11):

    SOTR [kg O2/d] = SOTE * Q_air,std [Nm3/d] * rho_air,std [kg/m3] * 0.2315 [kg O2/kg air]
    KLa_20,clean [1/d] = SOTR / (V * C*_s,20)          (C*_s,20 = 9.09 g/m3, 1 atm)
    KLa_field = alpha * F * theta^(T - 20) * KLa_20,clean   (theta = 1.024)

SOTE of fine-pore grids falls with the airflow per diffuser and rises with submergence; we use
SOTE = sote_per_m * depth * (q / q_ref)^(-flux_exponent), a power law through a manufacturer's
reference point (the form of Metcalf & Eddy Fig. 5-47 curves). alpha (process water / clean
water) and the fouling factor F (1 = new) multiply the transfer.

Blower power: adiabatic (isentropic) compression of air as an ideal gas (Metcalf & Eddy eq.
5-56 in SI form):

    P = m_dot cp T1 [(p2 / p1)^((k - 1)/k) - 1] / eta,   cp = k R / ((k - 1) M)

with p2 = p1 + rho_w g h_submergence + dp_diffuser + dp_header(Q). Turndown limits bound
each blower's flow; duty blowers share the flow equally.

Air distribution (when the plant has an air header): centrifugal blowers at a common speed
feed a header; each zone draws through an equal-percentage control valve (ISA-75.01 inherent
characteristic, Q = Cv R^(theta - 1) sqrt(dp)) against its diffusers' back pressure. The
blower pressure rise follows a quadratic curve through its design point, scaled by the
affinity laws (rise ~ speed^2 at similar flow / speed). The valves act as ideal flow
controllers (their flow loops settle in seconds): each zone gets the airflow its DO loop asks
for while the valve can pass it, the valve's full-open flow otherwise. The header pressure is
the root of "blower flow = sum of zone flows" (monotone: bisection). Air across a valve is
treated as incompressible (a few kPa against ~150 kPa absolute: under 3 % density change).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

R_GAS = 8.314462618  # J/(mol K)
M_AIR = 0.028965  # kg/mol
K_AIR = 1.4
CP_AIR = K_AIR * R_GAS / ((K_AIR - 1) * M_AIR)  # J/(kg K), about 1005
RHO_AIR_STD = 101325.0 * M_AIR / (R_GAS * 293.15)  # kg/m3 at 20 degC, 1 atm (about 1.204)
O2_MASS_FRACTION = 0.2315
CS20_G_M3 = 9.09  # oxygen saturation in clean water at 20 degC, 1 atm
THETA_KLA = 1.024
G = 9.80665
RHO_WATER = 998.0


@dataclass(frozen=True)
class DiffuserGrid:
    volume_m3: float  # aerated zone volume
    depth_m: float  # diffuser submergence
    n_diffusers: int
    sote_per_m: float = 0.06  # standard transfer efficiency per metre of submergence at q_ref
    q_ref_nm3_h: float = 2.0  # airflow per diffuser of the reference point
    flux_exponent: float = 0.15
    alpha: float = 1.0
    headloss_pa: float = 4000.0  # diffuser membrane pressure loss

    def sote(self, airflow_nm3_d: float) -> float:
        if airflow_nm3_d <= 0:
            return 0.0
        q = airflow_nm3_d / 24.0 / self.n_diffusers
        return min(0.95, self.sote_per_m * self.depth_m * (q / self.q_ref_nm3_h) ** (-self.flux_exponent))

    def kla_per_d(self, airflow_nm3_d: float, fouling: float = 1.0, temp_c: float = 20.0) -> float:
        """Field KLa of the zone for an airflow (Nm3/d at 20 degC, 1 atm)."""
        sotr_kg_d = self.sote(airflow_nm3_d) * airflow_nm3_d * RHO_AIR_STD * O2_MASS_FRACTION
        kla20 = sotr_kg_d * 1000.0 / (self.volume_m3 * CS20_G_M3)
        return self.alpha * fouling * THETA_KLA ** (temp_c - 20.0) * kla20

    def airflow_for_kla(self, kla_per_d: float, fouling: float = 1.0, temp_c: float = 20.0) -> float:
        """Inverse of :meth:`kla_per_d`. Where SOTE follows its power law, KLa = A Q^(1 - b), so
        Q = (KLa / A)^(1 / (1 - b)); the (rare) capped-SOTE range is linear in Q."""
        if kla_per_d <= 0:
            return 0.0
        b = self.flux_exponent
        scale = self.alpha * fouling * THETA_KLA ** (temp_c - 20.0) * RHO_AIR_STD * O2_MASS_FRACTION * 1000.0 \
            / (self.volume_m3 * CS20_G_M3)
        coeff = self.sote_per_m * self.depth_m * (24.0 * self.n_diffusers * self.q_ref_nm3_h) ** b
        q = (kla_per_d / (scale * coeff)) ** (1.0 / (1.0 - b))
        if self.sote(q) >= 0.95:  # capped efficiency: KLa = scale * 0.95 * Q
            q = kla_per_d / (scale * 0.95)
        return q

    def back_pressure_pa(self) -> float:
        return RHO_WATER * G * self.depth_m + self.headloss_pa


@dataclass(frozen=True)
class Blower:
    """One blower: rated isentropic efficiency at its design flow, falling off-design, and a
    turndown range [min, max] of airflow (Nm3/d)."""

    design_flow_nm3_d: float
    efficiency_design: float = 0.75
    min_flow_nm3_d: float = 0.0
    max_flow_nm3_d: float = math.inf
    motor_efficiency: float = 0.95

    def efficiency(self, flow_nm3_d: float) -> float:
        """Parabolic fall-off of the isentropic efficiency away from the design flow."""
        x = flow_nm3_d / self.design_flow_nm3_d
        return max(0.2, self.efficiency_design * (1.0 - 0.3 * ((x - 1.0) * (x - 1.0))))


def compression_power_w(flow_nm3_d: float, p1_pa: float, p2_pa: float, t1_k: float, efficiency: float) -> float:
    """Shaft power to compress ``flow_nm3_d`` of air (20 degC, 1 atm reference) from p1 to p2."""
    m_dot = flow_nm3_d / 86400.0 * RHO_AIR_STD
    return m_dot * CP_AIR * t1_k * ((p2_pa / p1_pa) ** ((K_AIR - 1) / K_AIR) - 1.0) / efficiency


@dataclass(frozen=True)
class BlowerStation:
    blower: Blower
    n_installed: int
    header_loss_pa_at_design: float = 2000.0  # pipe and valve losses at the station's design flow

    def power_w(self, total_flow_nm3_d: float, back_pressure_pa: float, p_atm_pa: float = 101325.0,
                t_inlet_c: float = 20.0, n_available: int | None = None) -> tuple[float, int, float]:
        """(electrical W, blowers running, discharge pressure Pa) for a total airflow.

        The fewest blowers that keep each within its maximum run, sharing equally; a flow below
        one blower's minimum is delivered at the minimum (the excess is blown off).
        """
        if total_flow_nm3_d <= 0:
            return 0.0, 0, p_atm_pa + back_pressure_pa
        b = self.blower
        n = max(1, math.ceil(total_flow_nm3_d / b.max_flow_nm3_d)) if math.isfinite(b.max_flow_nm3_d) else 1
        n = min(n, self.n_installed if n_available is None else max(n_available, 1))
        each = max(total_flow_nm3_d / n, b.min_flow_nm3_d)
        design_total = b.design_flow_nm3_d * self.n_installed
        header = self.header_loss_pa_at_design * (total_flow_nm3_d / design_total) ** 2
        p2 = p_atm_pa + back_pressure_pa + header
        shaft = compression_power_w(each, p_atm_pa, p2, t_inlet_c + 273.15, b.efficiency(each))
        return n * shaft / b.motor_efficiency, n, p2


@dataclass(frozen=True)
class ControlValve:
    """Equal-percentage butterfly/globe valve on a zone's air drop leg. ``cv`` is the flow
    (Nm3/d) per sqrt(Pa) of pressure drop when fully open; ``rangeability`` R."""

    cv: float
    rangeability: float = 50.0

    @classmethod
    def sized(cls, design_flow_nm3_d: float, design_dp_pa: float, design_opening: float = 0.7,
              rangeability: float = 50.0) -> ControlValve:
        """The valve that passes the design flow at the design opening and pressure drop (the
        usual sizing rule: about 70 % open at design flow, room to open further)."""
        return cls(design_flow_nm3_d / (rangeability ** (design_opening - 1.0) * math.sqrt(design_dp_pa)),
                   rangeability)

    def flow(self, opening: float, dp_pa: float) -> float:
        return self.cv * self.rangeability ** (opening - 1.0) * math.sqrt(max(dp_pa, 0.0))

    def max_flow(self, dp_pa: float) -> float:
        return self.cv * math.sqrt(max(dp_pa, 0.0))

    def opening_for(self, flow_nm3_d: float, dp_pa: float) -> float:
        """Opening (0-1) that passes ``flow_nm3_d`` at ``dp_pa``; 1 when it cannot."""
        full = self.max_flow(dp_pa)
        if flow_nm3_d <= 0:
            return 0.0
        if full <= flow_nm3_d:
            return 1.0
        return max(0.0, 1.0 + math.log(flow_nm3_d / full) / math.log(self.rangeability))


@dataclass(frozen=True)
class BlowerCurve:
    """Pressure rise of one centrifugal blower: rise(Q, r) = r^2 rise0 - k Q^2 (Q per blower,
    Nm3/d; r speed / rated speed), through the design point (``design_flow``, ``design_rise``)
    at rated speed, with the shut-off rise ``shutoff_ratio`` x the design rise."""

    design_flow_nm3_d: float
    design_rise_pa: float
    shutoff_ratio: float = 1.2

    @property
    def rise0_pa(self) -> float:
        return self.shutoff_ratio * self.design_rise_pa

    @property
    def k(self) -> float:
        return (self.rise0_pa - self.design_rise_pa) / self.design_flow_nm3_d**2

    def rise_pa(self, flow_nm3_d: float, speed_ratio: float) -> float:
        return speed_ratio * speed_ratio * self.rise0_pa - self.k * (flow_nm3_d * flow_nm3_d)


@dataclass
class AirOperatingPoint:
    header_pa: float  # gauge pressure in the header
    rise_pa: float  # blower pressure rise (discharge - inlet)
    flows_nm3_d: list[float]  # delivered to each zone
    openings: list[float]  # valve openings 0-1
    total_nm3_d: float


def solve_air_system(curve: BlowerCurve, n_running: int, header_k: float, valves: list[ControlValve],
                     back_pa: list[float], demands_nm3_d: list[float], speed_ratio: float) -> AirOperatingPoint:
    """Operating point of ``n_running`` blowers at ``speed_ratio`` feeding the zones' valves.

    Header pressure p (gauge): blowers deliver Q(p) = sqrt((r^2 rise0 - p) / (k / n^2 + header_k))
    (header_k: station pipework loss Pa per (Nm3/d)^2); zone i takes min(demand_i,
    full-open flow at p - back_i). The root of sum(zone flows) - Q(p), increasing in p, lies
    between the lowest back pressure and the shut-off rise."""
    nz = len(valves)
    top = speed_ratio * speed_ratio * curve.rise0_pa
    if n_running <= 0 or top <= min(back_pa) or sum(demands_nm3_d) <= 0:
        return AirOperatingPoint(max(top, 0.0) if n_running > 0 else 0.0, max(top, 0.0) if n_running > 0 else 0.0,
                                 [0.0] * nz, [0.0] * nz, 0.0)
    c = curve.k / (n_running * n_running) + header_k

    def zone_flows(p: float) -> list[float]:
        return [min(d, v.max_flow(p - b)) for v, b, d in zip(valves, back_pa, demands_nm3_d)]

    # the usual case: every valve can pass its demand, so the blowers deliver the total demand
    # and the header pressure follows from their curve directly
    q = sum(demands_nm3_d)
    p = top - c * q * q
    if not all(d <= 0 or (p > b and v.max_flow(p - b) >= d) for v, b, d in zip(valves, back_pa, demands_nm3_d)):
        lo, hi = min(back_pa), top  # some valve is fully open: bisection
        for _ in range(100):
            if hi - lo <= 1e-12 * top:
                break
            mid = 0.5 * (lo + hi)
            if sum(zone_flows(mid)) - math.sqrt((top - mid) / c) > 0:
                hi = mid
            else:
                lo = mid
        p = 0.5 * (lo + hi)
    flows = zone_flows(p)
    total = sum(flows)
    openings = [v.opening_for(f, p - b) for v, b, f in zip(valves, back_pa, flows)]
    return AirOperatingPoint(p, p + header_k * (total * total), flows, openings, total)


def speed_for_header_pressure(curve: BlowerCurve, n_running: int, header_k: float, valves: list[ControlValve],
                              back_pa: list[float], demands_nm3_d: list[float], target_pa: float,
                              r_min: float = 0.3, r_max: float = 1.2) -> float:
    """Blower speed ratio at which the header pressure equals ``target_pa`` (bisection: the
    pressure rises with the speed)."""
    lo, hi = r_min, r_max
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if solve_air_system(curve, n_running, header_k, valves, back_pa, demands_nm3_d, mid).header_pa < target_pa:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
