"""The energy optimiser: a genetic algorithm (DEAP) that plans the next horizon's setpoint
schedule on forks of the running twin.

At each decision time (``optimiser.every`` from ``optimiser.first_at``, counted from the start
of the main period) the optimiser

1. takes the twin's state and a forecast of the horizon (``perfect``: the twin's own future
   influent and weather, the only mode that reads it; ``persistence``: the same hours of the
   last day or week, see :func:`twin.evaluate.persistence`);
2. searches a schedule: one value per decision variable (a loop setpoint) per block of the
   horizon, within the variable's bounds. The default search is the plant specification's GA:
   population 80, 40 generations, tournament selection, uniform crossover, Gaussian mutation,
   the 10 best kept (every parameter a scenario setting). Candidates are scored on headless
   forks through :class:`twin.evaluate.Evaluator` (serial or a process pool), cached by
   candidate, and the first population is seeded with the current setpoints, the default
   values and the previous plan shifted by the time elapsed (warm start);
3. scores a schedule feasibility first (DEAP compares fitness tuples lexicographically): the
   hours above each effluent limit beyond those of the scenario's default control on the same
   forecast, then the EQI beyond ``eqi_tolerance`` above the default control's, then electricity
   cost under the scenario's tariff, plus the fuel of a fuel-fired heater at its price (a tank
   temperature setpoint changes it), plus the weighted effluent terms. Process ranges of
   recorded signals (``optimiser.ranges``, e.g. a digester's temperature; a mixer's minimum
   power per volume when its speed is a variable) are hard: every hour outside counts as
   excess, whatever the default control does. The reference is the default control as it
   would have run (:meth:`Optimiser.reference_twin`: a twin that runs the scenario without the
   optimiser beside the plant, on the plant's past influent; its variables at their values when
   the twin was built), forked onto the same forecast; never the optimiser's own current
   settings, nor the state its plans left: a reference that followed either lets each day's
   plan give up a little more effluent quality than the one before (measured on BSM1 over a
   week: time above the ammonia limit 17 % -> 84 % against the current settings, 17 % -> 45 %
   against the default settings from the plan-made state);
4. applies the best schedule through a plan that sets each block's values at its start (the
   ``plan`` part of the twin, saved with it), and logs the decision (``optimiser_plan``: the
   schedule, the predicted figures, per-generation statistics, ``wall_s``); at the next decision
   it logs the realised figures of the same window beside the predicted ones
   (``optimiser_realised``).
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from deap import base, tools

#: decimals kept in a planned value: a candidate is evaluated and applied with exactly these
#: digits, and equal candidates share one evaluation (the cache key)
RESOLUTION = 6


class PlanFitness(base.Fitness):
    """(excess hours above the limits, excess EQI, cost): all minimised, compared in that order."""

    weights = (-1.0, -1.0, -1.0)


class ParetoFitness(base.Fitness):
    """(electricity cost, EQI, CO2): all minimised, for NSGA-II."""

    weights = (-1.0, -1.0, -1.0)


class Schedule(list):
    """One candidate: variable-major values, ``n_blocks`` per variable."""

    def __init__(self, values=()):
        super().__init__(values)
        self.fitness = PlanFitness()


@dataclass
class PlanObjective:
    """Figures of a fork's window: electricity (kWh, cost under the tariff), hours above each
    effluent limit, flow-weighted effluent means; and the score (hours above each limit beyond
    the reference's, EQI beyond the reference's allowance, cost + weighted effluent terms).
    Picklable, pure (reads the recorded window only)."""

    tariff: Any  # analysis.energy.Tariff (None: no electricity metered, cost 0)
    main_start_s: int
    limits: dict[str, float]
    weights: dict[str, float]
    base_hours: dict[str, float] = field(default_factory=dict)  # hours above each limit allowed (by figure name)
    eqi_cap_kg_d: float = math.inf  # the EQI allowed
    electric_columns: tuple[str, ...] = ()
    effluent_stream: str = "effluent"
    asm: tuple[float, float, float] = (0.08, 0.08, 0.06)  # f_P, i_XB, i_XP of the plant
    co2_kg_per_kwh: float = 0.0
    #: process ranges of recorded signals (column -> (low, high), None: open): hard constraints,
    #: every hour outside counts as excess (the allowance of ``base_hours`` is for limits only)
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    #: a fuel-fired heater's draw (kW column), priced and counted apart from the electricity
    heat_column: str | None = None
    fuel_price_per_kwh: float = 0.0
    fuel_co2_kg_per_kwh: float = 0.0
    #: the plan's own window (s from the window's start) when the window runs on past it (the
    #: lookahead): its figures are returned too, as ``plan_window``; 0: the whole window
    plan_s: int = 0
    #: constraint tightening against forecast error: feasibility counts the hours above each
    #: limit times (1 - margin), for the plan and the default control alike
    margin: float = 0.0
    #: recorded columns whose samples over the plan's window are returned too, as ``trace``
    #: ({"times_s": [...], column: [...]}): what ``above_plan`` safeguards compare readings with
    traces: tuple[str, ...] = ()

    COMPONENTS = ("SI", "SS", "XI", "XS", "XBH", "XBA", "XP", "SO", "SNO", "SNH", "SND", "XND")
    #: the figure the search minimises (after feasibility) and how the log names it
    cost_key = "energy_cost"
    cost_label = "energy cost"

    @property
    def columns(self) -> list[str]:
        eff = [f"{self.effluent_stream}.{c}_g_m3" for c in self.COMPONENTS] + [f"{self.effluent_stream}.Q_m3_d"]
        heat = [self.heat_column] if self.heat_column else []
        return list(dict.fromkeys(list(self.electric_columns) + heat + eff + list(self.ranges) + list(self.traces)))

    def figures_of(self, t: np.ndarray, cols: list[str], v: np.ndarray) -> dict[str, float]:
        """The figures of recorded samples (times, columns, values) of the window."""
        from analysis.bsm1 import effluent_quantities

        if t.size < 2:
            raise ValueError("the window holds fewer than two samples")
        index = {c: i for i, c in enumerate(cols)}
        dt_h = np.diff(t) / 3600.0
        rows = slice(1, None)  # power columns: the mean over the interval ending at the row
        t_mid_d = (0.5 * (t[:-1] + t[1:]) - self.main_start_s) / 86400.0
        price = self.tariff.price_at(t_mid_d) if self.tariff is not None else np.zeros(t.size - 1)
        kw = np.zeros(t.size - 1)
        for c in self.electric_columns:
            kw += v[rows, index[c]]
        kwh = float(np.sum(kw * dt_h))
        cost = float(np.sum(kw * dt_h * price))
        heat_kwh = float(np.sum(v[rows, index[self.heat_column]] * dt_h)) if self.heat_column else 0.0
        eff = effluent_quantities(lambda n: v[:-1, index[n]], self.effluent_stream, *self.asm)
        q = eff["Q"] * dt_h
        out = {"electricity_kWh": kwh, "electricity_cost": cost, "heat_kWh": heat_kwh,
               "heat_cost": heat_kwh * self.fuel_price_per_kwh}
        out["energy_cost"] = cost + out["heat_cost"]
        viol = 0.0
        for name, limit in self.limits.items():
            h = float(np.sum(dt_h[eff[name] > limit]))
            out[f"hours_above_{name}"] = h
            viol += h
            if self.margin > 0:
                out[f"hours_above_{name}_tightened"] = float(np.sum(dt_h[eff[name] > limit * (1.0 - self.margin)]))
            out[f"mean_{name}_g_m3"] = float(np.sum(eff[name] * q) / np.sum(q))
        for col, (low, high) in self.ranges.items():
            x = v[:-1, index[col]]
            outside = np.zeros(x.size, dtype=bool)
            if low is not None:
                outside |= x < low
            if high is not None:
                outside |= x > high
            h = float(np.sum(dt_h[outside]))
            out[f"hours_outside_{col}"] = h
            viol += h
        for name in ("SNH", "SNO", "Ntot"):
            out.setdefault(f"mean_{name}_g_m3", float(np.sum(eff[name] * q) / np.sum(q)))
        out["violation_h"] = viol
        from analysis.bsm1 import EQI_WEIGHTS

        days = float(np.sum(dt_h)) / 24.0
        out["EQI_kg_d"] = float(sum(w * np.sum(eff[k] * eff["Q"] * dt_h / 24.0) for k, w in EQI_WEIGHTS.items())
                                / (days * 1000.0))
        out["co2_kg"] = kwh * self.co2_kg_per_kwh + heat_kwh * self.fuel_co2_kg_per_kwh
        return out

    def limit_keys(self) -> list[str]:
        """The figures feasibility counts per effluent limit: hours above it, or above it times
        (1 - margin) with a margin."""
        tight = "_tightened" if self.margin > 0 else ""
        return [f"hours_above_{k}{tight}" for k in self.limits]

    def score(self, fig: dict[str, float]) -> tuple[float, float, float]:
        """(hours above the limits beyond the reference, summed over the limits; EQI above the
        cap, kg PU/d; cost + weighted effluent terms). Excess is counted per limit: fewer hours
        above one limit do not buy more hours above another."""
        keys = self.limit_keys() + [f"hours_outside_{c}" for c in self.ranges]
        excess = sum(max(0.0, fig[k] - self.base_hours.get(k, 0.0)) for k in keys)
        eqi = max(0.0, fig["EQI_kg_d"] - self.eqi_cap_kg_d)
        penalty = sum(w * fig[f"mean_{k}_g_m3"] for k, w in self.weights.items())
        return (round(excess, 9), round(eqi, 9), fig[self.cost_key] + penalty)

    def __call__(self, fork, start_s: int, end_s: int) -> dict[str, float]:
        """Figures of the samples in ``[start_s, end_s)``: at a decision time the running twin
        has not yet recorded the sample at ``end_s``, and predicted and realised figures must
        cover the same samples. With ``plan_s`` inside the window, the figures of
        ``[start_s, start_s + plan_s)`` too, as ``plan_window`` (what the realised figures of the
        plan's window are compared with)."""
        t, cols, v = fork.series(self.columns, start_s, end_s)  # read once, sliced below
        whole = t <= end_s - 1
        out = self.figures_of(t[whole], cols, v[whole])
        plan_end = end_s
        if 0 < self.plan_s < end_s - start_s:
            plan_end = start_s + self.plan_s
            part = t <= plan_end - 1
            out["plan_window"] = self.figures_of(t[part], cols, v[part])
        if self.traces:
            part = t <= plan_end
            out["trace"] = {"times_s": [int(x) for x in t[part]],
                            **{c: [float(x) for x in v[part, cols.index(c)]] for c in self.traces}}
        return out


@dataclass
class Bsm1Objective(PlanObjective):
    """For a plant without machines (BSM1): the horizon's BSM1 operational cost index
    (Copp 2002; Alex et al. 2008: OCI = AE + PE + 5 SP + 3 EC + ME, AE and PE from the KLa
    and the pumped flows, SP from the wasted solids and the change of the solids inventory;
    :func:`analysis.bsm1.evaluate`) in place of the electricity cost, with the same effluent
    figures and limits. SP over one day includes the day's change of inventory: a schedule
    that stores sludge in the tanks pays for it when it is wasted later, in a later window."""

    meta: dict = None  # twin.run.plant_metadata

    cost_key = "OCI"
    cost_label = "BSM1 operational cost index"

    @property
    def columns(self) -> list[str]:
        m = self.meta
        cols = [r["kla_column"] for r in m["reactors"].values()]
        cols += [f"{s}.Q_m3_d" for s in m["pumped_flows"]]
        cols += [f"{m['waste_stream']}.TSS_g_m3", f"{m['waste_stream']}.Q_m3_d", "plant.solids_inventory_kg"]
        return list(dict.fromkeys(super().columns + cols))

    def figures_of(self, t: np.ndarray, cols: list[str], v: np.ndarray) -> dict[str, float]:
        from analysis.bsm1 import evaluate

        out = super().figures_of(t, cols, v)
        rel = t - self.main_start_s
        k = evaluate(rel, cols, v, self.meta, int(rel[0]), int(rel[-1]), 0)
        out.update({"AE_kWh_d": k["AE"], "PE_kWh_d": k["PE"], "ME_kWh_d": k["ME"], "SP_kg_d": k["SP"],
                    "OCI": k["OCI"], "EQI_bsm1": k["EQI"]})
        return out


def _flat(fig: dict) -> dict:
    """Figures without the nested ``plan_window`` and ``trace``."""
    return {k: v for k, v in fig.items() if k not in ("plan_window", "trace")}


class PlanBook:
    """The schedule being applied: (time, target, value) changes not yet made. A twin part
    (saved in snapshots and checkpoints); the ``plan`` process applies due changes."""

    def __init__(self) -> None:
        self.changes: list[tuple[int, str, float]] = []

    def replace_from(self, t_s: int, changes: list[tuple[int, str, float]]) -> None:
        self.changes = [c for c in self.changes if c[0] < t_s] + sorted(changes)

    def due(self, now: int) -> list[tuple[int, str, float]]:
        out = [c for c in self.changes if c[0] <= now]
        self.changes = [c for c in self.changes if c[0] > now]
        return out

    def checkpoint_state(self) -> dict:
        return {"changes": list(self.changes)}

    def restore_state(self, state: dict) -> None:
        self.changes = list(state["changes"])


def _first_wait(tw, every_s: int, wake_at: int | None):
    """The wait before a periodic process's first step: to ``wake_at`` (a resumed or forked
    twin) or to the next multiple of ``every_s`` from the main period's start."""
    env = tw.env
    if wake_at is not None:
        return env.timeout(wake_at - env.now)
    k = max(0, -(-(env.now - tw.main_start_s) // every_s))
    return env.timeout(tw.main_start_s + k * every_s - env.now)


def plan_process(tw, book: PlanBook, tick_s: int, wake_at: int | None = None):
    """Every ``tick_s`` (aligned to the main period's start): apply the plan's due changes."""
    from twin.schedules import apply

    env = tw.env
    yield _first_wait(tw, tick_s, wake_at)
    while True:
        for _t, target, value in book.due(env.now):
            apply(tw, target, value, "optimiser plan", source="optimiser")
        yield env.timeout(tick_s)


def check_fallback(tw, k: int, spec) -> None:
    """ConfigError (``optimiser.fallback[k]``) when the safeguard's signal cannot be read, or when
    ``above_forecast`` names a signal the forecast does not give (only the influent's flow)."""
    from twin.errors import ConfigError
    from twin.kpis import influent_stream

    where = "optimiser.fallback" + (f"[{k}]" if len(tw.scenario.optimiser.fallback) > 1 else "")
    try:
        tw.read(spec.signal)
    except (ConfigError, KeyError, ValueError) as exc:
        raise ConfigError(f"{where}.signal: {exc}") from None
    flow = f"{influent_stream(tw.cp)}.Q"
    if spec.above_forecast is not None and spec.signal != flow:
        raise ConfigError(f"{where}.signal: above_forecast compares a reading with the plan's forecast, which "
                          f"forecasts the influent: the signal must be its flow, {flow}")
    if spec.above_plan is not None and plan_column(tw.scenario, tw.cp, spec.signal) is None:
        raise ConfigError(f"{where}.signal: above_plan compares a reading with the plan's prediction of a stream "
                          f"concentration: the signal must be one (effluent.SNH) or an instrument measuring one "
                          f"(sensor.effluent_ammonia), not {spec.signal}")


def plan_column(scenario, cp, signal: str) -> str | None:
    """The recorded column of the concentration ``signal`` measures (an instrument ``sensor.X``:
    the stream value it reads), None when it is not a stream concentration."""
    from twin.units.asm1 import IDX

    if signal.startswith("sensor.") and signal[len("sensor."):] in scenario.sensors:
        signal = scenario.sensors[signal[len("sensor."):]].signal
    stream, _, comp = signal.rpartition(".")
    if stream in cp.stream_index and comp in IDX and comp != "SALK":
        return f"{stream}.{comp}_g_m3"
    return None


def fallback_process(tw, opt, k: int, spec, wake_at: int | None = None):
    """The plan's safeguard ``optimiser.fallback[k]``: every ``spec.every`` (aligned to the main
    period's start) while a plan is applied, read ``spec.signal``; above the threshold (``above``,
    or ``above_forecast`` times the plan's forecast of the influent flow at this time), drop the
    rest of the plan and set the variables to the default control's values until the next
    decision (an ``optimiser_fallback`` event). The readings must stay above for ``spec.hold``
    (consecutive readings) first. An ``above`` safeguard arms at its first reading at or below
    the threshold after the plan began: a plan made while the signal already read above was made
    from that state (its candidates started there and were held to the limits with it), so only
    a rise during the plan drops it. An ``above_forecast`` one is armed from the start: a flow
    already above the forecast means the forecast the plan was made for is already wrong. An
    ``above_plan`` one (armed from the start) compares the reading with the plan's own
    simulation of the measured concentration at this time (the chosen candidate's recorded
    samples, interpolated) plus its margin: the plan is dropped when the plant is not doing
    what it was planned on, not when it does what was planned (a plan may run the ammonia up to
    the limit in the dear hours on purpose)."""
    from twin.schedules import apply

    env, every = tw.env, int(spec.every)
    yield _first_wait(tw, every, wake_at)
    while True:
        if opt.plan_active:
            value = tw.read(spec.signal)
            if spec.above is not None:
                threshold = spec.above
            elif spec.above_plan is not None:
                times, predicted = opt.predicted[k]
                threshold = spec.above_plan + float(np.interp(env.now, times, predicted))
            else:
                times, flows = opt.forecast_flow
                threshold = spec.above_forecast * float(np.interp(env.now, times, flows))
            since = opt.above_since
            if not math.isfinite(value):
                pass  # no reading (an analyser not yet reading, a dropout): nothing learnt
            elif value <= threshold:
                since[k] = None
                opt.armed[k] = True
            elif opt.armed[k] and since[k] is None:
                since[k] = env.now
            if since[k] is not None and env.now - since[k] >= int(spec.hold):
                opt.plan_active = False
                since[:] = [None] * len(since)
                tw.plan.changes = []
                if spec.above is not None:
                    what = f"{spec.above:g}"
                elif spec.above_plan is not None:
                    what = f"the plan's prediction + {spec.above_plan:g} ({threshold:.4g})"
                else:
                    what = f"{spec.above_forecast:g} x the forecast ({threshold:.4g})"
                env.log("optimiser_fallback", "optimiser",
                        f"{spec.signal} {value:.4g} above {what}: the plan is dropped for the default control "
                        "until the next decision", signal=spec.signal, value=value, above=threshold,
                        hold_s=int(spec.hold), safeguard=k)
                for (target, *_), default in zip(opt.blocks(), opt.defaults):
                    apply(tw, target, default, "optimiser fallback", source="optimiser")
        yield env.timeout(every)


@dataclass
class Optimiser:
    """The optimiser's settings (from the scenario) and its memory between decisions."""

    spec: Any
    seed: int
    #: the decision variables' values under the scenario's default control (read when the twin
    #: is built): the reference every plan is held to
    defaults: list[float] | None = None
    last_plan: dict | None = None
    #: the reference twin's saved state (see :meth:`reference_twin`) and the twin itself, built
    #: from it when a decision needs it (forks that never decide never build it)
    shadow_snapshot: dict | None = None
    _shadow: Any = field(default=None, repr=False)
    #: a plan is applied and its fallback (``spec.fallback``) armed; cleared when it falls back
    plan_active: bool = False
    #: per safeguard, since when its signal has read above its threshold (None: it does not)
    above_since: list[int | None] = field(default_factory=list)
    #: the applied plan's forecast of the influent flow: (times s, m3/d) over its horizon
    forecast_flow: tuple[list[int], list[float]] | None = None

    #: per safeguard, whether it is armed (see :func:`fallback_process`)
    armed: list[bool] = field(default_factory=list)
    #: per safeguard, the applied plan's simulated samples of what an ``above_plan`` safeguard
    #: measures: (times s, values) over the plan's horizon (None for the others)
    predicted: list[tuple[list[int], list[float]] | None] = field(default_factory=list)

    def __post_init__(self):
        self.predicted = [None] * len(self.spec.fallback or [])
        self._arm()

    def _arm(self) -> None:
        """A new plan's safeguards: none above yet; ``above_forecast`` and ``above_plan`` ones
        armed, ``above`` ones armed at their first reading at or below the level."""
        fallbacks = self.spec.fallback or []
        self.above_since = [None] * len(fallbacks)
        self.armed = [f.above is None for f in fallbacks]

    def decision_times(self, tw) -> list[int]:
        s = self.spec
        every, first = int(s.every), int(s.first_at)
        horizon = int(s.horizon)
        out, t = [], tw.main_start_s + first
        while t + horizon <= tw.end_s:
            out.append(t)
            t += every
        return out

    def checkpoint_state(self) -> dict:
        shadow = self._shadow.snapshot() if self._shadow is not None else self.shadow_snapshot
        return {"last_plan": self.last_plan, "defaults": self.defaults, "shadow": shadow,
                "plan_active": self.plan_active, "above_since": self.above_since,
                "forecast_flow": self.forecast_flow, "armed": self.armed, "predicted": self.predicted}

    def restore_state(self, state: dict) -> None:
        self.last_plan = state["last_plan"]
        self.defaults = state.get("defaults", self.defaults)
        self.shadow_snapshot, self._shadow = state.get("shadow"), None
        self.plan_active = state.get("plan_active", False)
        since = state.get("above_since")
        n = len(self.spec.fallback or [])
        # a state saved with a single safeguard holds one time (or None)
        since = since if isinstance(since, list) else [since]
        self.above_since = (list(since) + [None] * n)[:n]
        # a state saved before safeguards were armed: every safeguard counted from the start
        self.armed = (list(state.get("armed", [True] * n)) + [False] * n)[:n]
        flow = state.get("forecast_flow")
        self.forecast_flow = (list(flow[0]), list(flow[1])) if flow is not None else None
        self.predicted = (list(state.get("predicted") or []) + [None] * n)[:n]

    def reference_twin(self, tw, columns: list[str]):
        """The default control as it would have run: a twin that has run the scenario without
        the optimiser since the first decision (a fork of the running twin taken before the first
        plan, recording only ``columns``), advanced to now on the influent and weather the plant
        has lived (its records: the past, never the future). Each decision forks it onto the same
        forecast as the candidates. Held to this, a plan cannot lean on the state earlier plans
        left behind: a reference forked from the running twin would start from that state, and
        each day's plan could give up a little more than the day before."""
        from twin.twin import Twin

        if self._shadow is None:
            if self.shadow_snapshot is None:
                self.shadow_snapshot = tw.snapshot()
            self._shadow = Twin(tw.shared, snapshot=self.shadow_snapshot, record=columns, lean=True)
            self._shadow.plan.changes = []  # it runs the default control: no plan
        self._shadow.advance_to(tw.now)
        if self.last_plan is not None:  # only the last plan's window is read again (realised figures)
            self._shadow.env.recorder.drop_before(self.last_plan["start_s"])
        return self._shadow


    # -- one decision ---------------------------------------------------------------------
    def ranges(self, tw) -> dict[str, tuple[float | None, float | None]]:
        """The process ranges the plans must keep: the scenario's ``optimiser.ranges`` and, for
        every mixer speed that is a decision variable, the mixers' power per volume at or above
        the zone's ``min_power_w_m3`` (the twin does not model settling: a constraint, not a
        saving). ConfigError when a range names an unrecorded signal or a mixer has no minimum."""
        from twin.errors import ConfigError
        from twin.units.base import did_you_mean

        out = {c: (r[0], r[1]) for c, r in self.spec.ranges.items()}
        cols = tw.env.recorder.columns
        for c in out:
            if c not in cols:
                raise ConfigError(f"optimiser.ranges.{c}: not a recorded signal{did_you_mean(c, cols)}")
        for k, v in enumerate(self.spec.variables):
            if v.target.startswith("equipment.mixers."):
                zone = v.target.split(".")[2]
                m = tw.equipment.spec.mixers[zone]
                if m.min_power_w_m3 is None:
                    raise ConfigError(f"optimiser.variables[{k}].target: {v.target} needs "
                                      f"equipment.mixers.{zone}.min_power_w_m3 (the power per volume that keeps the "
                                      "solids suspended: the twin does not model settling, so it is a constraint)")
                out[f"mixing.{zone}.power_W_m3"] = (m.min_power_w_m3, None)
        return out

    def objective(self, tw) -> PlanObjective:
        from twin.run import build_tariff, plant_metadata

        eq = tw.scenario.equipment
        meta = plant_metadata(tw.cp, tw.shared.fs)
        ranges = self.ranges(tw)
        if self.spec.objective == "bsm1_oci":
            return Bsm1Objective(None, tw.main_start_s, dict(self.spec.limits), dict(self.spec.weights),
                                 {}, math.inf, (), meta["effluent_stream"],
                                 (meta["f_P"], meta["i_XB"], meta["i_XP"]), 0.0, ranges, meta=meta)
        if eq is None or not eq.enabled:
            raise ValueError("the optimiser needs the scenario's equipment (power and tariff)")
        tariff = build_tariff(eq.tariff, tw.shared.base_dir)
        fuel = eq.heating.source == "fuel"
        # electricity as kpis.json counts it: every area, heating too unless a fuel-fired heater supplies it
        electric = tuple(c for c in tw.env.recorder.columns if c.startswith("power.") and c.endswith("_kW")
                         and not (fuel and c == "power.heating_kW"))
        heat = "power.heating_kW" if fuel and "power.heating_kW" in tw.env.recorder.columns else None
        return PlanObjective(tariff, tw.main_start_s, dict(self.spec.limits), dict(self.spec.weights),
                             {}, math.inf, electric, meta["effluent_stream"],
                             (meta["f_P"], meta["i_XB"], meta["i_XP"]), eq.co2_kg_per_kwh, ranges, heat,
                             eq.heating.fuel_price_per_kwh, eq.heating.fuel_co2_kg_per_kwh)

    def blocks(self) -> list[tuple[str, float, float, int]]:
        """(target, low, high, block length s) per variable."""
        return [(v.target, v.bounds[0], v.bounds[1], int(v.block)) for v in self.spec.variables]

    def _changes(self, genes, t0: int, offset: bool, tail: bool = False) -> list[tuple[int, str, float]]:
        """The schedule's changes (times from ``t0`` with ``offset``, else absolute); with a
        lookahead and ``tail``, each variable goes back to its default value at the horizon's
        end (the plan hands the plant back to the default control)."""
        horizon = int(self.spec.horizon)
        base = 0 if offset else t0
        out, k = [], 0
        for j, (target, _, _, block) in enumerate(self.blocks()):
            for b in range(horizon // block):
                out.append((base + b * block, target, float(genes[k])))
                k += 1
            if tail and int(self.spec.lookahead) > 0:
                out.append((base + horizon, target, round(float(self.defaults[j]), RESOLUTION)))
        return out

    def decide(self, tw) -> dict:
        """Search and apply the next horizon's schedule; returns the logged decision. DEAP's
        selection operators draw from the global random module: it is seeded for this search
        and the caller's state is put back afterwards."""
        saved = random.getstate()
        random.seed(self.seed * 1_000_003 + tw.now + 1)
        try:
            return self._search(tw)
        finally:
            random.setstate(saved)

    def _search(self, tw) -> dict:
        from twin.evaluate import Evaluator

        s = self.spec
        w0 = time.perf_counter()
        t0 = tw.now
        horizon = int(s.horizon)
        # what a candidate is simulated and scored over: the horizon and the lookahead, which
        # stops at the run's end (nothing after it is simulated or counted)
        window = min(horizon + int(s.lookahead), max(horizon, tw.end_s - t0))
        tail = window > horizon
        self._log_realised(tw)
        vars_ = self.blocks()
        n_blocks = [horizon // b for _, _, _, b in vars_]
        lo = np.concatenate([[v[1]] * n for v, n in zip(vars_, n_blocks)])
        hi = np.concatenate([[v[2]] * n for v, n in zip(vars_, n_blocks)])
        current = np.round(np.concatenate([[min(max(tw.read(v[0]), v[1]), v[2])] * n
                                           for v, n in zip(vars_, n_blocks)]), RESOLUTION)
        if self.defaults is None:
            self.defaults = [tw.read(v[0]) for v in vars_]
        # the default control as a schedule: its values held over the horizon (not clipped to the
        # bounds: the reference is what the plant does without the optimiser)
        default = np.round(np.concatenate([[d] * n for d, n in zip(self.defaults, n_blocks)]), RESOLUTION)
        forecast = None
        if s.forecast == "noisy":
            forecast = {"kind": "noisy", "from_s": t0, "horizon_s": window, "sd": s.forecast_error.sd,
                        "correlation_s": int(s.forecast_error.correlation_time), "seed": self.seed}
        elif s.forecast != "perfect":
            period = 86400 if s.forecast == "persistence_day" else 7 * 86400
            forecast = {"kind": "persistence", "from_s": t0, "horizon_s": window, "period_s": period}
        fallbacks = s.fallback or []
        traced = [plan_column(tw.scenario, tw.cp, fb.signal) if fb.above_plan is not None else None for fb in fallbacks]
        probe = dataclasses.replace(self.objective(tw), plan_s=horizon, margin=s.limit_margin,
                                    traces=tuple(dict.fromkeys(c for c in traced if c)))
        eval_wall = [0.0]  # elapsed time inside the evaluator's batches
        rng = random.Random(self.seed * 1_000_003 + t0)
        cache: dict[tuple, dict] = {}
        # the reference: the default control on the same forecast, from the state it would be in
        w_ref = time.perf_counter()
        with Evaluator(self.reference_twin(tw, probe.columns), window, probe, executor="serial",
                       record=probe.columns, forecast=forecast) as ref:
            base_fig = ref.map([self._changes(default, t0, True, tail)])[0]
        w_ref = time.perf_counter() - w_ref
        with Evaluator(tw, window, probe, executor=s.executor, workers=s.workers, record=probe.columns,
                       forecast=forecast) as ev:
            def timed_map(cands):
                w = time.perf_counter()
                out = ev.map(cands)
                eval_wall[0] += time.perf_counter() - w
                return out

            # keeping the current settings, on the same forecast (from the running twin's state)
            same = tuple(default) == tuple(current)
            cur_fig = timed_map([self._changes(current, t0, True, tail)])[0]
            cap = math.inf if s.eqi_tolerance is None else base_fig["EQI_kg_d"] * (1.0 + s.eqi_tolerance)
            # effluent limits: no more hours above than the default control (a storm may force some);
            # process ranges are hard: no hours outside at all (allowance 0)
            obj = dataclasses.replace(probe, base_hours={k: base_fig[k] for k in probe.limit_keys()},
                                      eqi_cap_kg_d=cap)
            cache[tuple(current)] = cur_fig

            def evaluate_all(pop):
                todo = {}
                for ind in pop:
                    key = tuple(ind)
                    if key not in cache and key not in todo:
                        todo[key] = ind
                if todo:
                    figs = timed_map([self._changes(np.array(k), t0, True, tail) for k in todo])
                    cache.update(zip(todo, figs))
                for ind in pop:
                    ind.fitness.values = obj.score(cache[tuple(ind)])

            pop = [Schedule(current)]
            if not same and np.all((default >= lo) & (default <= hi)):
                pop.append(Schedule(default))
            if self.last_plan is not None:
                pop.append(Schedule(np.round(self._warm(self.last_plan, t0, current), RESOLUTION)))
            while len(pop) < s.population:
                pop.append(Schedule([round(rng.uniform(a, b), RESOLUTION) for a, b in zip(lo, hi)]))
            sigma = s.mutation_sigma_fraction * (hi - lo)

            def vary(parents):
                off = [Schedule(ind) for ind in parents]
                for a, b in zip(off[::2], off[1::2]):
                    if rng.random() < s.crossover_probability:
                        for i in range(len(a)):
                            if rng.random() < s.crossover_indpb:
                                a[i], b[i] = b[i], a[i]
                for ind in off:
                    if rng.random() < s.mutation_probability:
                        for i in range(len(ind)):
                            if rng.random() < s.mutation_indpb:
                                ind[i] = round(float(min(max(ind[i] + rng.gauss(0.0, sigma[i]), lo[i]), hi[i])),
                                               RESOLUTION)
                return off

            if s.algorithm == "nsga2":
                best, stats, front = self._nsga2(pop, vary, evaluate_all, cache, cap, obj.cost_key)
            else:
                evaluate_all(pop)
                stats = []
                for gen in range(s.generations):
                    elite = tools.selBest(pop, s.elite)
                    off = vary(tools.selTournament(pop, len(pop) - s.elite, tournsize=s.tournament))
                    pop = [Schedule(e) for e in elite] + off
                    evaluate_all(pop)
                    top = tools.selBest(pop, 1)[0]
                    costs = [ind.fitness.values[2] for ind in pop]
                    stats.append({"gen": gen + 1, "best_excess_h": top.fitness.values[0],
                                  "best_excess_EQI": top.fitness.values[1], "best_cost": top.fitness.values[2],
                                  "mean_cost": float(np.mean(costs)), "evaluated": len(cache)})
                best, front = tools.selBest(pop, 1)[0], None
            split = dict(ev.timing)
            w_search = time.perf_counter()
        full = cache[tuple(best)]
        fig, base_plan = full.get("plan_window", full), base_fig.get("plan_window", base_fig)
        cur_plan = cur_fig.get("plan_window", cur_fig)
        # the hand-back to the default values at the horizon's end is applied only when no
        # decision replaces it first
        handback = t0 + horizon < tw.end_s and not any(t0 < d <= t0 + horizon for d in self.decision_times(tw))
        plan = self._changes(np.array(best), t0, False, tail=handback)
        tw.plan.replace_from(t0, plan)
        for _t, target, value in tw.plan.due(t0):
            from twin.schedules import apply

            apply(tw, target, value, "optimiser plan", source="optimiser")
        wall = time.perf_counter() - w0
        split = {k: round(v, 3) if isinstance(v, float) else v for k, v in split.items()}
        # the search's own time (DEAP's operators, caching, bookkeeping): the elapsed time outside
        # the evaluator's batches; ``evaluations_s`` is the elapsed time inside them
        split["evaluations_s"] = round(eval_wall[0], 3)
        split["reference_s"] = round(w_ref, 3)  # advancing the reference twin and its forecast day
        split["search_s"] = round(w_search - w0 - eval_wall[0] - w_ref, 3)
        self.plan_active = True
        self._arm()
        self.forecast_flow = self._forecast_flow(tw, forecast, t0, horizon)
        trace = full.get("trace")
        self.predicted = [(list(trace["times_s"]), list(trace[c])) if c else None for c in traced]
        self.last_plan = {"start_s": t0, "end_s": t0 + horizon, "genes": [float(g) for g in best],
                          "predicted": _flat(fig)}
        decision = {"schedule": [{"at_s": t, "target": tg, "value": v} for t, tg, v in plan],
                    "predicted": _flat(fig), "baseline_default_control": _flat(base_plan),
                    "baseline_current_setpoints": _flat(cur_plan),
                    "eqi_cap_kg_d": cap if math.isfinite(cap) else None, "generations": stats,
                    "forecast": s.forecast, "evaluations": len(cache), "wall_s": round(wall, 3), "time_split": split,
                    "algorithm": s.algorithm}
        if front is not None:
            decision["pareto_front"] = front
        if window > horizon:  # the figures the plan was scored on: its window and the lookahead
            decision["lookahead_s"] = window - horizon
            decision["scored"] = {"predicted": _flat(full), "baseline_default_control": _flat(base_fig),
                                  "baseline_current_setpoints": _flat(cur_fig)}
        tw.env.log("optimiser_plan", "optimiser",
                   f"plan for {horizon / 3600:g} h: predicted {obj.cost_label} {fig[obj.cost_key]:.2f} "
                   f"against {base_plan[obj.cost_key]:.2f} under the default control", **decision)
        return decision

    @staticmethod
    def _forecast_flow(tw, forecast: dict | None, t0: int, horizon: int) -> tuple[list[int], list[float]]:
        """The forecast's influent flow over ``[t0, t0 + horizon]`` (the table's samples; perfect:
        the twin's own), for the safeguards that compare the measured flow with it."""
        from twin.evaluate import forecast_shared, influent_history

        t, values = influent_history(forecast_shared(tw.shared, forecast))
        q = values[:, 0]
        idx = np.nonzero((t >= t0) & (t <= t0 + horizon))[0]
        if idx.size == 0:  # samples sparser than the horizon: the two around it
            idx = np.array([int(np.searchsorted(t, t0))])
        lo, hi = max(int(idx[0]) - 1, 0), min(int(idx[-1]) + 1, len(t) - 1)
        return [int(x) for x in t[lo:hi + 1]], [float(x) for x in q[lo:hi + 1]]

    def _nsga2(self, pop, vary, evaluate_all, cache, cap: float, key: str):
        """NSGA-II (DEAP's non-dominated sorting and crowding) over (the cost ``key``, EQI, CO2),
        feasibility first: only candidates without excess hours above the limits and within the
        EQI cap compete on the front; when there are too few, the least-violating fill the
        population. The applied point is the cheapest on the final front whose EQI is within the
        cap (``eqi_tolerance`` above the default control); if none is, the front's lowest EQI."""
        s = self.spec
        n = len(pop)

        def pareto(inds):
            for ind in inds:
                f = cache[tuple(ind)]
                ind.excess = ind.fitness.values[:2]
                ind.fitness = ParetoFitness((f[key], f["EQI_kg_d"], f["co2_kg"]))

        def survive(inds):
            feas = [i for i in inds if i.excess == (0.0, 0.0)]
            if len(feas) >= n:
                return tools.selNSGA2(feas, n)
            rest = sorted([i for i in inds if i.excess != (0.0, 0.0)], key=lambda i: i.excess)
            chosen = feas + rest[:n - len(feas)]
            tools.selNSGA2(chosen, len(chosen))  # crowding distances for the tournament
            return chosen

        evaluate_all(pop)
        pareto(pop)
        pop = survive(pop)
        stats = []
        for gen in range(s.generations):
            off = vary(tools.selTournamentDCD(pop, n))
            evaluate_all(off)
            pareto(off)
            pop = survive(pop + off)
            feas = [i for i in pop if i.excess == (0.0, 0.0)]
            stats.append({"gen": gen + 1, "feasible": len(feas), "evaluated": len(cache),
                          "best_cost": min((i.fitness.values[0] for i in feas), default=math.nan),
                          "best_EQI": min((i.fitness.values[1] for i in feas), default=math.nan)})
        feas = [i for i in pop if i.excess == (0.0, 0.0)] or pop
        front = tools.sortNondominated(feas, len(feas), first_front_only=True)[0]
        ok = [i for i in front if i.fitness.values[1] <= cap]
        best = min(ok, key=lambda i: i.fitness.values[0]) if ok else min(front, key=lambda i: i.fitness.values[1])
        points = sorted({tuple(i.fitness.values) for i in front})
        return best, stats, [{"cost": c, "EQI_kg_d": e, "co2_kg": k} for c, e, k in points]

    def _warm(self, last: dict, t0: int, current: np.ndarray) -> np.ndarray:
        """The previous plan shifted by the time elapsed; blocks beyond it keep its last value."""
        genes = np.array(current, dtype=float)
        old = np.array(last["genes"], dtype=float)
        k = 0
        for _target, _, _, block in self.blocks():
            n = int(self.spec.horizon) // block
            shift = (t0 - last["start_s"]) // block
            seg = old[k:k + n]
            if seg.size == n:
                moved = np.concatenate([seg[shift:], np.full(min(shift, n), seg[-1])])[:n]
                genes[k:k + n] = moved
            k += n
        return genes

    def _log_realised(self, tw) -> None:
        last = self.last_plan
        if last is None or last["end_s"] > tw.now:
            return
        obj = self.objective(tw)
        try:
            real = obj(tw, last["start_s"], last["end_s"])
        except (KeyError, ValueError) as exc:
            tw.env.log("optimiser_realised", "optimiser", f"realised figures not available: {exc}")
            return
        pred = last["predicted"]
        extra = {}
        if self._shadow is not None or self.shadow_snapshot is not None:
            # the default control's realised figures of the same window, on the same influent
            extra["realised_default_control"] = obj(self.reference_twin(tw, obj.columns), last["start_s"],
                                                    last["end_s"])
        tw.env.log("optimiser_realised", "optimiser",
                   f"realised {obj.cost_label} {real[obj.cost_key]:.2f} against {pred[obj.cost_key]:.2f} "
                   "predicted", window_s=[last["start_s"], last["end_s"]], realised=real, predicted=pred,
                   error={k: real[k] - pred[k] for k in real if k in pred and isinstance(real[k], float)
                          and math.isfinite(real[k])}, **extra)
