"""Assemble a run from a scenario and execute it: load -> validate -> build -> check wiring -> run -> results.

This module is the only one in ``twin`` that knows the controllers and the analysis
packages; the core (clock, units, flowsheet, integrator, plant) does not import them.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from twin.checkpoint import Checkpointer, Checkpointing, check_supported, run_clock
from twin.clock import TwinEnvironment
from twin.durations import TICKS_PER_DAY
from twin.errors import ConfigError, SolverError
from twin.flowsheet import CompiledPlant, Flowsheet
from twin.influent import COLUMNS, InfluentTable, build_table
from twin.plant import Plant
from twin.scenario import Scenario, text_of
from twin.steady import solve_steady_state
from twin.units.asm1 import NAMES, TSS_PER_COD


def bundled_plants() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("twin.plants").iterdir() if p.name.endswith(".yaml"))


def load_flowsheet(plant: str, base: Path | None) -> Flowsheet:
    """A bundled plant by name, or a flowsheet YAML path (relative to the scenario file)."""
    if plant in bundled_plants():
        res = resources.files("twin.plants") / f"{plant}.yaml"
        return Flowsheet.from_config(yaml.safe_load(res.read_text()), f"plant '{plant}'")
    path = Path(plant)
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.exists():
        from twin.units.base import did_you_mean
        raise ConfigError(f"plant: '{plant}' is neither a bundled plant ({', '.join(bundled_plants())})"
                          f"{did_you_mean(plant, bundled_plants())} nor an existing flowsheet file")
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    return Flowsheet.from_config(cfg, str(path))


_COMPILED: dict[str, CompiledPlant] = {}


def compile_flowsheet(fs: Flowsheet) -> CompiledPlant:
    """Compile, reusing an identical flowsheet compiled earlier in this process."""
    fs.check_evaluation()  # the evaluation block is not part of the compiled plant (nor of its cache key)
    key = repr((fs.name, [(n, u.type_name, u.params, u.config) for n, u in fs.units.items()], fs.connections))
    if key not in _COMPILED:
        _COMPILED[key] = fs.compile()
    cp = _COMPILED[key]
    fresh = CompiledPlant.__new__(CompiledPlant)
    fresh.__dict__.update(cp.__dict__)
    fresh.P = cp.P.copy()
    return fresh


@dataclass
class RunResult:
    scenario: Scenario
    times_s: np.ndarray  # since the start of the main period
    columns: list[str]
    values: np.ndarray
    events: Any
    kpis: dict[str, Any]
    metadata: dict[str, Any]
    failed: SolverError | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    fleet: Any = None  # the simulated fleet at the end of the run, when the scenario has one


class Progress:
    """Progress on a terminal (stderr): simulated days, percent, speed. Silent otherwise."""

    def __init__(self, total_s: int, enabled: bool):
        self.total_s = max(total_s, 1)
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.start_s = 0

    def start(self, now: int) -> None:
        """Count the speed from ``now`` (a resumed run)."""
        self.start_s = now
        self.t0 = time.perf_counter()

    def process(self, env):
        step = max(self.total_s // 100, 3600)
        while True:
            yield env.timeout(step)
            self.show(env.now)

    def show(self, now: int, final: bool = False) -> None:
        if not self.enabled:
            return
        wall = time.perf_counter() - self.t0
        rate = (now - self.start_s) / TICKS_PER_DAY / wall if wall > 0 else 0.0
        pct = 100.0 * now / self.total_s
        eta = (self.total_s - now) / TICKS_PER_DAY / rate if rate > 0 else 0.0
        sys.stderr.write(f"\r  {now / TICKS_PER_DAY:9.2f} / {self.total_s / TICKS_PER_DAY:g} d  {pct:5.1f} %  "
                         f"{rate:8.1f} simulated d/s  ETA {eta:6.0f} s ")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()


def influent_process(env, plant: Plant, index: np.ndarray, table: InfluentTable, start_s: int, end_s: int,
                     temperature_index: np.ndarray | None = None, wake_at: int | None = None):
    """Replay an influent table from ``start_s``; when the table carries a wastewater temperature,
    it is also the temperature input of the reactors in ``temperature_index`` (held).
    ``wake_at``: resume a saved run at the sample due then."""
    times = table.times_s
    vals = table.values
    n = times.size

    def apply(k: int) -> None:
        slope = None
        if table.interpolation == "linear" and k + 1 < n:
            slope = (vals[k + 1] - vals[k]) / ((times[k + 1] - times[k]) / TICKS_PER_DAY)
        plant.set_inputs(index, vals[k], slope)
        if temperature_index is not None and table.temperature_degC is not None and temperature_index.size:
            plant.set_inputs(temperature_index, np.full(temperature_index.size, table.temperature_degC[k]))
    yield from replay(env, start_s + times, apply, wake_at, end_s)


def replay(env, times_s: np.ndarray, apply, wake_at: int | None = None, end_s: int | None = None):
    """SimPy process body: ``apply(k)`` at each time ``times_s[k]`` (ticks, ascending) that has
    not passed, until ``end_s``; ``wake_at`` resumes a saved run at the sample due then."""
    k0 = 0
    if wake_at is not None:
        k0 = int(np.searchsorted(times_s, wake_at))
        yield env.timeout(wake_at - env.now)
    for k in range(k0, times_s.size):
        t_k = int(times_s[k])
        if end_s is not None and t_k >= end_s:
            break
        if t_k > env.now:
            yield env.timeout(t_k - env.now)
        apply(k)


def environment_process(env, plant: Plant, cp: CompiledPlant, table, equipment, water_temperature_c: float | None,
                        wake_at: int | None = None):
    """Replay the weather (held between samples): blower inlet air, the reactors' oxygen
    saturation at the barometric pressure, heated tanks' ambient temperature."""
    from twin.environment import so_sat_pressure_factor

    reactors = [(cp.input_index[f"{n}.so_sat_pressure_factor"], cp.input_index[f"{n}.temperature_C"])
                for n, u in cp.units.items() if u.type_name == "asm1_reactor"]
    tanks = [cp.input_index[f"{n}.ambient_temperature_C"] for n, u in cp.units.items() if u.type_name == "heated_tank"]

    def apply(k: int) -> None:
        t_air, rh, p = (float(v) for v in table.values[k])
        if equipment is not None:
            equipment.ambient.update(air_temperature_c=t_air, relative_humidity=rh, pressure_pa=p)
        for i_f, i_t in reactors:
            tw = water_temperature_c if water_temperature_c is not None else float(plant.u[i_t])
            plant.set_input(i_f, so_sat_pressure_factor(p, tw))
        for i in tanks:
            plant.set_input(i, t_air)
    yield from replay(env, table.times_s, apply, wake_at)


