"""The equipment around the process model: it turns actuator demands into machine operating
points and electrical power, as a SimPy process sampled with the controllers.

* Aeration: each aerated zone's KLa demand (what the DO loop or the scenario asks for, on the
  design basis of clean diffusers) becomes the airflow its diffuser grid needs; the zone's
  ``oxygen_transfer_factor`` input is the diffusers' condition (1 = new, lower when fouled):
  the process sees KLa demand x condition, so a fouled grid makes the DO loop ask for more
  air. The blower station delivers the total airflow against the deepest zone's back pressure;
  its power is the aeration energy.
* Air distribution (with an ``air_header`` section): the blowers run at the speed of the plant
  input ``air_header.blower_speed_ratio`` (a header-pressure loop drives it) and each zone's
  valve passes the airflow its KLa demand needs while the header pressure allows it, less
  when it does not (:func:`twin.equipment.aeration.solve_air_system`). The zone's
  ``oxygen_transfer_factor`` is then diffuser condition x delivered / demanded transfer; the
  header pressure is the signal ``air_header.pressure_kPa``; the blower power is computed at
  the pressure rise the blowers actually make, so a header held higher than the deepest zone
  needs costs energy in the valves.
* Pumps: each pumped flow input (internal recycle, return and waste sludge) is delivered by a
  pump on its system curve at the speed the flow needs (affinity laws); a flow beyond the
  pump's maximum speed is limited to what it can deliver. The impeller condition lowers the
  head curve and the efficiency.
* Mixers: anoxic zones (KLa demand below 20 1/d) are mixed at a power per volume.
* Heating: the heat delivered to heated tanks, drawn at the heater's efficiency (an electric
  boiler by default; a heat pump has an efficiency above 1).

Power is held between samples and integrated exactly into an energy meter per area; the
recorder reads the average power of each recording interval, so the integral of the recorded
power equals the metered energy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twin.equipment.aeration import (
    RHO_WATER,
    Blower,
    BlowerCurve,
    BlowerStation,
    ControlValve,
    DiffuserGrid,
    compression_power_w,
    solve_air_system,
    speed_for_header_pressure,
)
from twin.equipment.pumps import PumpCurve, SystemCurve, operating_point, power, speed_for_flow

AREAS = ("aeration", "pumping", "mixing", "heating")
MIXING_KLA_THRESHOLD_PER_D = 20.0  # BSM1: a tank with KLa below 20 1/d is mixed, not aerated


@dataclass
class EnergyMeter:
    t_last: int
    power_kw: dict[str, float] = field(default_factory=lambda: {a: 0.0 for a in AREAS})
    energy_kwh: dict[str, float] = field(default_factory=lambda: {a: 0.0 for a in AREAS})

    def advance(self, now: int) -> None:
        dt_h = (now - self.t_last) / 3600.0
        for a in AREAS:
            self.energy_kwh[a] += self.power_kw[a] * dt_h
        self.t_last = now


class Equipment:
    def __init__(self, env, plant, spec):
        self.env = env
        self.plant = plant
        self.spec = spec
        cp = plant.cp
        self.meter = EnergyMeter(env.now)
        self.zones = []
        for name, z in spec.zones.items():
            grid = DiffuserGrid(cp.units[name].volume_m3(), z.depth_m, z.n_diffusers, z.sote_per_m, z.q_ref_nm3_h,
                                z.flux_exponent, z.alpha, z.headloss_pa)
            self.zones.append((name, grid, cp.input_index[f"{name}.kla_per_d"]))
        b = spec.blowers
        self.station = BlowerStation(Blower(b.design_flow_nm3_d, b.efficiency_design, b.min_flow_nm3_d,
                                            b.max_flow_nm3_d, b.motor_efficiency), b.n_installed, b.header_loss_pa)
        self.pumps = []
        for name, p in spec.pumps.items():
            bep = p.bep_flow_m3_d / 86400.0
            curve = PumpCurve(p.shutoff_head_m, bep, p.bep_head_m, p.bep_efficiency, motor_efficiency=p.motor_efficiency,
                              drive_efficiency=p.drive_efficiency)
            # the system curve passes through the station's design point: all pumps at their BEP
            q_design = bep * p.n_parallel
            k = (p.bep_head_m - p.static_head_m) / q_design**2 if p.bep_head_m > p.static_head_m else 0.0
            self.pumps.append((name, curve, SystemCurve(p.static_head_m, k), p, cp.input_index[p.input]))
        self.heated = [(n, cp.input_index[f"{n}.heat_W"], cp.state_index[f"{n}.T_C"]) for n in spec.heating.tanks]
        self.mixed = [(n, u.volume_m3(), cp.input_index[f"{n}.kla_per_d"]) for n, u in cp.units.items()
                      if u.type_name == "asm1_reactor"]
        self.state = {"airflow_nm3_d": 0.0, "blowers_running": 0.0, "discharge_pressure_pa": 0.0}
        self.pump_state = {name: {"speed_ratio": 0.0, "flow_m3_d": 0.0, "running": 0} for name, *_ in self.pumps}
        #: pumps of a station that are failed or under maintenance (set by the fleet, later)
        self.pumps_out_of_service: dict[str, int] = {}
        #: condition of the machines (set by the fleet): impeller condition per pump station
        #: (1 new), blowers' efficiency factor and how many are out of service, the share of
        #: each zone's air-valve capacity in service
        self.pump_condition = {name: p.condition for name, *_, p, _ in self.pumps}
        self.blower_condition = 1.0
        self.exchanger_condition = 1.0  # UA factor of the heat exchangers (fouling)
        self.mixers_out_of_service: dict[str, int] = {}
        #: the mixers' speed per zone (the scenario's, until changed: ``equipment.mixers.ZONE.speed_rpm``)
        self.mixer_speed_rpm = {zone: m.speed_rpm for zone, m in spec.mixers.items()}
        self.blowers_out_of_service = 0
        self.valve_capacity = {name: 1.0 for name in spec.zones}
        self._rec_t = env.now
        self._rec_e = dict(self.meter.energy_kwh)
        #: air at the blower inlets (the scenario's environment updates it; no humidity: dry air)
        self.ambient = {"air_temperature_c": spec.air_temperature_c, "relative_humidity": None,
                        "pressure_pa": spec.ambient_pressure_pa}
        self.air = None
        #: diffuser condition per zone (1 = new), applied with the air supply (set by the fleet)
        self.zone_fouling = {name: 1.0 for name, *_ in self.zones}
        if spec.air_header is not None:
            self.air = _AirSystem(spec, cp, self.zones)
            self.state["header_pressure_kpa"] = 0.0
        #: inputs the machines hold away from what their loop asked for: input -> reason
        self.clamped: dict[str, str] = {}
        #: what the event log last said about each machine decision (see ``_log_decisions``)
        self._decided: dict[str, Any] = {}

    # -- one sample -----------------------------------------------------------------------
    def update(self) -> None:
        plant = self.plant
        self.clamped = {}
        plant.sync()
        self.meter.advance(self.env.now)
        s = self.spec
        u = plant.u
        if self.air is not None:
            p_w = self._air_update()
        else:
            airflow = 0.0
            back = 0.0
            for _, grid, i_kla in self.zones:
                airflow += grid.airflow_for_kla(u[i_kla], 1.0, s.water_temperature_c)
                back = max(back, grid.back_pressure_pa())
            amb = self.ambient
            p_w, n_on, p2 = self.station.power_w(airflow, back, amb["pressure_pa"], amb["air_temperature_c"],
                                                 self.station.n_installed - self.blowers_out_of_service)
            p_w *= self._moisture() / self.blower_condition
            self.state.update(airflow_nm3_d=airflow, blowers_running=float(n_on), discharge_pressure_pa=p2)
        pump_w = 0.0
        for name, curve, system, p, i_q in self.pumps:
            q = max(u[i_q], 0.0) / 86400.0
            if q <= 0:
                self.pump_state[name] = {"speed_ratio": 0.0, "flow_m3_d": 0.0, "running": 0}
                continue
            n_avail = max(0, p.n_parallel - self.pumps_out_of_service.get(name, 0))
            w = self.pump_condition[name]
            n, r = self._staging(curve, system, p, q, n_avail, w)
            if n == 0:
                plant.set_input(i_q, 0.0)
                q, w, r = 0.0, 0.0, 0.0
                self.clamped[p.input] = "no pump in service"
            elif r > p.max_speed_ratio or r < p.min_speed_ratio:
                self.clamped[p.input] = (f"{n} pump(s) at their maximum speed" if r > p.max_speed_ratio
                                         else f"{n} pump(s) at their minimum speed")
                r = min(max(r, p.min_speed_ratio), p.max_speed_ratio)
                op = operating_point(curve, system, r, n, w)
                plant.set_input(i_q, op.flow_m3_s * 86400.0)
                q, w = op.flow_m3_s, op.electrical_w
            else:
                _, _, _, w1 = power(curve, q / n, system.head_m(q), r, w)
                w = n * w1
            pump_w += w
            self.pump_state[name] = {"speed_ratio": r, "flow_m3_d": q * 86400.0, "running": n}
        mix_w = sum(self._mixing_w(n, v) for n, v, i in self.mixed if u[i] < MIXING_KLA_THRESHOLD_PER_D)
        ex = s.heating.exchanger
        heat = 0.0
        for tank, i, i_t in self.heated:
            q = max(u[i], 0.0)
            if ex is not None:  # the exchanger limits what the tank can receive
                cap = max(ex.ua_w_k * self.exchanger_condition * (ex.hot_water_temperature_c - plant.x[i_t]), 0.0)
                if q > cap:
                    plant.set_input(i, cap)
                    q = cap
                    self.clamped[f"{tank}.heat_W"] = "heat exchanger at its capacity"
            heat += q
        heat_w = heat / s.heating.efficiency
        self.meter.power_kw.update(aeration=p_w / 1000.0, pumping=pump_w / 1000.0, mixing=mix_w / 1000.0,
                                   heating=heat_w / 1000.0)

    def _mixing_w(self, zone: str, volume_m3: float) -> float:
        """Electrical power of a zone's mixers (power-number law) or, without a mixers entry,
        the power per volume of the scenario."""
        m = self.spec.mixers.get(zone)
        if m is None:
            return self.spec.mixing_w_per_m3 * volume_m3
        n_rps = self.mixer_speed_rpm[zone] / 60.0
        running = max(m.count - self.mixers_out_of_service.get(zone, 0), 0)
        return running * m.power_number * RHO_WATER * n_rps**3 * m.impeller_diameter_m**5 / m.motor_efficiency

    def _moisture(self) -> float:
        amb = self.ambient
        if amb["relative_humidity"] is None:
            return 1.0
        from twin.environment import moist_air_power_factor

        return moist_air_power_factor(amb["air_temperature_c"], amb["relative_humidity"], amb["pressure_pa"])

    def zone_airflow_demands(self) -> list[float]:
        """Airflow (Nm3/d) each aerated zone's KLa demand needs with clean diffusers."""
        t = self.spec.water_temperature_c
        return [grid.airflow_for_kla(self.plant.u[i_kla], 1.0, t) for _, grid, i_kla in self.zones]

    def _valves(self) -> list[ControlValve]:
        """The zones' valves, their capacity reduced by drop legs out of service."""
        return [ControlValve(v.cv * self.valve_capacity[name], v.rangeability)
                for (name, *_), v in zip(self.zones, self.air.valves)]

    def _blowers_for(self, total_nm3_d: float) -> int:
        """Blowers to run for an airflow: one more when the running ones would exceed their
        maximum, one fewer only when the others could carry the flow with the staging dead
        band to spare (no start/stop chatter around a threshold)."""
        b = self.station.blower
        if total_nm3_d <= 0:
            return 0
        n_min = math.ceil(total_nm3_d / b.max_flow_nm3_d) if math.isfinite(b.max_flow_nm3_d) else 1
        n = int(self.state["blowers_running"]) or n_min
        if n_min > n:
            n = n_min
        elif n > 1 and total_nm3_d < (n - 1) * b.max_flow_nm3_d * (1.0 - self.spec.air_header.staging_deadband):
            n -= 1
        return min(max(n, 1), max(self.station.n_installed - self.blowers_out_of_service, 0))

    def _air_update(self) -> float:
        """Air distribution at the blowers' speed; returns the blowers' electrical power (W)."""
        a, s, plant = self.air, self.spec, self.plant
        demands = self.zone_airflow_demands()
        n = self._blowers_for(sum(demands))
        op = solve_air_system(a.curve, n, a.header_k, self._valves(), a.back, demands, float(plant.u[a.i_speed]))
        for (name, grid, _), i_otf, q, d in zip(self.zones, a.i_otf, op.flows_nm3_d, demands):
            t = s.water_temperature_c
            ratio = grid.kla_per_d(q, 1.0, t) / grid.kla_per_d(d, 1.0, t) if d > 0 else 1.0
            f = self.zone_fouling[name] * ratio
            if plant.u[i_otf] != f:
                plant.set_input(i_otf, f)
        b = self.station.blower
        p_w = 0.0
        p1 = self.ambient["pressure_pa"]
        if n > 0 and op.total_nm3_d > 0:
            each = max(op.total_nm3_d / n, b.min_flow_nm3_d)
            p_w = n * compression_power_w(each, p1, p1 + op.rise_pa, self.ambient["air_temperature_c"] + 273.15,
                                          b.efficiency(each)) / b.motor_efficiency * self._moisture() \
                / self.blower_condition
        plant.aux[a.signal] = op.header_pa / 1000.0
        self.state.update(airflow_nm3_d=op.total_nm3_d, blowers_running=float(n),
                          discharge_pressure_pa=p1 + op.rise_pa, header_pressure_kpa=op.header_pa / 1000.0)
        for (name, *_), q, th in zip(self.zones, op.flows_nm3_d, op.openings):
            self.state[f"{name}.airflow_nm3_d"] = q
            self.state[f"{name}.valve_opening"] = th
        return p_w

    def initialise_air(self, target_kpa: float | None) -> None:
        """Set the blower speed that holds ``target_kpa`` in the header for the present demands
        (a bumpless start for the header-pressure loop), then compute the air system."""
        a = self.air
        if target_kpa is not None:
            demands = self.zone_airflow_demands()
            n = self._blowers_for(sum(demands))
            self.plant.u[a.i_speed] = speed_for_header_pressure(a.curve, n, a.header_k, self._valves(), a.back, demands,
                                                                target_kpa * 1000.0)
        self.update()

    @staticmethod
    def _staging(curve, system, p, q: float, n_avail: int, w: float) -> tuple[int, float]:
        """Pumps to run and their speed ratio for flow ``q`` (m3/s): without staging all
        available pumps share the flow; with staging, the fewest that stay within the maximum
        speed (duty/standby), all of them when even that is not enough."""
        if n_avail <= 0:
            return 0, 0.0
        if not p.staging:
            return n_avail, speed_for_flow(curve, system, q, n_avail, w)
        for n in range(1, n_avail + 1):
            r = speed_for_flow(curve, system, q, n, w)
            if r <= p.max_speed_ratio:
                return n, r
        return n_avail, speed_for_flow(curve, system, q, n_avail, w)

    def process(self, wake_at: int | None = None):
        period = self.spec.sample_time
        if wake_at is not None:
            yield self.env.timeout(wake_at - self.env.now)
        while True:
            self.update()
            self._log_decisions()
            yield self.env.timeout(period)

    def _log_decisions(self) -> None:
        """Write the machines' decisions to the event log once per change, with their reason:
        blowers started or stopped, a zone's air valve reaching or leaving fully open, pumps
        staged in or out, a loop's output held by the machines. The first sample only notes
        the state the run starts in."""
        now: dict[str, Any] = {"blowers": int(self.state["blowers_running"])}
        if self.air is not None:
            for name, *_ in self.zones:
                now[f"valve.{name}"] = self.state.get(f"{name}.valve_opening", 0.0) >= 1.0 - 1e-6
        for name, *_ in self.pumps:
            now[f"pumps.{name}"] = int(self.pump_state[name]["running"])
        for name in set(self.clamped) | {k[6:] for k, v in self._decided.items() if k.startswith("clamp.") and v}:
            now[f"clamp.{name}"] = self.clamped.get(name)
        first, before = not self._decided, self._decided
        self._decided = {**before, **now}
        if first:
            return
        log = self.env.log
        for key, value in now.items():
            old = before.get(key, None if key.startswith("clamp.") else value)
            if value == old:
                continue
            kind, _, name = key.partition(".")
            if kind == "blowers":
                demand = sum(self.zone_airflow_demands()) if self.zones else self.state["airflow_nm3_d"]
                why = ("the running blowers could not deliver the air demand" if value > old
                       else "the other blowers carry the air demand")
                log("equipment", "blowers", f"blower {'started' if value > old else 'stopped'}: {old} -> {value} "
                    f"running for {demand:,.0f} Nm3/d ({why})",
                    running=value, previous=old, airflow_nm3_d=float(demand))
            elif kind == "valve":
                log("equipment", f"aeration.{name}",
                    "air valve fully open: the zone gets less air than its DO loop asks for" if value
                    else "air valve back in its control range", fully_open=bool(value),
                    header_pressure_kpa=float(self.state.get("header_pressure_kpa", 0.0)))
            elif kind == "pumps":
                q = self.pump_state[name]["flow_m3_d"]
                why = "the running pumps could not deliver it" if value > old else "fewer pumps deliver it"
                log("equipment", f"pump.{name}", f"pump {'started' if value > old else 'stopped'}: {old} -> {value} "
                    f"running for {q:,.0f} m3/d ({why})",
                    running=value, previous=old, flow_m3_d=float(q))
            elif value is not None:
                log("equipment", name, f"output held by the equipment: {value}", clamped=True, reason=value)
            else:
                log("equipment", name, "output no longer held by the equipment", clamped=False)

    # -- checkpoints ------------------------------------------------------------------------
    _SAVED = ("meter", "state", "pump_state", "pumps_out_of_service", "_rec_t", "_rec_e", "zone_fouling", "ambient",
              "pump_condition", "blower_condition", "blowers_out_of_service", "valve_capacity", "exchanger_condition",
              "mixers_out_of_service", "mixer_speed_rpm", "_decided")

    def checkpoint_state(self) -> dict:
        return {k: getattr(self, k) for k in self._SAVED}

    def restore_state(self, state: dict) -> None:
        for k, v in state.items():
            getattr(self, k).update(v) if isinstance(v, dict) else setattr(self, k, v)

    # -- recording -------------------------------------------------------------------------
    def columns(self) -> list[str]:
        cols = [f"power.{a}_kW" for a in AREAS]
        cols += ["aeration.airflow_Nm3_d", "aeration.blowers_running", "aeration.discharge_pressure_Pa"]
        if self.air is not None:
            cols.append("aeration.header_pressure_kPa")
            for name, *_ in self.zones:
                cols += [f"aeration.{name}.airflow_Nm3_d", f"aeration.{name}.valve_opening"]
        for name, *_ in self.pumps:
            cols += [f"pump.{name}.speed_ratio", f"pump.{name}.flow_m3_d", f"pump.{name}.running"]
        cols += [f"mixing.{n}.power_W_m3" for n, *_ in self._mixer_zones()]
        return cols

    def _mixer_zones(self) -> list[tuple[str, float, int]]:
        """(zone, volume m3, KLa slot) of the zones with a ``mixers`` entry."""
        return [z for z in self.mixed if z[0] in self.spec.mixers]

    def probe(self) -> np.ndarray:
        """Average power of each area since the last record, then the machines' state."""
        now = self.env.now
        self.meter.advance(now)
        dt_h = (now - self._rec_t) / 3600.0
        if dt_h > 0:
            avg = [(self.meter.energy_kwh[a] - self._rec_e[a]) / dt_h for a in AREAS]
        else:
            avg = [self.meter.power_kw[a] for a in AREAS]
        self._rec_t = now
        self._rec_e = dict(self.meter.energy_kwh)
        row = avg + [self.state["airflow_nm3_d"], self.state["blowers_running"], self.state["discharge_pressure_pa"]]
        if self.air is not None:
            row.append(self.state["header_pressure_kpa"])
            for name, *_ in self.zones:
                row += [self.state.get(f"{name}.airflow_nm3_d", 0.0), self.state.get(f"{name}.valve_opening", 0.0)]
        for name, *_ in self.pumps:
            ps = self.pump_state[name]
            row += [ps["speed_ratio"], ps["flow_m3_d"], ps["running"]]
        # the mixers' electrical power per tank volume at the sample, as the meter counts it
        # (mixers run while the zone is not aerated): what keeps the solids suspended
        u = self.plant.u
        row += [self._mixing_w(n, v) / v if u[i] < MIXING_KLA_THRESHOLD_PER_D else 0.0 for n, v, i in self._mixer_zones()]
        return np.array(row)



class _AirSystem:
    """The air distribution of an equipment layer: blower curve, header loss, valves, back
    pressures and the plant slots it reads and writes."""

    def __init__(self, spec, cp, zones):
        h = spec.air_header
        b = spec.blowers
        self.curve = BlowerCurve(b.design_flow_nm3_d, h.blower_design_rise_pa, h.blower_shutoff_ratio)
        self.header_k = b.header_loss_pa / (b.design_flow_nm3_d * b.n_installed) ** 2
        self.valves = [ControlValve.sized(spec.zones[name].valve_design_flow_nm3_d, h.valve_design_dp_pa,
                                          h.valve_design_opening, h.valve_rangeability) for name, *_ in zones]
        self.back = [grid.back_pressure_pa() for _, grid, _ in zones]
        self.i_speed = cp.input_index[f"{h.unit}.blower_speed_ratio"]
        self.i_otf = [cp.input_index[f"{name}.oxygen_transfer_factor"] for name, *_ in zones]
        self.signal = f"{h.unit}.pressure_kPa"
