"""The twin as an object: build once, advance, read, change, snapshot and fork.

A :class:`Twin` owns one run's parts: the SimPy environment (clock, random streams, recorder,
event log), the plant, the control loops, the instruments, the equipment layer and the fleet
with its maintenance agent. What does not change while a run goes on (the compiled plant, the
influent and weather tables, the loaded fleet file) lives in a :class:`Shared` object that a
twin and all its forks hold together; everything else belongs to one twin.

A fork is a new set of parts wired exactly as the parent's (no steady state, no tuning, no
file read, no compilation) with the parent's state copied into them and its processes
restarted at the times they were waiting for, in the parent's event order: the mechanism that
makes a checkpointed run resume bit for bit, kept in memory. A fork that is not changed
continues bit-identically to its parent, random streams included.
"""

from __future__ import annotations

import copyreg
import io
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from twin.clock import TwinEnvironment, child_rng
from twin.durations import TICKS_PER_DAY, parse_duration
from twin.errors import ConfigError, SolverError
from twin.scenario import Scenario


@dataclass
class Shared:
    """What a twin and its forks share, read-only: the scenario, the compiled plant, the influent
    phases and their tables, the weather table and the loaded fleet file."""

    scenario: Scenario
    base_dir: Path | None
    fs: Any
    cp: Any
    phases: list  # (influent spec, duration in s, kind)
    tables: list
    weather: Any
    infl_index: np.ndarray
    temp_index: np.ndarray
    main_start: int
    total: int
    fleet_file: Any = None  # (types, assets) as loaded

    @classmethod
    def build(cls, scenario: Scenario, base_dir: Path | None) -> Shared:
        from twin.environment import build_weather
        from twin.influent import COLUMNS, build_table
        from twin.run import compile_flowsheet, load_flowsheet

        phases = [(p.influent, p.duration, "warmup") for p in scenario.warmup]
        phases.append((scenario.influent, scenario.duration_s, "main"))
        tables = [build_table(spec, dur, base_dir, child_rng(scenario.seed, f"influent.{i}"))
                  for i, (spec, dur, _) in enumerate(phases)]
        fs = load_flowsheet(scenario.plant, base_dir)
        cp = compile_flowsheet(fs)
        source = next((n for n, u in cp.units.items() if u.type_name == "influent"), None)
        if source is None:
            raise ConfigError(f"plant '{scenario.plant}': has no unit of type 'influent'")
        infl_index = np.array([cp.input_index[f"{source}.{'Q_m3_d' if c == 'Q' else c + '_g_m3'}"] for c in COLUMNS])
        temp_index = np.array([cp.input_index[f"{n}.temperature_C"] for n, u in cp.units.items()
                               if u.type_name == "asm1_reactor"], dtype=np.int64)
        main_start = sum(d for _, d, _ in phases[:-1])
        total = main_start + scenario.duration_s
        weather = None
        if scenario.environment is not None:
            weather = build_weather(scenario.environment, total, base_dir, child_rng(scenario.seed, "environment"))
            if weather.times_s[-1] < total and weather.times_s.size > 1:
                raise ConfigError(f"environment.file: {weather.source} covers {weather.times_s[-1] / 86400:g} d but "
                                  f"the run lasts {total / 86400:g} d")
        fleet_file = None
        if scenario.fleet is not None:
            from twin.fleet.model import load_fleet
            from twin.influent import resolve_path

            try:
                path = resolve_path(scenario.fleet.file, base_dir)
            except ConfigError as exc:
                raise ConfigError(str(exc).replace("influent.file", "fleet.file")) from None
            fleet_file = (path, *load_fleet(path))
        return cls(scenario, base_dir, fs, cp, phases, tables, weather, infl_index, temp_index, main_start, total,
                   fleet_file)


def _copy_compiled(cp):
    """The compiled plant for one twin: kernels and tables shared, its parameter vector its own
    (equipment writes into it)."""
    fresh = type(cp).__new__(type(cp))
    fresh.__dict__.update(cp.__dict__)
    fresh.P = cp.P.copy()
    return fresh