@dataclass
class Prepared:
    """A run assembled and put in its initial state, before any process starts."""

    fs: Flowsheet
    cp: CompiledPlant
    env: TwinEnvironment
    plant: Plant
    loops: list
    infl_index: np.ndarray


def initial_state(scenario: Scenario, base_dir: Path | None, env, plant: Plant, cp: CompiledPlant, loops: list,
                  infl_index: np.ndarray) -> None:
    """The plant's initial state: steady state under the initial influent with the loops at
    their setpoints (``initial.mode: steady_state``), then every loop started bumplessly."""
    if scenario.initial.mode == "steady_state":
        init_table = build_table(scenario.initial.influent, 0, base_dir, env.child_rng("influent.initial"))
        plant.u[infl_index] = init_table.values[0]
        ss_loops = [(cp.state_index[lp.spec.measurement], lp.act, lp.spec.setpoint, *lp.spec.limits)
                    for lp in loops if lp.spec.measurement in cp.state_index and not lp.targets]
        x, u, info = solve_steady_state(cp, plant.x, plant.u, ss_loops,
                                        scenario.initial.settle / TICKS_PER_DAY,
                                        plant.rtol, plant.atol, plant.h_max)
        plant.x[:] = x
        plant.u[:] = u
        env.log("initial_state", "plant", "steady state under the initial influent", **info)
    for lp in loops:
        lp.ctrl.initialise(lp.output(plant), lp.read())
        env.log("controller", lp.name, "loop started (bumpless)", actuator=lp.spec.actuator,
                u=lp.output(plant), K=lp.spec.K, Ti_d=lp.spec.Ti_d, Tt_d=lp.spec.Tt_d, setpoint=lp.spec.setpoint)


def prepare(scenario: Scenario, base_dir: Path | None, initial_temperature_c: float | None = None) -> Prepared:
    """Load and compile the plant, wire the loops, set the inputs and the initial state
    (steady state under the initial influent, loops at their setpoints), start the loops bumplessly."""
    fs = load_flowsheet(scenario.plant, base_dir)
    cp = compile_flowsheet(fs)
    env = TwinEnvironment(scenario, seed=scenario.seed)
    plant = Plant(env, cp, scenario.solver)
    source = next((n for n, u in cp.units.items() if u.type_name == "influent"), None)
    if source is None:
        raise ConfigError(f"plant '{scenario.plant}': has no unit of type 'influent'")
    infl_index = np.array([cp.input_index[f"{source}.{'Q_m3_d' if c == 'Q' else c + '_g_m3'}"] for c in COLUMNS])
    for name, value in scenario.inputs.items():
        plant.u[input_slot(cp, name, f"inputs.{name}")] = value
    loops = make_loops(env, plant, cp, scenario)
    if initial_temperature_c is not None:
        for n, unit in cp.units.items():
            if unit.type_name == "asm1_reactor":
                plant.u[cp.input_index[f"{n}.temperature_C"]] = initial_temperature_c
    initial_state(scenario, base_dir, env, plant, cp, loops, infl_index)
    return Prepared(fs, cp, env, plant, loops, infl_index)


def run_scenario(scenario: Scenario, base_dir: Path | None = None, progress: bool = False,
                 checkpoint: Checkpointing | None = None) -> RunResult:
    """Run a scenario: build its :class:`twin.twin.Twin`, advance it to the end, compute the
    results. With ``checkpoint``, save the run's state every ``checkpoint.every_s`` of
    simulated time and/or resume from the last saved state (see :mod:`twin.checkpoint`)."""
    from twin.twin import Shared, Twin

    saved = None
    if checkpoint is not None:
        if checkpoint.every_s:
            check_supported(scenario)
        if checkpoint.resume:
            saved = Checkpointer.read(checkpoint.folder, scenario)
    if scenario.fleet is not None and not scenario.fleet.process_model:
        return run_fleet_only(scenario, base_dir, progress, checkpoint, saved)
    wall0 = time.perf_counter()
    tw = Twin(Shared.build(scenario, base_dir), progress=progress, checkpoint=checkpoint, saved=saved)
    tw.run_to_end()
    tw.wall_s = time.perf_counter() - wall0
    return build_result(tw)


