"""A run's lifecycle: load the plant, prepare it (wiring, initial state), run the scenario.

The assembly lives beside it, one module per responsibility: :mod:`twin.processes` (influent,
weather, recorder, progress), :mod:`twin.controls` (loops, instruments, tuning),
:mod:`twin.equipment.assembly` (machines, tariff, energy), :mod:`twin.fleet.assembly` (fleet,
maintenance agent and their couplings) and :mod:`twin.kpis` (results and KPIs). Their public
names are re-exported here for the modules and scripts that import them from ``twin.run``.
These assembly modules are the only ones in ``twin`` that know the controllers and the analysis
packages; the core (clock, units, flowsheet, integrator, plant) does not import them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from twin.checkpoint import Checkpointer, Checkpointing, check_supported
from twin.clock import TwinEnvironment
from twin.controls import (  # noqa: F401  (re-exported)
    _autotune_at,
    cascade_targets,
    input_slot,
    make_instruments,
    make_loops,
    tune_in_initial_state,
)
from twin.durations import TICKS_PER_DAY
from twin.equipment.assembly import build_equipment, build_tariff, energy_block  # noqa: F401
from twin.errors import ConfigError
from twin.fleet.assembly import _forced_failures, build_fleet, run_fleet_only  # noqa: F401
from twin.flowsheet import CompiledPlant, Flowsheet
from twin.influent import COLUMNS, build_table
from twin.kpis import (  # noqa: F401
    RunResult,
    _signal_unit,
    build_result,
    column_units,
    compute_kpis,
    control_kpis,
    final_concentrations,
    hydraulics,
    plant_metadata,
)
from twin.plant import Plant
from twin.processes import Progress, environment_process, influent_process, recorder_process, replay  # noqa: F401
from twin.scenario import Scenario
from twin.steady import solve_steady_state


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