class Twin:
    """One running twin. Build with :meth:`from_scenario`; then ``advance``, ``read``,
    ``series``, ``set``, ``snapshot``/``restore`` and ``fork``.

    Time: ``now`` is simulated seconds since the clock started (warm-up phases included);
    ``main_start_s`` is where the scenario's main period starts, ``end_s`` where it ends.
    """

    # -- building -------------------------------------------------------------------------
    @classmethod
    def from_scenario(cls, scenario: str | Path | dict | Scenario, seed: int | None = None,
                      overrides: list[str] | dict | None = None, base_dir: str | Path | None = None,
                      progress: bool = False) -> Twin:
        """Build a twin from a scenario file, a scenario mapping or a loaded :class:`Scenario`,
        with optional ``overrides`` (``["a.b=1"]`` or ``{"a.b": 1}``) and ``seed``: the plant in
        its initial state (steady state solved, initial auto-tuning done), clock at zero."""
        from twin.scenario import load_scenario

        if isinstance(scenario, (str, Path)):
            listed = not isinstance(overrides, dict)
            s, path = load_scenario(scenario, overrides if listed else None, seed if listed else None)
            base = Path(path).parent
            if not listed:
                s = _override(s.to_dict(), overrides, seed, str(scenario))
        else:
            data = scenario.to_dict() if isinstance(scenario, Scenario) else dict(scenario)
            s, base = _override(data, overrides, seed, "scenario"), None
        base = Path(base_dir) if base_dir is not None else base
        return cls(Shared.build(s, base), progress=progress)

    def __init__(self, shared: Shared, snapshot: dict | None = None, progress: bool = False,
                 checkpoint: Any = None, saved: dict | None = None, record: list[str] | None = None,
                 lean: bool = False) -> None:
        """``lean`` (with ``snapshot``): a fork that only simulates and records ``record``, such as
        a candidate plan's: the instruments whose readings it does not record and the optimiser's
        safeguards are not built. Neither acts on the plant (the loops measure through their own
        sensor models, and a candidate is scored open loop), so the plant's trajectory is the
        full fork's; without their wake-ups the compiled controller stretches run from one
        recorded sample to the next. Its snapshots and forks are lean too."""
        self.shared = shared
        self.scenario = shared.scenario
        self.wall_s = 0.0
        self.failed: SolverError | None = None
        self.lean = bool(lean) or bool(snapshot is not None and snapshot.get("lean"))
        self._assemble(snapshot, saved, progress, checkpoint, record)

    def _assemble(self, snapshot, saved, progress, checkpoint, record) -> None:
        from controllers.autotune import adaptive_monitor, identify_and_tune, model_gain_monitor
        from controllers.sampled import sampled_blocks
        from twin.checkpoint import Checkpointer
        from twin.controls import _autotune_at, input_slot, make_instruments, make_loops
        from twin.equipment.assembly import build_equipment
        from twin.fleet.assembly import build_fleet
        from twin.plant import Plant
        from twin.processes import Progress, environment_process, influent_process, recorder_process

        sh, scenario = self.shared, self.shared.scenario
        cp = _copy_compiled(sh.cp)
        env = TwinEnvironment(scenario, seed=scenario.seed)
        plant = Plant(env, cp, scenario.solver)
        fresh = snapshot is None and saved is None
        for name, value in scenario.inputs.items():
            plant.u[input_slot(cp, name, f"inputs.{name}")] = value
        loops = make_loops(env, plant, cp, scenario)
        self.env, self.plant, self.cp, self.loops = env, plant, cp, loops
        if fresh:
            self._initial_state()
        else:
            env.deferred = {}  # build the processes, start them from the saved state
        main_start, total = sh.main_start, sh.total

        start = 0
        for k, ((_, dur, kind), table) in enumerate(zip(sh.phases, sh.tables)):
            env.start(f"influent.{k}", lambda w, tb=table, a=start, b=start + dur:
                      influent_process(env, plant, sh.infl_index, tb, a, b, sh.temp_index, w))
            if fresh:
                env.log("phase", "scenario", f"{kind} phase: influent {table.source} for {dur / TICKS_PER_DAY:g} d",
                        start_s=start)
            start += dur
        eval_start, eval_end = scenario.evaluation_window_s()
        for lp in loops:
            lp.stats.window_s = (main_start + eval_start, main_start + eval_end)
        instruments = make_instruments(env, plant, scenario)
        if self.lean:  # the instruments of the lean twin it is built from, or those it records
            keep = snapshot.get("instruments") if snapshot is not None and snapshot.get("lean") else None
            if keep is None and record is not None:
                keep = [c[len("sensor."):] for c in record if c.startswith("sensor.")]
            if keep is not None:
                instruments = [ins for ins in instruments if ins.name in keep]
        equipment = None
        if scenario.equipment is not None and scenario.equipment.enabled:
            equipment = build_equipment(env, plant, cp, scenario.equipment, sh.base_dir)
            if equipment.air is not None and fresh:
                # the blowers start at the speed that holds the header-pressure setpoint (bumpless)
                hold = [lp for lp in loops if lp.spec.measurement == equipment.air.signal
                        and lp.act == equipment.air.i_speed]
                equipment.initialise_air(hold[0].spec.setpoint if hold else None)
                for lp in hold:
                    lp.ctrl.initialise(lp.output(plant), lp.read())
        if scenario.environment is not None:  # before the machines and loops: weather first at each instant
            env.start("environment", lambda w: environment_process(env, plant, cp, sh.weather, equipment,
                                                                    scenario.environment.water_temperature_c, w))
        # loops, instruments and machines of one sample period step together, in that order
        for period, block in sampled_blocks(env, plant, loops, instruments, equipment).items():
            env.start(f"sampled.{period}s", block.process)
        for lp in loops:
            if lp.spec.autotune.enabled and lp.spec.autotune.at != "initial":
                env.start(f"autotune.{lp.name}", lambda w, lp=lp: _autotune_at(env, lp, plant,
                                                                                lp.spec.autotune.at,
                                                                                identify_and_tune, w))
            if lp.spec.adaptive.enabled and lp.spec.adaptive.method == "model_gain":
                env.start(f"adaptive.{lp.name}", lambda w, lp=lp: model_gain_monitor(
                    env, lp, plant, lp.spec.autotune, lp.spec.adaptive, w))
            elif lp.spec.adaptive.enabled:
                env.process(adaptive_monitor(env, lp, plant, lp.spec.autotune, lp.spec.adaptive))
        agent = None
        if scenario.fleet is not None:
            agent = build_fleet(env, scenario.fleet, sh.base_dir, plant, cp, equipment, main_start,
                                loaded=sh.fleet_file, fresh=fresh)
        self.instruments, self.equipment, self.agent = instruments, equipment, agent
        self._start_schedules()
        self.plan = self.optimiser = None
        if scenario.optimiser is not None and scenario.optimiser.enabled:
            from agents.energy import Optimiser, PlanBook, plan_process

            if equipment is None and scenario.optimiser.objective == "electricity_cost":
                raise ConfigError("optimiser.objective: electricity_cost prices the machines' electricity: the scenario "
                                  "needs its equipment: section (a plant without machines: objective: bsm1_oci)")
            self.plan = PlanBook()
            self.optimiser = Optimiser(scenario.optimiser, scenario.seed)
            # the default control, the reference of every plan (restored from a saved state below)
            self.optimiser.defaults = [self.read(v.target) for v in scenario.optimiser.variables]
            tick = min(v.block for v in scenario.optimiser.variables)
            env.start("plan", lambda w: plan_process(self, self.plan, tick, w))
            from agents.energy import check_fallback, fallback_process

            for k, fb in enumerate([] if self.lean else scenario.optimiser.fallback or []):
                check_fallback(self, k, fb)
                # the first safeguard keeps the name saved states know it by
                env.start("optimiser.fallback" + (f".{k}" if k else ""),
                          lambda w, k=k, fb=fb: fallback_process(self, self.optimiser, k, fb, w))

        rec = env.recorder
        for cols, probe in plant.recorder_probes(scenario.outputs.record_settler_layers):
            rec.add_probe(cols, probe)
        if equipment is not None:
            rec.add_probe(equipment.columns(), equipment.probe)
        for lp in loops:
            rec.add_probe([f"control.{lp.name}.setpoint", f"control.{lp.name}.measurement",
                           f"control.{lp.name}.output"],
                          lambda lp=lp: np.array([lp.ctrl.setpoint, lp.ctrl.last["y"], lp.output(plant)]))
        if instruments:
            rec.add_probe([f"sensor.{ins.name}" for ins in instruments],
                          lambda: np.array([ins.value for ins in instruments]))
        if self.optimiser is not None and snapshot is None:
            self.optimiser.ranges(self)  # the process ranges name recorded signals (checked before the run)
        if record is not None:
            rec.select(record)
        interval = scenario.outputs.sample_interval
        env.start("recorder", lambda w: recorder_process(env, rec, main_start, total, interval, w))
        self.progress = Progress(total, progress)
        if progress:
            env.start("progress", lambda w: self.progress.process(env), stateless=True)
        self.parts: dict[str, Any] = {"plant": plant, **{f"loop.{lp.name}": lp for lp in loops},
                                      **{f"sensor.{ins.name}": ins for ins in instruments}}
        if equipment is not None:
            self.parts["equipment"] = equipment
        if agent is not None:
            self.parts.update(fleet=agent.fleet, agent=agent)
        if self.plan is not None:
            self.parts.update(plan=self.plan, optimiser=self.optimiser)
        self.checkpointer = Checkpointer(checkpoint, scenario, env, self.parts) if checkpoint is not None else None
        if saved is not None:
            self.checkpointer.restore(saved)
            self.progress.start(env.now)
        elif snapshot is not None:
            self._load(snapshot)
        plant.cache_streams = True
        env.settle()

    def _initial_state(self) -> None:
        """Steady state under the initial influent (loops at their setpoints), loops started
        bumplessly, initial-state auto-tuning."""
        from twin.controls import tune_in_initial_state
        from twin.run import initial_state

        sh, scenario, env, plant, cp, loops = self.shared, self.scenario, self.env, self.plant, self.cp, self.loops
        t0 = sh.tables[0].temperature_degC
        if t0 is not None:
            plant.u[sh.temp_index] = float(t0[0])
        initial_state(scenario, sh.base_dir, env, plant, cp, loops, sh.infl_index)
        names = [lp.name for lp in loops if lp.spec.autotune.enabled and lp.spec.autotune.at == "initial"]
        if names:
            outcomes, side_log = tune_in_initial_state(scenario, cp, plant.x, plant.u, names)
            for rec in side_log.records:
                if rec["kind"] in ("retune", "tuning_refused", "tuning_failed", "tuning_kept"):
                    env.log(rec["kind"], rec["source"], rec["message"] + " (initial-state test)", **rec.get("data", {}))
            for lp in loops:
                o = outcomes.get(lp.name)
                if o is not None and o.applied:
                    lp.ctrl.retune(o.tuning.K, o.tuning.Ti, o.tuning.Td, None)
                    lp.ctrl.initialise(lp.output(plant), lp.read())
                    lp.tuning, lp.model = o.tuning, o.model
                    lp.adapt["k_max"] = o.k_max
                    lp.retunes += 1

    def _start_schedules(self) -> None:
        """Scenario events and repeating schedules: changes at given times through :meth:`set`."""
        from twin.schedules import event_process, schedule_process, validate_targets

        sh, scenario, env = self.shared, self.scenario, self.env
        validate_targets(self)
        for i, ev in enumerate(scenario.events):
            if ev.fail and self.agent is None:
                raise ConfigError(f"events[{i}].fail: the scenario has no fleet")
            if not ev.set:
                continue
            env.start(f"event.{i}", lambda w, ev=ev: event_process(self, sh.main_start + ev.at, ev, w))
        for name, sc in scenario.schedules.items():
            env.start(f"schedule.{name}", lambda w, name=name, sc=sc: schedule_process(self, name, sc, w))

    # -- time -----------------------------------------------------------------------------
    @property
    def now(self) -> int:
        """Simulated seconds since the clock started (warm-up included)."""
        return int(self.env.now)

    @property
    def main_start_s(self) -> int:
        return self.shared.main_start

    @property
    def end_s(self) -> int:
        return self.shared.total

    def advance(self, duration: str | int | float) -> Twin:
        """Move the clock on by ``duration`` (a string such as ``"6h"``, or seconds): every event
        before ``now + duration`` is processed, none at it. Returns the twin."""
        dt = parse_duration(duration) if isinstance(duration, str) else int(round(float(duration)))
        if dt < 0:
            raise ValueError("advance: the duration must not be negative")
        return self.advance_to(self.now + dt)

    def advance_to(self, t_s: int) -> Twin:
        from twin.checkpoint import run_clock

        if t_s < self.now:
            raise ValueError(f"advance_to: {t_s} s is before now ({self.now} s)")
        w0 = time.perf_counter()
        if self.failed is None and t_s > self.now:
            try:
                run_clock(self.env, t_s, self.checkpointer)
            except SolverError as exc:
                self.failed = exc
                self.env.log("solver_failure", exc.unit or "plant", str(exc))
        self.wall_s += time.perf_counter() - w0
        return self

    # -- reading --------------------------------------------------------------------------
    def read(self, signal: str) -> float:
        """The value of a signal now: a plant state, input or stream value (``reactor5.SO``,
        ``reactor5.kla_per_d``, ``effluent.SNH``), a loop's ``controllers.NAME.setpoint`` (or
        ``.K``, ``.Ti_d``, ``.Td_d``, ``.output``, ``.measurement``), an instrument's
        ``sensor.NAME``, or a machine setting (``equipment.mixers.ZONE.speed_rpm``). Reading a
        plant signal integrates the plant up to now."""
        from twin.schedules import loop_attribute

        if signal.startswith("controllers."):
            lp, attr = loop_attribute(self, signal)
            if attr == "output":
                return lp.output(self.plant)
            if attr == "measurement":
                return float(lp.last_measurement)
            return float(lp.ctrl.setpoint if attr == "setpoint" else getattr(lp.ctrl.settings, attr))
        if signal.startswith("equipment."):
            from twin.schedules import _mixers, parse_equipment_target

            _, zone, _ = parse_equipment_target(_mixers(self), signal)
            return float(self.equipment.mixer_speed_rpm[zone])
        if signal.startswith("sensor."):
            name = signal.split(".", 1)[1]
            for ins in self.instruments:
                if ins.name == name:
                    return float(ins.value)
            raise ConfigError(f"unknown instrument '{name}'")
        return float(self.plant.signal_reader(signal)())

    def series(self, columns: list[str] | str | None = None, start_s: int | None = None,
               end_s: int | None = None) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Recorded samples in ``[start_s, end_s]`` (clock seconds; default: all): (times, column
        names, values). ``columns``: names or a single name (default: every recorded column)."""
        times, cols, values = self.env.recorder.table()
        if isinstance(columns, str):
            columns = [columns]
        if columns is not None:
            missing = [c for c in columns if c not in cols]
            if missing:
                from twin.units.base import did_you_mean

                raise KeyError(f"not recorded: {missing[0]}{did_you_mean(missing[0], cols)}")
            idx = [cols.index(c) for c in columns]
            values, cols = values[:, idx], list(columns)
        sel = np.ones(times.size, dtype=bool)
        if start_s is not None:
            sel &= times >= start_s
        if end_s is not None:
            sel &= times <= end_s
        return times[sel], cols, values[sel]

    @property
    def events(self) -> list[dict]:
        return self.env.events.records

    # -- changing -------------------------------------------------------------------------
    def set(self, target: str, value: Any, reason: str = "") -> None:
        """Change, at the current time, a loop's setpoint or setting
        (``controllers.NAME.setpoint``, ``.K``, ``.Ti_d``, ``.Td_d``, ``.enabled``) or a plant
        input (``reactor3.kla_per_d``); the change and ``reason`` go to the event log."""
        from twin.schedules import apply

        apply(self, target, value, reason or "set through the Twin API", source="api")

    # -- snapshots and forks --------------------------------------------------------------
    def snapshot(self) -> dict:
        """The twin's whole state now, in memory: the parts' states (a pickled copy, so later
        changes of this twin do not reach it), where every process waits, the event log and the
        recorded samples. :meth:`restore` puts it back; ``Twin(shared, snapshot=...)`` builds a twin from it."""
        env = self.env
        state = {"now": int(env.now), "pending": env.pending(),
                 "parts": _dumps({n: p.checkpoint_state() for n, p in self.parts.items()}),
                 "events": list(env.events.records), "rec_times": list(env.recorder._times),
                 "rec_rows": list(env.recorder._rows), "rec_columns": env.recorder.selected,
                 "failed": self.failed}
        if self.lean:
            state.update(lean=True, instruments=[ins.name for ins in self.instruments])
        return state

    def _load(self, snap: dict) -> None:
        env = self.env
        env.set_clock(snap["now"])
        parts = pickle.loads(snap["parts"])
        for name, obj in self.parts.items():
            obj.restore_state(parts[name])
        env.events.records = list(snap["events"])
        env.recorder.load(snap["rec_times"], snap["rec_rows"], snap["now"], snap.get("rec_columns"))
        self.failed = snap.get("failed")
        # a lean twin does not build the processes of the instruments it left out (a block of
        # them alone) nor the safeguards
        env.restart(snap["now"], snap["pending"],
                    optional=("sampled.", "optimiser.fallback") if self.lean else ())

    def restore(self, snap: dict) -> None:
        """Put this twin back into the state of ``snap`` (taken from it or from a twin of the same
        scenario; a lean snapshot makes it lean)."""
        self.lean = self.lean or bool(snap.get("lean"))
        self._assemble(snap, None, False, None, None)

    def fork(self, record: list[str] | None = None, lean: bool = False) -> Twin:
        """An independent twin in this twin's state: it shares the compiled plant and the
        read-only tables, nothing mutable. ``record``: the columns the fork records from now on
        (a headless fork for an objective that reads only those; default: all, with the
        parent's samples so far). ``lean``: see :class:`Twin`."""
        return Twin(self.shared, snapshot=self.snapshot(), record=record, lean=lean or self.lean)

    # -- the end of a run -----------------------------------------------------------------
    def run_to_end(self) -> Twin:
        """Advance past the end of the main period (its last sample included), stopping at the
        optimiser's decision times for it to plan on forks."""
        if self.optimiser is not None:
            for t in self.optimiser.decision_times(self):
                if t < self.now or self.failed is not None:
                    continue
                self.advance_to(t)
                if self.failed is None:
                    self.optimiser.decide(self)
        self.advance_to(self.end_s + 1)
        if self.failed is None:
            self.plant.sync()
        self.progress.show(self.env.now if self.failed is None else (self.failed.time_s or self.env.now), final=True)
        return self

    def result(self):
        """The run's results (time series from the start of the main period, events, KPIs)."""
        from twin.kpis import build_result

        return build_result(self)


_SEED0 = np.random.SeedSequence(0)


def _generator_from_state(state: dict) -> np.random.Generator:
    """A PCG64 generator in ``state``, built without gathering entropy from the operating system
    (what numpy's own unpickling does first, then throws away): a reference-plant fork restores
    about 380 random streams."""
    bg = np.random.PCG64(_SEED0)
    bg.state = state
    return np.random.Generator(bg)


def _reduce_generator(g: np.random.Generator):
    if type(g.bit_generator) is np.random.PCG64:
        return _generator_from_state, (g.bit_generator.state,)
    return g.__reduce__()


def _dumps(obj) -> bytes:
    """Pickle a snapshot's part states (random generators through :func:`_generator_from_state`)."""
    buf = io.BytesIO()
    p = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    p.dispatch_table = {**copyreg.dispatch_table, np.random.Generator: _reduce_generator}
    p.dump(obj)
    return buf.getvalue()


def _override(data: dict, overrides: list[str] | dict | None, seed: int | None, source: str) -> Scenario:
    """``data`` with ``overrides`` applied (``["KEY=VALUE"]`` parsed as YAML, or ``{KEY: value}``
    taken as they are) and validated."""
    import copy

    from twin.scenario import apply_override, parse_value, validate_scenario

    data = copy.deepcopy(data)
    if isinstance(overrides, dict):
        pairs = list(overrides.items())
    else:
        pairs = []
        for item in overrides or []:
            key, sep, text = item.partition("=")
            if not sep:
                raise ConfigError(f"--set {item}: expected KEY=VALUE")
            pairs.append((key.strip(), parse_value(text)))
    for key, value in pairs:
        apply_override(data, key, value, source)
    if seed is not None:
        data["seed"] = int(seed)
    return validate_scenario(data, source)