def build_result(tw) -> RunResult:
    """KPIs and series of a twin at the end of its run (times from the start of the main period)."""
    scenario, sh = tw.scenario, tw.shared
    env, plant, cp, loops, equipment, agent = tw.env, tw.plant, tw.cp, tw.loops, tw.equipment, tw.agent
    main_start, total, base_dir, failed = sh.main_start, sh.total, sh.base_dir, tw.failed
    times, columns, values = env.recorder.table()
    times = times - main_start
    metadata = plant_metadata(cp, sh.fs)
    metadata["controllers"] = {lp.name: {"measurement": lp.spec.measurement, "actuator": lp.spec.actuator,
                                         "measurement_unit": _signal_unit(cp, lp.spec.measurement),
                                         "actuator_unit": _signal_unit(cp, lp.spec.actuator, scenario)}
                               for lp in loops}
    metadata["sensors"] = {f"sensor.{n}": {"signal": sp.signal, "unit": _signal_unit(cp, sp.signal)}
                           for n, sp in scenario.sensors.items()}
    metadata["column_units"] = column_units(cp, columns, metadata)
    metadata["base_dir"] = str(Path(base_dir).resolve()) if base_dir is not None else None  # for a tariff's price file
    metadata["main_start_s"] = int(main_start)  # event times count from the start of the run, the series from here
    stats = {"integrator_steps": int(plant.steps), "rhs_evaluations": int(plant.rhs_evals)}
    kpis: dict[str, Any] = {}
    if failed is None:
        kpis = compute_kpis(scenario, times, columns, values, metadata, plant, cp)
        if equipment is not None:
            kpis["energy"] = energy_block(scenario, times, columns, values, metadata, base_dir)
        if agent is not None:
            from analysis.maintenance import outage_consequences

            outages = [(a - main_start, b - main_start)
                       for a, b in agent.outage_intervals(agent.process_assets, env.now)]
            kpis["maintenance"] = agent.kpis(total, scenario.fleet.alarm_horizon_h)
            ev0, ev1 = scenario.evaluation_window_s()
            bypass = [cp.stream_names[cp.outs[n][1]] for n, u in cp.units.items() if u.type_name == "wet_well"]
            kpis["maintenance"]["process_consequences"] = outage_consequences(
                times, columns, values, metadata, ev0, ev1, outages, bypass)
        if loops:
            kpis["control"] = {lp.name: control_kpis(lp) for lp in loops}
    kpis["run"] = {"simulated_days": scenario.duration_s / TICKS_PER_DAY,
                   "total_simulated_days": total / TICKS_PER_DAY,
                   "wall_s": round(tw.wall_s, 3), "seed": scenario.seed, **stats}
    return RunResult(scenario, times, columns, values, env.events, kpis, metadata, failed, stats,
                     agent.fleet if agent is not None else None)


#: units of the recorded columns by the end of their name (the names carry their unit)
_SUFFIX_UNITS = (("_g_m3", "g/m3"), ("_mol_m3", "mol/m3"), ("_Nm3_d", "Nm3/d"), ("_m3_d", "m3/d"), ("_per_d", "1/d"),
                 ("_kW", "kW"), ("_W", "W"), ("_kPa", "kPa"), ("_Pa", "Pa"), ("_kg", "kg"), ("_C", "degC"),
                 ("_NTU", "NTU"), ("_m", "m"))


def column_units(cp: CompiledPlant, columns: list[str], metadata: dict[str, Any]) -> dict[str, str]:
    """The unit of every recorded column (``-`` for a ratio, ``count`` for machines running):
    plant inputs and states from their declarations, loops from their measurement and actuator,
    instruments from their signal, the rest from the unit at the end of the name."""
    ctrl = metadata.get("controllers", {})
    sensors = metadata.get("sensors", {})
    out = {"time_s": "s", "time_d": "d"}
    for c in columns:
        if c in cp.input_index:
            out[c] = cp.input_units[cp.input_index[c]]
        elif c in cp.state_index:
            out[c] = cp.state_units[cp.state_index[c]]
        elif c.startswith("control."):
            _, loop, part = c.split(".", 2)
            out[c] = ctrl[loop]["actuator_unit" if part == "output" else "measurement_unit"]
        elif c in sensors:
            out[c] = sensors[c]["unit"]
        elif c.endswith((".running", "blowers_running")):
            out[c] = "count"
        elif c.endswith(("valve_opening", "speed_ratio", "factor")):
            out[c] = "-"
        else:
            out[c] = next((u for suffix, u in _SUFFIX_UNITS if c.endswith(suffix)), "-")
    return out


def _signal_unit(cp: CompiledPlant, name: str, scenario: Scenario | None = None) -> str:
    if name.startswith("controllers.") and scenario is not None and name.count(".") == 2:
        inner = scenario.controllers.get(name.split(".")[1])
        return _signal_unit(cp, inner.measurement) if inner is not None else "g/m3"
    if name.endswith(".turbidity_NTU"):
        return "NTU"
    if name.endswith(".Q"):
        return "m3/d"
    uname, _, sig = name.partition(".")
    if uname in cp.units and sig in dict(cp.units[uname].external_signals()):
        return dict(cp.units[uname].external_signals())[sig]
    if name in cp.state_index:
        return cp.state_units[cp.state_index[name]]
    if name in cp.input_index:
        return cp.input_units[cp.input_index[name]]
    return "g/m3"


