"""A run's results: the series with their units, KPIs (BSM1 evaluation, control, hydraulics,
energy, maintenance) and the plant's metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from twin.durations import TICKS_PER_DAY
from twin.equipment.assembly import energy_block
from twin.errors import SolverError
from twin.flowsheet import CompiledPlant, Flowsheet
from twin.plant import Plant
from twin.scenario import Scenario
from twin.units.asm1 import NAMES, TSS_PER_COD


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
_SUFFIX_UNITS = (("_W_m3", "W/m3"),
                 ("_g_m3", "g/m3"), ("_mol_m3", "mol/m3"), ("_Nm3_d", "Nm3/d"), ("_m3_d", "m3/d"), ("_per_d", "1/d"),
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



def influent_stream(cp: CompiledPlant) -> str | None:
    """The stream leaving the plant's influent unit (None: the plant has none)."""
    return next((cp.stream_names[cp.outs[n][0]] for n, u in cp.units.items() if u.type_name == "influent"), None)


def plant_metadata(cp: CompiledPlant, fs: Flowsheet) -> dict[str, Any]:
    """What the analysis needs to know about the plant (reactor volumes, roles of streams)."""
    reactors = {}
    for n, u in cp.units.items():
        if u.type_name == "asm1_reactor":
            reactors[n] = {"volume_m3": u.params.volume_m3, "SO_sat_g_m3": u.params.SO_sat_g_m3,
                           "kla_column": f"{n}.kla_per_d"}
    ev = fs.evaluation
    influent = influent_stream(cp)
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
