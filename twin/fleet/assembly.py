"""Fleet assembly: the fleet and its maintenance agent, their couplings to the equipment and the
process model, scenario events that fail assets, and fleet studies without the process model.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from twin.checkpoint import Checkpointer, Checkpointing, run_clock
from twin.clock import TwinEnvironment
from twin.durations import TICKS_PER_DAY
from twin.errors import ConfigError
from twin.flowsheet import CompiledPlant
from twin.kpis import RunResult
from twin.plant import Plant
from twin.processes import Progress
from twin.scenario import Scenario


def build_fleet(env, spec, base_dir: Path | None, plant: Plant | None = None, cp: CompiledPlant | None = None,
                equipment=None, main_start_s: int = 0, loaded: tuple | None = None, fresh: bool = True):
    """The fleet, the maintenance agent and (with a process model) their :class:`FleetCoupling`
    to the equipment and the plant: failed pumps take capacity from their station, fouled
    aeration grids lower their zone's oxygen transfer. ``loaded``: the fleet file as already
    loaded, (path, types, assets); ``fresh=False``: the fleet and agent are about to be restored
    from a snapshot (no random streams drawn). The coupling is ``agent.coupling``.

    (Before defects had precursors the couplings used the cumulative initiation hazard
    (a/eta)^beta, a function of the effective age alone: it rose from the first hour of service
    whatever the machine's condition, and carried nothing a sensor could see; they now use the
    damage, see :class:`FleetCoupling`.)"""
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
    coupling = FleetCoupling(fleet, spec, plant, cp, equipment)
    agent = MaintenanceAgent(env, fleet, spec, on_down=coupling.changed, on_up=coupling.changed, models=models,
                             fresh=fresh)
    agent.coupling = coupling
    if spec.planned_start == "cheapest":
        agent.outage_weight = _outage_weight(env, agent, spec, base_dir, plant, cp, equipment, main_start_s)
    #: assets whose outage changes the process (for the outage consequences in the KPIs)
    agent.process_assets = coupling.process_assets
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
    coupling.start(env, step)
    return agent


def _outage_weight(env, agent, spec, base_dir: Path | None, plant: Plant | None, cp: CompiledPlant | None,
                   equipment, main_start_s: int):
    """For ``planned_start: cheapest``: the forecast weight of an outage hour starting at a clock
    time, the tariff's price then times the plant's inflow forecast by persistence: the inflow
    the agent logged (hourly, ``agent.inflow_h``, saved with it) at the same hour whole days
    earlier, never after now; before a day is logged, the latest logged inflow. A proxy for what
    an hour without the machine costs: energy is dearer, and a missing machine matters more at
    high load. Starts the hourly inflow log. ConfigError without the process model or a tariff."""
    from twin.equipment.assembly import build_tariff
    from twin.kpis import influent_stream

    if cp is None or plant is None or equipment is None or not spec.process_model:
        raise ConfigError("fleet.planned_start: 'cheapest' needs the process model and the scenario's equipment "
                          "(its tariff prices the hours)")
    tariff = build_tariff(equipment.spec.tariff, base_dir)
    influent = influent_stream(cp)
    if influent is None:
        raise ConfigError("fleet.planned_start: 'cheapest' needs a plant with an influent (its inflow weighs the hours)")
    read_q = plant.signal_reader(f"{influent}.Q")

    def log(wake_at=None):
        if wake_at is not None:
            yield env.timeout(wake_at - env.now)
        while True:
            h = int(env.now // 3600)
            agent.inflow_h[h] = float(read_q())
            for old in [k for k in agent.inflow_h if k < h - 48]:
                del agent.inflow_h[old]
            yield env.timeout(3600 - env.now % 3600)

    env.start("fleet.inflow_log", log)

    def weight(t_s: int) -> float:
        price = float(tariff.price_at(np.array([(t_s - main_start_s) / 86400.0]))[0])
        logged = agent.inflow_h
        if not logged:
            return price
        now_h = int(env.now // 3600)
        h = int(t_s // 3600)
        days = max(1, math.ceil((h - now_h) / 24))
        q = logged.get(h - 24 * days)
        if q is None:
            q = logged[max(logged)]
        return price * q

    return weight


class FleetCoupling:
    """How the fleet acts on the process: which assets belong to which pump station, zone's
    aeration grid, blower station, zone's air valves, heat exchanger and zone's mixers, and how
    their state (in service, damage) reaches the equipment layer and the plant.

    Failed machines leave their station; worn ones lower its condition. Wear reaches the
    process through the damage d of the fleet's failure model (0 until a defect initiates,
    from ``initial_damage`` at point P to 1 at failure; see :mod:`twin.fleet.model`): a
    condition or transfer factor exp(-c d), with c the scenario's ``wear_condition_loss`` or
    ``fouling_transfer_loss`` (the factor at the failure size). It is the damage the sensors
    show, so a degraded machine costs energy or oxygen transfer exactly while its channels say
    so, and a renewal restores it. In the other direction, running machines age with their
    duty (:meth:`apply_duty`).

    The coupling holds no state of its own: the mapping is fixed by the fleet file and the
    plant, and everything it writes lives in the equipment layer and the plant, which are saved
    with a snapshot or checkpoint; a fork or a resumed run declares it again from its own parts.
    """

    def __init__(self, fleet, spec, plant: Plant | None = None, cp: CompiledPlant | None = None, equipment=None):
        self.fleet, self.spec, self.plant, self.cp, self.equipment = fleet, spec, plant, cp, equipment
        self.types, self.assets = fleet.types, fleet.assets
        #: pump station -> its pumps; reactor -> its aeration grids; zone -> its air valves, mixers
        self.stations: dict[str, list[int]] = {}
        self.grids: dict[str, list[int]] = {}
        self.blowers: list[int] = []
        self.valves: dict[str, list[int]] = {}
        self.exchangers: list[int] = []
        self.mixers: dict[str, list[int]] = {}
        for i, a in enumerate(self.assets):
            kind, _, target = a.function.partition(":")
            if kind == "pump" and equipment is not None and target in equipment.spec.pumps:
                self.stations.setdefault(target, []).append(i)
            elif kind == "aeration_grid" and cp is not None and f"{target}.oxygen_transfer_factor" in cp.input_index:
                self.grids.setdefault(target, []).append(i)
            elif kind == "blower" and equipment is not None and equipment.spec.blowers is not None:
                self.blowers.append(i)
            elif kind == "air_valve" and equipment is not None and equipment.air is not None \
                    and target in equipment.valve_capacity:
                self.valves.setdefault(target, []).append(i)
            elif kind == "heat_exchanger" and equipment is not None and equipment.spec.heating.exchanger is not None:
                self.exchangers.append(i)
            elif kind == "mixer" and equipment is not None and target in equipment.spec.mixers:
                self.mixers.setdefault(target, []).append(i)
        #: assets that act on the equipment layer
        self.machine_assets = {i for idx in [*self.stations.values(), self.blowers, *self.valves.values(),
                                             self.exchangers, *self.mixers.values()] for i in idx}
        #: assets whose outage changes the process (for the outage consequences in the KPIs)
        self.process_assets = sorted(self.machine_assets | {i for idx in self.grids.values() for i in idx})
        #: zones whose grids age with their airflow (a valve design flow to compare it with)
        self.duty_grids = {z: idx for z, idx in self.grids.items()
                           if equipment is not None and z in equipment.spec.zones
                           and equipment.spec.zones[z].valve_design_flow_nm3_d is not None}
        self._mode_rows: dict[tuple[int, str], list[int]] = {}
        for r, i in enumerate(fleet.s.row_asset):
            self._mode_rows.setdefault((int(i), fleet.s.row_mode[r][1]), []).append(r)
        self._grid_rows = {i: self._fouling_rows(i) for idx in self.grids.values() for i in idx} \
            if plant is not None else {}

    def _fouling_rows(self, i: int) -> np.ndarray:
        kinds = {m.name: m.kind for m in self.types[self.assets[i].type].modes}
        return np.array([r for r in self.fleet.rows_of(i) if kinds[self.fleet.s.row_mode[r][1]] == "fouling"],
                        dtype=np.int64)

    def damage(self, i: int, mode: str) -> float:
        """Damage d of asset i's mode ``mode`` (hidden state, for the process only; 0 if it has none)."""
        return float(sum(self.fleet.s.damage[r] for r in self._mode_rows.get((i, mode), ())))

    def wear(self, i: int, mode: str) -> float:
        """Condition factor exp(-c d) of asset i from the damage of its mode ``mode``."""
        return math.exp(-self.spec.wear_condition_loss * self.damage(i, mode))

    def apply(self) -> None:
        """The fleet's current state onto the equipment layer and the plant."""
        self.apply_machines()
        if self.grids and self.plant is not None:
            self.apply_grids()

    def apply_machines(self) -> None:
        """Failed machines leave their station; worn ones lower its condition: a pump station's
        impeller condition and the blowers' efficiency are the means over the machines in
        service; a zone's air valves pass the share of its drop legs in service."""
        equipment, spec, up = self.equipment, self.spec, self.fleet.s.asset_up
        for name, idx in self.stations.items():
            on = [i for i in idx if up[i]]
            equipment.pumps_out_of_service[name] = max(0, equipment.spec.pumps[name].n_parallel - len(on))
            if on:
                equipment.pump_condition[name] = equipment.spec.pumps[name].condition * float(
                    np.mean([self.wear(i, spec.impeller_mode) for i in on]))
        if self.blowers:
            on = [i for i in self.blowers if up[i]]
            equipment.blowers_out_of_service = max(0, equipment.station.n_installed - len(on))
            equipment.blower_condition = (float(np.mean([self.wear(i, spec.blower_efficiency_mode) for i in on]))
                                          if on else 1.0)
        for zone, idx in self.valves.items():
            equipment.valve_capacity[zone] = float(np.mean(up[idx]))
        if self.exchangers:  # parallel exchangers: the UA in service, each lowered by its fouling
            fouling = [m.name for m in self.types[self.assets[self.exchangers[0]].type].modes if m.kind == "fouling"]
            equipment.exchanger_condition = float(np.mean(
                [math.exp(-spec.fouling_transfer_loss * sum(self.damage(i, m) for m in fouling)) if up[i] else 0.0
                 for i in self.exchangers]))
        for zone, idx in self.mixers.items():
            equipment.mixers_out_of_service[zone] = int(np.sum(~up[idx]))

    def apply_grids(self) -> None:
        """Each zone's oxygen transfer is the mean over its grids of exp(-c d_fouling) (d: the
        fouling modes' damage); a grid out of service transfers nothing."""
        d, up, equipment = self.fleet.s.damage, self.fleet.s.asset_up, self.equipment
        for reactor, idx in self.grids.items():
            f = [math.exp(-self.spec.fouling_transfer_loss * float(np.sum(d[self._grid_rows[i]])))
                 if up[i] else 0.0 for i in idx]
            if equipment is not None and equipment.air is not None:
                equipment.zone_fouling[reactor] = float(np.mean(f))  # applied with the air supply
            else:
                self.plant.set_input(self.cp.input_index[f"{reactor}.oxygen_transfer_factor"], float(np.mean(f)))

    def apply_duty(self) -> None:
        """Machines age with their duty (load 1 = design point): running pumps at their speed
        ratio and blowers at their flow over the design flow (the first available in identity
        order run; standby machines do not age); a zone's diffuser grids at its airflow over the
        valve design flow."""
        equipment, fleet = self.equipment, self.fleet
        up_all = fleet.s.asset_up
        for name, idx in self.stations.items():
            running = int(equipment.pump_state[name]["running"])
            r = float(equipment.pump_state[name]["speed_ratio"])
            up = [i for i in idx if up_all[i]]
            for k, i in enumerate(up):
                fleet.s.asset_load[i] = r if k < running else 0.0
        if self.blowers:
            running = int(equipment.state["blowers_running"])
            each = equipment.state["airflow_nm3_d"] / running if running else 0.0
            up = [i for i in self.blowers if up_all[i]]
            for k, i in enumerate(up):
                fleet.s.asset_load[i] = each / equipment.station.blower.design_flow_nm3_d if k < running else 0.0
        if self.duty_grids:
            demands = dict(zip((z for z, *_ in equipment.zones), equipment.zone_airflow_demands()))
            for zone, idx in self.duty_grids.items():
                q = equipment.state.get(f"{zone}.airflow_nm3_d", demands[zone])
                fleet.s.asset_load[idx] = q / equipment.spec.zones[zone].valve_design_flow_nm3_d

    def changed(self, i: int, *_) -> None:
        """An asset went down or came back (the maintenance agent's callback)."""
        if self.plant is not None:
            self.plant.sync()
        if i in self.machine_assets:
            self.apply_machines()
            self.equipment.update()

    def start(self, env, step: int) -> None:
        """The coupling's processes, every fleet step: duty into the fleet, wear into the
        machines, fouling into the zones' oxygen transfer. Their position derives from the
        clock, so a resumed run restarts them at ``wake_at``."""
        def every_step(apply):
            """A process applying ``apply`` now and every step (restarted at ``wake_at``)."""
            def process(wake_at=None):
                if wake_at is not None:
                    yield env.timeout(wake_at - env.now)
                while True:
                    apply()
                    yield env.timeout(step)
            return process

        if self.stations or self.blowers or self.duty_grids:
            env.start("fleet.station_load", every_step(self.apply_duty))
        if self.machine_assets:
            def machines(wake_at=None):
                first = step if wake_at is None else wake_at - env.now
                while True:
                    yield env.timeout(first)
                    first = step
                    self.apply_machines()
            env.start("fleet.machines", machines)
        if self.grids and self.plant is not None:
            env.start("fleet.grids", every_step(self.apply_grids))


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