def build_fleet(env, spec, base_dir: Path | None, plant: Plant | None = None, cp: CompiledPlant | None = None,
                equipment=None, main_start_s: int = 0, loaded: tuple | None = None, fresh: bool = True):
    """The fleet, the maintenance agent and (with a process model) the couplings: failed pumps
    take capacity from their station, fouled aeration grids lower their zone's oxygen transfer.
    ``loaded``: the fleet file as already loaded, (path, types, assets); ``fresh=False``: the
    fleet and agent are about to be restored from a snapshot (no random streams drawn).

    Wear reaches the process through the damage d of the fleet's failure model (0 until a defect
    initiates, from ``initial_damage`` at point P to 1 at failure; see :mod:`twin.fleet.model`):
    a condition or transfer factor exp(-c d), with c the scenario's ``wear_condition_loss`` or
    ``fouling_transfer_loss`` (the factor at the failure size). It is the damage the sensors show,
    so a degraded machine costs energy or oxygen transfer exactly while its channels say so, and a
    renewal restores it. (Before defects had precursors the couplings used the cumulative
    initiation hazard (a/eta)^beta, a function of the effective age alone: it rose from the first
    hour of service whatever the machine's condition, and carried nothing a sensor could see.)"""
    from agents.maintenance import MaintenanceAgent
    from twin.fleet.model import Fleet, load_fleet
    from twin.influent import resolve_path

    if loaded is not None:
        path, types, assets = loaded
    else:
        try:
            path = resolve_path(spec.file, base_dir)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("influent.file", "fleet.file")) from None
        types, assets = load_fleet(path)
    for t in spec.policies:
        if t != "default" and t not in types:
            from twin.units.base import did_you_mean
            raise ConfigError(f"fleet.policies.{t}: no asset type of that name in {path}{did_you_mean(t, types)}")
    for t, pol in spec.policies.items():
        if pol.kind == "condition" and t != "default" and pol.channel not in {c.name for c in types[t].channels}:
            from twin.units.base import did_you_mean
            names = [c.name for c in types[t].channels]
            raise ConfigError(f"fleet.policies.{t}.channel: type '{t}' has no channel '{pol.channel}'"
                              f"{did_you_mean(pol.channel, names)} (its channels: {', '.join(names)})")
    from agents.predictors.policy import load_policy_models

    models = load_policy_models(spec, types, base_dir)  # a model for other channels fails here, before the run
    fleet = Fleet(types, assets, env.seed, fresh=fresh)
    fleet.s.asset_load[:] = spec.load
    stations: dict[str, list[int]] = {}
    grids: dict[str, list[int]] = {}
    blowers: list[int] = []
    valves: dict[str, list[int]] = {}
    exchangers: list[int] = []
    mixers: dict[str, list[int]] = {}
    for i, a in enumerate(assets):
        kind, _, target = a.function.partition(":")
        if kind == "pump" and equipment is not None and target in equipment.spec.pumps:
            stations.setdefault(target, []).append(i)
        elif kind == "aeration_grid" and cp is not None and f"{target}.oxygen_transfer_factor" in cp.input_index:
            grids.setdefault(target, []).append(i)
        elif kind == "blower" and equipment is not None and equipment.spec.blowers is not None:
            blowers.append(i)
        elif kind == "air_valve" and equipment is not None and equipment.air is not None \
                and target in equipment.valve_capacity:
            valves.setdefault(target, []).append(i)
        elif kind == "heat_exchanger" and equipment is not None and equipment.spec.heating.exchanger is not None:
            exchangers.append(i)
        elif kind == "mixer" and equipment is not None and target in equipment.spec.mixers:
            mixers.setdefault(target, []).append(i)
    coupled = {i for idx in [*stations.values(), blowers, *valves.values(), exchangers, *mixers.values()] for i in idx}

    mode_rows: dict[tuple[int, str], list[int]] = {}
    for r, i in enumerate(fleet.s.row_asset):
        mode_rows.setdefault((int(i), fleet.s.row_mode[r][1]), []).append(r)

    def deg(i: int, mode: str) -> float:
        """Damage d of asset i's mode ``mode`` (hidden state, for the process only; 0 if it has none)."""
        return float(sum(fleet.s.damage[r] for r in mode_rows.get((i, mode), ())))

    def wear(i: int, mode: str) -> float:
        """Condition factor exp(-c d) of asset i from the damage of its mode ``mode``."""
        return math.exp(-spec.wear_condition_loss * deg(i, mode))

    def update_machines():
        """Failed machines leave their station; worn ones lower its condition: a pump station's
        impeller condition and the blowers' efficiency are the means over the machines in
        service; a zone's air valves pass the share of its drop legs in service."""
        up = fleet.s.asset_up
        for name, idx in stations.items():
            on = [i for i in idx if up[i]]
            equipment.pumps_out_of_service[name] = max(0, equipment.spec.pumps[name].n_parallel - len(on))
            if on:
                equipment.pump_condition[name] = equipment.spec.pumps[name].condition * float(
                    np.mean([wear(i, spec.impeller_mode) for i in on]))
        if blowers:
            on = [i for i in blowers if up[i]]
            equipment.blowers_out_of_service = max(0, equipment.station.n_installed - len(on))
            equipment.blower_condition = float(np.mean([wear(i, spec.blower_efficiency_mode) for i in on])) if on else 1.0
        for zone, idx in valves.items():
            equipment.valve_capacity[zone] = float(np.mean(up[idx]))
        if exchangers:  # parallel exchangers: the UA in service, each lowered by its fouling
            fouling = [m.name for m in types[assets[exchangers[0]].type].modes if m.kind == "fouling"]
            equipment.exchanger_condition = float(np.mean(
                [math.exp(-spec.fouling_transfer_loss * sum(deg(i, m) for m in fouling)) if up[i] else 0.0
                 for i in exchangers]))
        for zone, idx in mixers.items():
            equipment.mixers_out_of_service[zone] = int(np.sum(~up[idx]))

    def changed(i, *_):
        if plant is not None:
            plant.sync()
        if i in coupled:
            update_machines()
            equipment.update()

    agent = MaintenanceAgent(env, fleet, spec, on_down=changed, on_up=changed, models=models, fresh=fresh)
    #: assets whose outage changes the process (for the outage consequences in the KPIs)
    agent.process_assets = sorted(coupled | {i for idx in grids.values() for i in idx})
    scenario = env.scenario
    for k, ev in enumerate(getattr(scenario, "events", []) or []):
        for ident in ev.fail:
            if ident not in fleet.index:
                from twin.units.base import did_you_mean
                raise ConfigError(f"events[{k}].fail: no asset '{ident}' in the fleet{did_you_mean(ident, fleet.index)}")
        if ev.fail:
            env.start(f"fail_event.{k}", lambda w, ev=ev: _forced_failures(
                env, agent, fleet, ev, main_start_s + ev.at, w))
    step = spec.step
    env.start("fleet.clock", lambda w: agent.fleet_clock(step, w))
    if models:
        env.start("fleet.sensor_log", agent.sensor_log)
    for t in sorted(types):
        env.start(f"fleet.policy.{t}", lambda w, t=t: agent.policy_process(t, spec.policy_for(t), w))
    duty_grids = {z: idx for z, idx in grids.items()
                   if equipment is not None and z in equipment.spec.zones
                   and equipment.spec.zones[z].valve_design_flow_nm3_d is not None}
    if stations or blowers or duty_grids:
        def station_load(wake_at=None):
            """Machines age with their duty (load 1 = design point): running pumps at their speed
            ratio and blowers at their flow over the design flow (the first available in identity
            order run; standby machines do not age); a zone's diffuser grids at its airflow over
            the valve design flow."""
            if wake_at is not None:
                yield env.timeout(wake_at - env.now)
            up_all = fleet.s.asset_up
            while True:
                for name, idx in stations.items():
                    running = int(equipment.pump_state[name]["running"])
                    r = float(equipment.pump_state[name]["speed_ratio"])
                    up = [i for i in idx if up_all[i]]
                    for k, i in enumerate(up):
                        fleet.s.asset_load[i] = r if k < running else 0.0
                if blowers:
                    running = int(equipment.state["blowers_running"])
                    each = equipment.state["airflow_nm3_d"] / running if running else 0.0
                    up = [i for i in blowers if up_all[i]]
                    for k, i in enumerate(up):
                        fleet.s.asset_load[i] = each / equipment.station.blower.design_flow_nm3_d if k < running else 0.0
                if duty_grids:
                    demands = dict(zip((z for z, *_ in equipment.zones), equipment.zone_airflow_demands()))
                    for zone, idx in duty_grids.items():
                        q = equipment.state.get(f"{zone}.airflow_nm3_d", demands[zone])
                        fleet.s.asset_load[idx] = q / equipment.spec.zones[zone].valve_design_flow_nm3_d
                yield env.timeout(step)
        env.start("fleet.station_load", station_load)
    if coupled:
        def machines(wake_at=None):
            """Wear moves the machines' condition as the fleet ages (every fleet step)."""
            first = step if wake_at is None else wake_at - env.now
            while True:
                yield env.timeout(first)
                first = step
                update_machines()
        env.start("fleet.machines", machines)
    if grids and plant is not None:
        def fouling_rows(i: int) -> np.ndarray:
            kinds = {m.name: m.kind for m in types[assets[i].type].modes}
            return np.array([r for r in fleet.rows_of(i) if kinds[fleet.s.row_mode[r][1]] == "fouling"], dtype=np.int64)
        rows_of_grid = {i: fouling_rows(i) for idx in grids.values() for i in idx}

        def grid_process(wake_at=None):
            """Each zone's oxygen transfer is the mean over its grids of exp(-c d_fouling) (d: the
            fouling modes' damage); a grid out of service transfers nothing."""
            if wake_at is not None:
                yield env.timeout(wake_at - env.now)
            while True:
                d = fleet.s.damage
                for reactor, idx in grids.items():
                    f = [math.exp(-spec.fouling_transfer_loss * float(np.sum(d[rows_of_grid[i]])))
                         if fleet.s.asset_up[i] else 0.0 for i in idx]
                    if equipment is not None and equipment.air is not None:
                        equipment.zone_fouling[reactor] = float(np.mean(f))  # applied with the air supply
                    else:
                        plant.set_input(cp.input_index[f"{reactor}.oxygen_transfer_factor"], float(np.mean(f)))
                yield env.timeout(step)
        env.start("fleet.grids", grid_process)
    return agent


def _forced_failures(env, agent, fleet, ev, at: int, wake_at: int | None = None):
    """A scenario event that fails assets (the first failure mode of each), e.g. a lift pump
    tripping during a storm: what-if studies with the same seed otherwise."""
    if wake_at is not None or at > env.now:
        yield env.timeout(at - env.now)
    for ident in ev.fail:
        agent.fail(int(fleet.rows_of(fleet.index[ident])[0]), forced=True)


def run_fleet_only(scenario: Scenario, base_dir: Path | None, progress: bool = False,
                   checkpoint: Checkpointing | None = None, saved: dict | None = None) -> RunResult:
    """A fleet study without the process model: assets at the scenario's constant load."""
    wall0 = time.perf_counter()
    env = TwinEnvironment(scenario, seed=scenario.seed)
    if saved is not None:
        env.deferred = {}
    agent = build_fleet(env, scenario.fleet, base_dir)
    total = scenario.duration_s
    prog = Progress(total, progress)
    if progress:
        env.start("progress", lambda w: prog.process(env), stateless=True)
    ck = None
    if checkpoint is not None:
        ck = Checkpointer(checkpoint, scenario, env, {"fleet": agent.fleet, "agent": agent})
        if saved is not None:
            ck.restore(saved)
            prog.start(env.now)
    run_clock(env, total + 1, ck)
    prog.show(env.now, final=True)
    kpis = {"maintenance": agent.kpis(total, scenario.fleet.alarm_horizon_h),
            "run": {"simulated_days": total / TICKS_PER_DAY, "total_simulated_days": total / TICKS_PER_DAY,
                    "wall_s": round(time.perf_counter() - wall0, 3), "seed": scenario.seed}}
    return RunResult(scenario, np.zeros(0, dtype=np.int64), [], np.zeros((0, 0)), env.events, kpis, {}, None, {},
                     agent.fleet)


def build_equipment(env, plant: Plant, cp: CompiledPlant, spec, base_dir: Path | None = None):
    """The equipment layer, with its references to the plant and its tariff (a price file) checked
    (ConfigError otherwise), before anything runs."""
    from twin.equipment.layer import Equipment

    build_tariff(spec.tariff, base_dir)

    for name in spec.zones:
        if name not in cp.units or cp.units[name].type_name != "asm1_reactor":
            from twin.units.base import did_you_mean
            raise ConfigError(f"equipment.zones.{name}: not an aerated tank of the plant"
                              f"{did_you_mean(name, cp.units)}")
    for name, p in spec.pumps.items():
        input_slot(cp, p.input, f"equipment.pumps.{name}.input")
    for k, name in enumerate(spec.heating.tanks):
        input_slot(cp, f"{name}.heat_W", f"equipment.heating.tanks[{k}]")
    for name in spec.mixers:
        if name not in cp.units or cp.units[name].type_name != "asm1_reactor":
            from twin.units.base import did_you_mean
            raise ConfigError(f"equipment.mixers.{name}: not a tank of the plant{did_you_mean(name, cp.units)}")
    if spec.air_header is not None:
        u = spec.air_header.unit
        if u not in cp.units or cp.units[u].type_name != "air_header":
            from twin.units.base import did_you_mean
            raise ConfigError(f"equipment.air_header.unit: the plant has no unit '{u}' of type air_header"
                              f"{did_you_mean(u, cp.units)}")
    return Equipment(env, plant, spec)


def build_tariff(spec, base_dir: Path | None):
    """The scenario's electricity tariff (``equipment.tariff``) as an :class:`analysis.energy.Tariff`."""
    from analysis.energy import Tariff, load_price_file
    from twin.influent import resolve_path

    if spec.kind == "file":
        if not spec.file:
            raise ConfigError("equipment.tariff.file: a price file is needed for kind 'file'")
        try:
            path = resolve_path(spec.file, base_dir)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("influent.file", "equipment.tariff.file")) from None
        return load_price_file(path, spec.per)
    return Tariff(kind=spec.kind, price_per_kwh=spec.price_per_kwh, bands=[b.model_dump() for b in spec.bands])


def energy_block(scenario: Scenario, times, columns, values, metadata, base_dir) -> dict:
    from analysis.energy import energy_kpis

    spec = scenario.equipment
    t = spec.tariff
    tariff = build_tariff(t, base_dir)
    start, end = scenario.evaluation_window_s()
    eff = metadata.get("effluent_stream")
    treated = None
    if eff:
        i = columns.index(f"{eff}.Q_m3_d")
        sel = np.nonzero((times >= start) & (times <= end))[0]
        treated = float(np.sum(values[sel[:-1], i] * np.diff(times[sel]) / 86400.0))
    h = spec.heating
    heat = {"source": h.source, "price_per_kwh": h.fuel_price_per_kwh, "co2_kg_per_kwh": h.fuel_co2_kg_per_kwh}
    out = energy_kpis(times, columns, values, start, end, tariff, spec.co2_kg_per_kwh, treated, heat)
    if t.currency:
        out["units"]["cost"] = t.currency
    return out


def input_slot(cp: CompiledPlant, name: str, field: str) -> int:
    """Index of plant input ``name``; a ConfigError naming the scenario ``field`` if there is none."""
    if name not in cp.input_index:
        from twin.units.base import did_you_mean
        raise ConfigError(f"{field}: the plant has no input '{name}'{did_you_mean(name, cp.input_index)}")
    return cp.input_index[name]


def cascade_targets(name: str, spec, loop_names: list[str]) -> list[str]:
    """The loops whose setpoints loop ``name`` drives (its actuator ``controllers.NAME.setpoint``
    and ``also_drives``); empty for a loop on a plant input. ConfigError naming the field."""
    cascade = spec.actuator.startswith("controllers.")
    if spec.also_drives and not cascade:
        raise ConfigError(f"controllers.{name}.also_drives: only a cascade (actuator: controllers.NAME.setpoint) "
                          "drives more loops")
    out = []
    for k, target in enumerate(([spec.actuator] if cascade else []) + list(spec.also_drives)):
        field = f"controllers.{name}.actuator" if (cascade and k == 0) else f"controllers.{name}.also_drives"
        parts = target.split(".")
        if len(parts) != 3 or parts[0] != "controllers" or parts[2] != "setpoint":
            raise ConfigError(f"{field}: a cascade drives another loop's setpoint (controllers.NAME.setpoint), "
                              f"got '{target}'")
        if parts[1] not in loop_names or parts[1] == name:
            from twin.units.base import did_you_mean
            raise ConfigError(f"{field}: no other enabled loop '{parts[1]}'{did_you_mean(parts[1], loop_names)}")
        out.append(parts[1])
    return out


def make_loops(env, plant: Plant, cp: CompiledPlant, scenario: Scenario) -> list:
    """The scenario's control loops wired to ``plant`` (wiring errors are ConfigErrors)."""
    from controllers.autotune import LoopStats
    from controllers.loop import Loop
    from controllers.pid import PID, PIDSettings
    from controllers.sensors import Sensor

    loops = []
    for name, spec in scenario.controllers.items():
        if not spec.enabled:
            continue
        try:
            read = plant.signal_reader(spec.measurement)
        except ConfigError as exc:
            raise ConfigError(f"controllers.{name}.measurement: {exc}") from None
        act = -1 if spec.actuator.startswith("controllers.") else input_slot(cp, spec.actuator,
                                                                              f"controllers.{name}.actuator")
        ts_d = spec.sample_time / TICKS_PER_DAY
        ctrl = PID(PIDSettings(K=spec.K, Ti_d=spec.Ti_d, Td_d=spec.Td_d, N=spec.N, b=spec.b, c=spec.c,
                               Tt_d=spec.Tt_d, offset=spec.offset, u_min=spec.limits[0], u_max=spec.limits[1],
                               rate_max_per_d=spec.rate_max_per_d or float("inf"), anti_windup=spec.anti_windup,
                               form=spec.form), spec.setpoint, ts_d)
        sensor = None
        s = spec.sensor
        if s.noise_sd > 0 or s.T90_min > 0 or s.range is not None:
            sensor = Sensor(s.T90_min / 1440.0, s.order, s.noise_sd, s.range, env.child_rng(f"sensor.{name}"), ts_d)
        actuator = None
        if spec.actuator_dynamics.T90_min > 0:
            a = spec.actuator_dynamics
            actuator = Sensor(a.T90_min / 1440.0, a.order, 0.0, None, None, ts_d)
        loops.append(Loop(name, spec, ctrl, read, act, sensor, actuator,
                          stats=LoopStats(ts_d, keep_recent=spec.adaptive.enabled)))
    by_name = {lp.name: lp for lp in loops}
    for lp in loops:  # cascades: the output is other loops' setpoints
        lp.targets = [by_name[n] for n in cascade_targets(lp.name, lp.spec, list(by_name))]
    return loops


def make_instruments(env, plant: Plant, scenario: Scenario) -> list:
    """The scenario's instruments (``sensors``), wired to the plant's signals."""
    from controllers.sensors import Instrument, Sensor

    out = []
    for name, spec in scenario.sensors.items():
        try:
            read = plant.signal_reader(spec.signal)
        except ConfigError as exc:
            raise ConfigError(f"sensors.{name}.signal: {exc}") from None
        period = spec.sample_time
        dead = spec.dead_time
        if dead % period:
            raise ConfigError(f"sensors.{name}.dead_time: {text_of(spec.dead_time)} is not a whole number of "
                              f"samples of {text_of(spec.sample_time)}")
        sensor = None
        if spec.noise_sd > 0 or spec.T90_min > 0 or spec.range is not None:
            sensor = Sensor(spec.T90_min / 1440.0, spec.order, spec.noise_sd, spec.range,
                            env.child_rng(f"instrument.{name}"), period / TICKS_PER_DAY)
        out.append(Instrument(name, read, sensor, period, dead // period, signal=spec.signal))
    return out


def tune_in_initial_state(scenario: Scenario, cp: CompiledPlant, x: np.ndarray, u: np.ndarray,
                          names: list[str]) -> tuple[dict, Any]:
    """Identify and tune ``names`` on a copy of the plant held at state (x, u) with its inputs
    (influent included) constant, the other loops running: a commissioning test in a quiet
    period. Returns ({loop name: TuneOutcome}, the side run's event log)."""
    from controllers.autotune import identify_and_tune
    from controllers.loop import loop_process

    env = TwinEnvironment(scenario, seed=scenario.seed)
    plant = Plant(env, cp, scenario.solver)
    plant.x[:] = x
    plant.u[:] = u
    loops = make_loops(env, plant, cp, scenario)
    for lp in loops:
        lp.ctrl.initialise(lp.output(plant), lp.read())
        env.process(loop_process(env, plant, lp))
    outcomes = {}
    for lp in loops:
        if lp.name in names and not math.isfinite(lp.read()):
            raise ConfigError(f"controllers.{lp.name}: its measurement '{lp.spec.measurement}' comes from the "
                              "equipment layer, which the initial-state test does not run; tune it in the "
                              "scenario (autotune.at: a time) or by hand")

    def sequence():
        for lp in loops:
            if lp.name in names:
                lp.busy = True
                outcomes[lp.name] = yield env.process(identify_and_tune(env, lp, plant, lp.spec.autotune,
                                                                        "tuning in the initial (steady) state",
                                                                        live=False))
                lp.busy = False
                yield env.timeout(3600)  # let the loop settle before the next test

    done = env.process(sequence())
    env.run(until=done)
    return outcomes, env.events


def _autotune_at(env, loop, plant, at: int, identify_and_tune, wake_at: int | None = None):
    if wake_at is not None or at > env.now:
        yield env.timeout(at - env.now)
    loop.busy = True
    yield env.process(identify_and_tune(env, loop, plant, loop.spec.autotune, "scheduled auto-tuning"))
    loop.busy = False


def plant_metadata(cp: CompiledPlant, fs: Flowsheet) -> dict[str, Any]:
    """What the analysis needs to know about the plant (reactor volumes, roles of streams)."""
    reactors = {}
    for n, u in cp.units.items():
        if u.type_name == "asm1_reactor":
            reactors[n] = {"volume_m3": u.params.volume_m3, "SO_sat_g_m3": u.params.SO_sat_g_m3,
                           "kla_column": f"{n}.kla_per_d"}
    ev = fs.evaluation
    influent = next((cp.stream_names[cp.outs[n][0]] for n, u in cp.units.items() if u.type_name == "influent"), None)
    bypass = [cp.stream_names[cp.outs[n][1]] for n, u in cp.units.items() if u.type_name == "wet_well"]
    return {"plant": fs.name, "reactors": reactors, "influent_stream": influent, "bypass_streams": bypass,
            "effluent_stream": ev.get("effluent_stream"),
            "waste_stream": ev.get("waste_stream"), "pumped_flows": dict(ev.get("pumped_flows") or {}),
            "f_P": next((u.params.f_P for u in cp.units.values() if u.type_name == "asm1_reactor"), 0.08),
            "i_XB": next((u.params.i_XB for u in cp.units.values() if u.type_name == "asm1_reactor"), 0.08),
            "i_XP": next((u.params.i_XP for u in cp.units.values() if u.type_name == "asm1_reactor"), 0.06)}


def control_kpis(lp) -> dict[str, Any]:
    s = lp.ctrl.settings
    out = lp.stats.kpis()
    out.update({"retunes": lp.retunes,
                "final_gains": {"K": s.K, "Ti_d": s.Ti_d if s.Ti_d != float("inf") else None, "Td_d": s.Td_d},
                "margins": lp.tuning.verification.as_dict() if lp.tuning is not None else None,
                "model": lp.model.describe() if lp.model is not None else None})
    return out


def compute_kpis(scenario, times, columns, values, metadata, plant, cp) -> dict[str, Any]:
    from analysis.bsm1 import evaluate

    kpis: dict[str, Any] = {}
    if scenario.evaluation.kind == "bsm1":
        start, end = scenario.evaluation_window_s()
        kpis["bsm1"] = evaluate(times, columns, values, metadata, start, end,
                                scenario.evaluation.sample_interval)
    if scenario.influent.kind == "constant":
        kpis["steady_state"] = final_concentrations(plant, cp)
    kpis["hydraulics"] = hydraulics(scenario, times, columns, values, cp)
    return kpis


def hydraulics(scenario, times, columns, values, cp) -> dict[str, Any]:
    """Volume and duration of treatment bypass (overflow of a wet well) over the evaluation window."""
    start, end = scenario.evaluation_window_s()
    sel = np.nonzero((times >= start) & (times <= end))[0]
    out: dict[str, Any] = {"bypass_m3": 0.0, "bypass_hours": 0.0, "units": {"bypass_m3": "m3", "bypass_hours": "h"}}
    if sel.size < 2:
        return out
    dt_d = np.diff(times[sel]) / 86400.0
    for name, unit in cp.units.items():
        if unit.type_name != "wet_well":
            continue
        k = cp.outs[name][1]
        q = values[sel[:-1], columns.index(f"{cp.stream_names[k]}.Q_m3_d")]
        out["bypass_m3"] += float(np.sum(q * dt_d))
        out["bypass_hours"] += float(np.sum(dt_d[q > 1e-6]) * 24.0)
    return out


def final_concentrations(plant: Plant, cp: CompiledPlant) -> dict[str, dict[str, float]]:
    """Reactor and settler concentrations at the end of the run (g/m3), with TSS."""
    Q, C = cp.stream_values(plant.env.now_d, plant.x, plant.u)
    out: dict[str, dict[str, float]] = {}

    def block(conc):
        d = {n: float(conc[i]) for i, n in enumerate(NAMES)}
        d["TSS"] = float(TSS_PER_COD * sum(d[n] for n in ("XI", "XS", "XBH", "XBA", "XP")))
        return d
    for n, u in cp.units.items():
        if u.type_name == "asm1_reactor":
            out[n] = block(plant.x[cp.state_slices[n]])
        elif u.type_name == "takacs_settler":
            outs = cp.outs[n]
            for port, k in zip(("effluent", "underflow"), outs):
                out[f"{n}_{port}"] = block(C[k]) | {"Q": float(Q[k])}
            sl = cp.state_slices[n]
            out[f"{n}_layers_TSS"] = {f"layer_{i + 1}": float(v)
                                      for i, v in enumerate(plant.x[sl.start:sl.start + u.params.layers])}
    return out
