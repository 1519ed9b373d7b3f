"""The maintenance agent: work orders, crews, spare parts and maintenance policies, as SimPy
processes on the fleet.

* Failures raise corrective work orders at once (priority 0); planned work (priority 1) comes
  from the policies:
  - ``rtf``: run to failure, corrective work only;
  - ``time_based``: replace an asset when its service time since the last renewal reaches
    ``interval_h`` (age replacement);
  - ``condition``: inspect every ``inspection_interval`` and act when a sensor channel exceeds
    ``threshold``;
  - ``predictive``: ask a predictor (an object with ``probability(observation, assets, horizon_h)``
    and ``predict(observation, asset, horizon_h)``, see :class:`WeibullHazardPredictor`) and act
    when the probability of failure within ``horizon_h`` exceeds ``probability``. Predictors see
    a :class:`~twin.fleet.observe.Observation` (sensors, hour meters, loads, records), never the
    fleet's hidden state.
    With a ``model`` (an LSTM file, :mod:`agents.predictors.policy`) the policy records the hourly
    readings of its type's assets and, at every decision, scores all of them in one batched
    forward call; it acts on an asset when the expected cost of waiting, P(failure within
    ``horizon_h``) x the cost of a functional failure, reaches the cost of planned work now
    (:meth:`twin.fleet.model.AssetType.expected_costs`), and logs each recommendation with its
    probability, remaining-life interval and reason. An asset whose window runs outside the
    load and air temperature the model was trained in gets no planned work from it meanwhile
    (``outside_context: skip``; ``predict`` acts anyway), logged and counted.
* Crews are a SimPy priority resource; planned work starts only inside the shift and in
  low-load hours when ``planned_hours`` says so; corrective work starts any time.
* Spare parts are SimPy containers per asset type under a one-for-one (base-stock) policy:
  every demand orders a replacement part, delivered after the lead time.
* Work takes a lognormal repair time (corrective) or the replacement time (planned); the asset
  is down meanwhile. Every decision is written to the event log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import simpy

from twin.durations import TICKS_PER_DAY
from twin.fleet.observe import Observation, observe


@dataclass
class WorkOrder:
    asset: int
    kind: str  # corrective | preventive
    reason: str
    created_s: int
    failed_rows: list[int] = field(default_factory=list)
    #: progress, so an open order can be saved and resumed: queued -> window -> part -> working
    stage: str = "queued"
    seq: int = 0
    part_wait_start: int = 0
    window_tries: int = 0
    #: the start chosen for planned work ("cheapest" planned starts; -1: not chosen)
    window_at: int = -1
    hours: float = 0.0
    parts: float = 0.0
    wasted: float = 0.0
    end_s: int = 0


class WeibullHazardPredictor:
    """Probability of failure within a horizon from the Weibull model of each mode (the fleet
    file's shape and scale), given the operating hours of each mode since its last renewal (the
    statistical baseline predictor). It reads an :class:`~twin.fleet.observe.Observation` only:
    the effective (load-weighted) age is hidden, so the hour meter stands in for it."""

    def probability(self, obs: Observation, assets: np.ndarray, horizon_h: float) -> np.ndarray:
        """P(failure within ``horizon_h`` | operating hours) for many assets at once (series
        system of their modes: the cumulative hazards add)."""
        a, eta, beta = obs.run_h, obs.weibull_scale_h, obs.weibull_shape
        dh = ((a + horizon_h) / eta) ** beta - (a / eta) ** beta
        per_asset = np.bincount(obs.row_asset, weights=dh, minlength=len(obs.asset_ids))
        return 1.0 - np.exp(-per_asset[assets])

    def predict(self, obs: Observation, asset: int, horizon_h: float) -> tuple[float, float, tuple[float, float]]:
        rows = np.nonzero(obs.row_asset == asset)[0]
        a, eta, beta = obs.run_h[rows], obs.weibull_scale_h[rows], obs.weibull_shape[rows]
        h_now = np.sum((a / eta) ** beta)
        h_then = np.sum(((a + horizon_h) / eta) ** beta)
        p = 1.0 - math.exp(-(h_then - h_now))

        def residual_life(survival: float) -> float:
            """Hours until the conditional survival of the series system falls to ``survival``
            (bisection: the cumulative hazard is increasing)."""
            lo, hi = 0.0, float(np.max(eta)) * 10
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                if math.exp(-(np.sum(((a + mid) / eta) ** beta) - h_now)) > survival:
                    lo = mid
                else:
                    hi = mid
            return 0.5 * (lo + hi)

        rul, q10, q90 = residual_life(0.5), residual_life(0.9), residual_life(0.1)
        return p, rul, (q10, q90)


class MaintenanceAgent:
    def __init__(self, env, fleet, spec, on_down=None, on_up=None, models: dict | None = None, fresh: bool = True):
        self.env = env
        self.fleet = fleet
        self.spec = spec
        self.crews = simpy.PriorityResource(env, capacity=spec.crews.count)
        self.spares = {t: simpy.Container(env, capacity=10**6, init=spec.spares_for(t).stock) for t in fleet.types}
        self.on_down = on_down or (lambda i, why: None)
        self.on_up = on_up or (lambda i: None)
        # repair times: one stream per asset (common random numbers, as in the fleet)
        # (``fresh=False``: about to be restored from a snapshot, which holds the streams)
        self.repair_rng = [env.child_rng(f"maintenance.repair.{a.id}") for a in fleet.assets] if fresh else None
        self.predictor = WeibullHazardPredictor()
        self.duty_rng = env.child_rng("fleet.duty") if fresh else None
        self._day_factor = np.ones(len(fleet.assets))
        self._duty_day = -1
        n = len(fleet.assets)
        self.busy = np.zeros(n, dtype=bool)  # a work order is open on the asset
        self.last_renewal_s = np.zeros(n, dtype=np.int64)
        self.records: list[dict] = []  # closed work orders
        self.failures: list[dict] = []
        self.alarms: list[dict] = []
        self.down_since: dict[int, int] = {}
        self._down_kind: dict[int, str] = {}
        self.open_orders: dict[int, WorkOrder] = {}
        self.pending_parts: dict[int, tuple[int, str]] = {}  # order number -> (due time, asset type)
        self._seq = 0
        self._parts_seq = 0
        self._waits: dict[int, object] = {}  # work order -> the crew request or part it waits for
        self.down_hours = {"planned": np.zeros(n), "unplanned": np.zeros(n)}
        self.outages: list[tuple[int, int, int]] = []  # (asset, down since, back up) in clock ticks
        self.process_assets: list[int] = []  # assets coupled to the process (set by the builder)
        #: forecast weight of an outage hour starting at a clock time (price x load; set by the
        #: builder for ``planned_start: cheapest``)
        self.outage_weight = None
        self.inflow_h: dict[int, float] = {}  # the plant's inflow by clock hour, the last two days (cheapest starts)
        #: LSTM models of the predictive policies, per asset type, and the hourly sensor history
        #: they read, in a buffer of two windows (assets of the type, 2 x window hours, features):
        #: the hours before ``_history_end`` (:meth:`window`), oldest first; when the buffer is
        #: full its last window moves to the front (one copy per window, not one per hour)
        self.models = dict(models or {})
        self.history: dict[str, np.ndarray] = {}
        self.history_h = 0  # hours recorded
        #: per type with a model: asset decisions taken, and those with the asset's window outside
        #: the model's training context; per asset: outside at its last decision
        self.model_decisions = {t: [0, 0] for t in sorted(self.models)}
        self.outside = np.zeros(n, dtype=bool)
        self._history_idx: dict[str, np.ndarray] = {}
        self._window_h = max((int(m.meta["window_h"]) for m in self.models.values()), default=0)
        self._history_end = self._window_h
        for t, m in sorted(self.models.items()):
            self._history_idx[t] = np.array([i for i, a in enumerate(fleet.assets) if a.type == t], dtype=np.int64)
            self.history[t] = np.full((len(self._history_idx[t]), 2 * self._window_h, len(m.meta["features"])), np.nan)

    # -- processes --------------------------------------------------------------------------
    def fleet_clock(self, step_s: int, wake_at: int | None = None):
        """Age the fleet every ``step_s``; failures raise corrective work orders."""
        first = step_s if wake_at is None else wake_at - self.env.now
        while True:
            yield self.env.timeout(first)
            first = step_s
            dt_h = step_s / 3600.0
            self.fleet.advance_weather(self.env.now / 3600.0, dt_h)
            if self.spec.load_variation > 0 and not self.spec.process_model:
                self._vary_load()
            for r in self.fleet.step(dt_h):
                self.fail(int(r))

    def sensor_log(self, wake_at: int | None = None):
        """Hourly readings of the assets whose policy has an LSTM model, with the context the
        model was trained on (load, air temperature, operating hours since the last renewal, as
        ``twin fleet-data`` writes them); NaN while an asset is out of service."""
        first = 3600 if wake_at is None else wake_at - self.env.now
        fleet = self.fleet
        first_rows = np.r_[0, np.nonzero(np.diff(fleet.s.row_asset))[0] + 1]  # each asset's first (asset, mode) row
        while True:
            yield self.env.timeout(first)
            first = 3600
            s = fleet.s
            # operating hours since the asset's last renewal: the least of its modes' hour meters
            op_kh = np.minimum.reduceat(s.run_h, first_rows) / 1000.0
            end = self._history_end
            if end == 2 * self._window_h:  # buffer full: keep its last window
                for h in self.history.values():
                    h[:, :self._window_h] = h[:, self._window_h:]
                end = self._window_h
            for t, idx in self._history_idx.items():
                nc = len(self.models[t].meta["channels"])  # the type's channels, in order (checked at build)
                row = self.history[t][:, end]
                row[:, :nc] = fleet.read_type(t)[1]
                row[:, nc] = s.asset_load[idx]
                row[:, nc + 1] = s.ambient_c
                row[:, nc + 2] = op_kh[idx]
                row[~s.asset_up[idx]] = np.nan
            self._history_end = end + 1
            self.history_h += 1

    def window(self, type_name: str, hours: int | None = None) -> np.ndarray:
        """The last ``hours`` (default: the type's model window) of the hourly record of
        ``type_name``'s assets: (assets, hours, features), oldest first (a view)."""
        hours = int(self.models[type_name].meta["window_h"]) if hours is None else hours
        return self.history[type_name][:, self._history_end - hours:self._history_end]

    def _vary_load(self) -> None:
        """Fleet-only studies: each asset's load follows a daily cycle (peak mid-afternoon) of
        relative amplitude ``load_variation`` times a factor drawn for each asset and day
        (normal, the same relative sd), around the fleet's ``load``."""
        amp = self.spec.load_variation
        hour = (self.env.now % TICKS_PER_DAY) / 3600.0
        day = self.env.now // TICKS_PER_DAY
        if day != self._duty_day:
            self._duty_day = day
            self._day_factor = np.maximum(1.0 + amp * self.duty_rng.standard_normal(len(self.fleet.assets)), 0.0)
        cycle = 1.0 + amp * math.cos(2 * math.pi * (hour - 15.0) / 24.0)
        self.fleet.s.asset_load[:] = self.spec.load * cycle * self._day_factor

    def fail(self, r: int, forced: bool = False) -> None:
        """Failure of (asset, mode) row ``r``: the asset stops and a corrective work order opens."""
        s = self.fleet.s
        i = int(s.row_asset[r])
        t, m = s.row_mode[r]
        s.failed_row[r] = True
        # the hidden effective age goes to the failure record (labels, KPIs), never to a decision
        self.failures.append({"time_s": self.env.now, "asset": self.fleet.assets[i].id, "type": t, "mode": m,
                              "age_h": float(s.age_h[r]), "alarmed": bool(self.busy[i]), "forced": forced})
        self.env.log("failure", self.fleet.assets[i].id, f"{m} failure" + (" (scenario event)" if forced else ""),
                     type=t, mode=m, age_h=float(s.age_h[r]))
        self._take_down(i, "unplanned")
        if not self.busy[i]:
            self.busy[i] = True
            self._start_work(WorkOrder(i, "corrective", f"{m} failure", self.env.now, [r]))

    def policy_process(self, type_name: str, policy, wake_at: int | None = None):
        """Inspections and planned work of one asset type under its policy."""
        idx = [i for i, a in enumerate(self.fleet.assets) if a.type == type_name]
        if policy.kind == "rtf" or not idx:
            return
        every = policy.inspection_interval
        idx_arr = np.array(idx, dtype=np.int64)
        first = every if wake_at is None else wake_at - self.env.now
        while True:
            yield self.env.timeout(first)
            first = every
            if policy.kind == "predictive" and type_name in self.models:
                self._decide_by_expected_cost(type_name, idx_arr, policy)
                continue
            if policy.kind == "predictive":  # screen the whole type at once; explain only the alarms
                p = self.predictor.probability(observe(self.fleet), idx_arr, policy.horizon_h)
                candidates = idx_arr[p >= policy.probability].tolist()
            else:
                candidates = idx
            # the assets inspected: starting work on one changes no other asset's state before
            # the next yield, so the condition readings of all of them are taken in one call
            # (each asset's own noise stream: the same values as one at a time)
            candidates = [i for i in candidates if not self.busy[i] and self.fleet.s.asset_up[i]]
            readings = None
            if policy.kind == "condition" and candidates:
                names, v = self.fleet.read_assets(type_name, candidates)
                col = names.index(policy.channel) if policy.channel in names else None
                readings = {i: (float(v[k, col]) if col is not None else math.nan) for k, i in enumerate(candidates)}
            for i in candidates:
                reason = self._planned_reason(i, policy, None if readings is None else readings[i])
                if reason:
                    self.busy[i] = True
                    # the true remaining life is recorded, after the decision, for the alarm KPIs only
                    ttf = self.fleet.remaining_life_h(i)
                    self.alarms.append({"time_s": self.env.now, "asset": i, "true_ttf_h": ttf,
                                        "kind": policy.kind})
                    self.env.log("work_order", self.fleet.assets[i].id, f"planned replacement: {reason}",
                                 policy=policy.kind)
                    self._start_work(WorkOrder(i, "preventive", reason, self.env.now))

    def _decide_by_expected_cost(self, type_name: str, idx: np.ndarray, policy) -> None:
        """One decision of an LSTM policy: score every asset of the type in one forward call (once
        a full window is recorded) and raise planned work where P(failure within the horizon) x
        the cost of a functional failure reaches the cost of planned work now. An asset whose
        window left the operating context the model was trained in is logged when it leaves and
        counted; under ``outside_context: skip`` the model plans no work on it meanwhile."""
        from agents.predictors.policy import block_windows, calibrated, outside_context

        model = self.models[type_name]
        if self.history_h < model.meta["window_h"]:
            return
        obs = observe(self.fleet, {type_name: (self.window(type_name), np.arange(-model.meta["window_h"] + 1, 1),
                                               tuple(model.meta["features"]))})
        hourly, _, _ = obs.history[type_name]
        blocks = block_windows(hourly, model.meta["block_h"])
        p, q = model.predict_windows(model.normalise(blocks))
        h = [float(x) for x in model.meta["horizons_h"]].index(float(policy.horizon_h))
        p_h = calibrated(model, p)[:, h]
        failure_cost, planned_cost = self.fleet.types[type_name].expected_costs(self.spec.crews.size)
        out, why = outside_context(model, blocks)
        counts = self.model_decisions[type_name]
        counts[0] += len(idx)
        counts[1] += int(out.sum())
        for k, i in enumerate(idx.tolist()):
            if out[k] and not self.outside[i]:
                self.env.log("model_outside_context", self.fleet.assets[i].id,
                             f"outside the model's training context: {why[k]}"
                             + ("; no planned work from the model meanwhile" if policy.outside_context == "skip" else ""),
                             policy="predictive")
            self.outside[i] = out[k]
            if out[k] and policy.outside_context == "skip":
                continue
            if p_h[k] * failure_cost < planned_cost or self.busy[i] or not obs.up[i]:
                continue
            q10, q50, q90 = (float(v) for v in q[k])
            reason = (f"P(failure within {policy.horizon_h:g} h) = {p_h[k]:.2f} x failure cost {failure_cost:.0f} "
                      f">= planned cost {planned_cost:.0f}; RUL {q50:.0f} h [{q10:.0f}, {q90:.0f}]")
            ident = self.fleet.assets[i].id
            self.env.log("recommendation", ident, reason, policy="predictive", probability=float(p_h[k]),
                         horizon_h=float(policy.horizon_h), rul_h=q50, rul_interval_h=[q10, q90],
                         failure_cost=failure_cost, planned_cost=planned_cost)
            self.busy[i] = True
            # the true remaining life is recorded for the alarm KPIs only (evaluation, not decisions)
            self.alarms.append({"time_s": self.env.now, "asset": i, "true_ttf_h": self.fleet.remaining_life_h(i),
                                "kind": policy.kind})
            self.env.log("work_order", ident, f"planned work: {reason}", policy=policy.kind)
            self._start_work(WorkOrder(i, "preventive", reason, self.env.now))

    def _planned_reason(self, i: int, policy, reading: float | None = None) -> str:
        """Why asset ``i`` gets planned work now under ``policy`` ('' if it does not); a condition
        policy's ``reading`` of the channel when already taken."""
        if policy.kind == "time_based":
            service_h = (self.env.now - self.last_renewal_s[i]) / 3600.0
            return f"service time {service_h:.0f} h reached {policy.interval_h:g} h" if service_h >= policy.interval_h else ""
        if policy.kind == "condition":
            if reading is None:
                reading = self.fleet.read_channels(i).get(policy.channel, math.nan)
            if reading >= policy.threshold:
                return f"{policy.channel} {reading:.3g} >= {policy.threshold:g}"
            return ""
        if policy.kind == "predictive":
            p, rul, (lo, hi) = self.predictor.predict(observe(self.fleet), i, policy.horizon_h)
            if p >= policy.probability:
                return f"P(failure within {policy.horizon_h:g} h) = {p:.2f}, RUL {rul:.0f} h [{lo:.0f}, {hi:.0f}]"
        return ""

    def _start_work(self, wo: WorkOrder) -> None:
        self._seq += 1
        wo.seq = self._seq
        self.open_orders[wo.seq] = wo
        self.env.start(f"work.{wo.seq}", lambda w: self.work(wo))

    def work(self, wo: WorkOrder, wake_at: int | None = None, req=None, part=None):
        """Carry out a work order: crew (in shift for planned work), part, work time, renewal.

        The order records its stage, so a saved run resumes it where it stood: ``req`` is its
        crew request and ``part`` its spare-part request, re-issued in their queues' order;
        ``wake_at`` the end of the timeout it was waiting for."""
        spec = self.spec
        i = wo.asset
        a = self.fleet.assets[i]
        t = self.fleet.types[a.type]
        prio = 0 if wo.kind == "corrective" else 1
        store = self.spares[a.type]
        if req is None:
            req = self.crews.request(priority=prio)
        try:
            if wo.stage == "queued":
                self._waits[wo.seq] = req
                yield req
                wo.stage = "window"
            if wo.stage == "window":
                if wo.kind == "preventive":
                    yield from self._wait_for_planned_window(wo, wake_at)
                wo.stage = "part"
                wo.part_wait_start = self.env.now
                if store.level < 1:
                    self.env.log("spares", a.id, "waiting for a spare part", type=a.type)
                self._order_part(a.type)  # one-for-one replenishment: each demand orders one part
            if wo.stage == "part":
                part = store.get(1) if part is None else part
                self._waits[wo.seq] = part
                yield part
                self._waits.pop(wo.seq, None)
                if wo.kind == "preventive":
                    wo.wasted = self.fleet.remaining_life_h(i)  # the life this replacement gives up
                    self._take_down(i, "planned")
                    wo.hours = t.replace_h
                    wo.parts = t.planned_parts_cost
                else:
                    wo.hours = float(self.repair_rng[i].lognormal(math.log(t.repair_h_median), t.repair_h_sigma))
                    wo.parts = t.repair_parts_cost + t.secondary_damage_cost
                wo.end_s = self.env.now + int(round(wo.hours * 3600))
                wo.stage = "working"
            yield self.env.timeout(wo.end_s - self.env.now)
        finally:
            self.crews.release(req)
        if wo.kind == "preventive":
            self.fleet.renew_asset(i)
        else:
            self.fleet.renew_rows(np.array(wo.failed_rows + [int(r) for r in self.fleet.rows_of(i)
                                                             if self.fleet.s.failed_row[r]]))
        self.last_renewal_s[i] = self.env.now
        down_h = self._bring_up(i)
        self.busy[i] = False
        del self.open_orders[wo.seq]
        hours = wo.hours
        cost = {"labour": hours * t.labour_rate_per_h * spec.crews.size, "parts": wo.parts,
                "downtime": down_h * t.downtime_cost_per_h if wo.kind == "corrective" else 0.0}
        self.records.append({"asset": a.id, "type": a.type, "kind": wo.kind, "created_s": wo.created_s,
                             "done_s": self.env.now, "work_h": hours, "down_h": down_h,
                             "waited_for_part_h": (self.env.now - wo.part_wait_start) / 3600.0 - hours,
                             "cost": cost, "wasted_life_h": wo.wasted if math.isfinite(wo.wasted) else 0.0})
        self.env.log("work_done", a.id, f"{wo.kind} work done ({wo.reason})", hours=hours, down_h=down_h, cost=cost)

    def _order_part(self, type_name: str) -> None:
        self._parts_seq += 1
        n = self._parts_seq
        self.pending_parts[n] = (self.env.now + self.spec.spares_for(type_name).lead_time, type_name)
        self.env.start(f"part.{n}", lambda w: self._replenish(n))

    def _replenish(self, n: int):
        due, type_name = self.pending_parts[n]
        yield self.env.timeout(due - self.env.now)
        del self.pending_parts[n]
        yield self.spares[type_name].put(1)

    def _allowed(self, t_s: int) -> bool:
        spec = self.spec
        lo, hi = spec.planned_hours
        hour = (t_s % TICKS_PER_DAY) / 3600.0
        return lo <= hour < hi and spec.crews.shift_start_h <= hour < spec.crews.shift_end_h

    def _wait_for_planned_window(self, wo: WorkOrder, wake_at: int | None = None):
        """Planned work starts inside the crews' shift and the scenario's ``planned_hours``
        (checked hourly, for at most 48 hours); with ``planned_start: cheapest`` at the allowed
        start of the next 24 h that :meth:`cheapest_start` picks."""
        if wake_at is not None:
            yield self.env.timeout(wake_at - self.env.now)
        if wo.window_at < 0 and self.outage_weight is not None:
            wo.window_at = self.cheapest_start(self.env.now, self.fleet.types[self.fleet.assets[wo.asset].type].replace_h)
        if wo.window_at >= 0:
            if self.env.now < wo.window_at:
                yield self.env.timeout(wo.window_at - self.env.now)
            return
        while wo.window_tries < 48:
            if self._allowed(self.env.now):
                return
            wo.window_tries += 1
            yield self.env.timeout(3600 - self.env.now % 3600)

    def allowed_starts(self, now: int) -> list[int]:
        """The allowed starts of planned work within the next 24 h: now, or a full hour."""
        starts = [now] + [now - now % 3600 + 3600 * k for k in range(1, 25)]
        return [t for t in starts if self._allowed(t)]

    def start_weight(self, t_s: int, hours: float) -> float:
        """The forecast weight of an outage of ``hours`` from ``t_s``: :attr:`outage_weight`
        summed over its hours."""
        return sum(self.outage_weight(t_s + 3600 * j) for j in range(max(1, math.ceil(hours))))

    def cheapest_start(self, now: int, hours: float) -> int:
        """The allowed start (:meth:`allowed_starts`) whose outage of ``hours`` has the least
        :meth:`start_weight` (ties: the earliest); -1 when no start in the next 24 h is allowed."""
        return min(self.allowed_starts(now), key=lambda t: self.start_weight(t, hours), default=-1)

    # -- checkpoints --------------------------------------------------------------------------
    _SAVED = ("busy", "last_renewal_s", "duty_rng", "_day_factor", "_duty_day",
              "records", "failures", "alarms", "down_since", "_down_kind", "open_orders",
              "pending_parts", "_seq", "_parts_seq", "down_hours", "repair_rng", "outages", "history", "history_h",
              "_history_end", "inflow_h", "model_decisions", "outside")

    def checkpoint_state(self) -> dict:
        """Everything a resumed run needs, including where each open order waits in the crews'
        and the spare parts' queues."""
        seq_of = {id(ev): seq for seq, ev in self._waits.items()}
        return {"attrs": {k: getattr(self, k) for k in self._SAVED},
                "spares": {t: c.level for t, c in self.spares.items()},
                "crew_queue": [seq_of[id(r)] for r in self.crews.queue],
                "part_queues": {t: [seq_of[id(g)] for g in c.get_queue] for t, c in self.spares.items()}}

    def restore_state(self, state: dict) -> None:
        """Restore a checkpoint (before the clock restarts): re-issue the crews' and the parts'
        requests in their saved order and hand the open orders and part deliveries to the clock."""
        for k, v in state["attrs"].items():
            setattr(self, k, v)
        for t, level in state["spares"].items():
            self.spares[t]._level = level
        prio = {seq: 0 if wo.kind == "corrective" else 1 for seq, wo in self.open_orders.items()}
        reqs = {seq: self.crews.request(priority=prio[seq]) for seq, wo in sorted(self.open_orders.items())
                if wo.stage != "queued"}  # holders first: they have the crews
        reqs.update({seq: self.crews.request(priority=prio[seq]) for seq in state["crew_queue"]})
        parts = {seq: self.spares[t].get(1) for t, q in state["part_queues"].items() for seq in q}
        deferred = self.env.deferred
        for seq, wo in self.open_orders.items():
            deferred[f"work.{seq}"] = (lambda w, wo=wo, seq=seq: self.work(wo, w, reqs[seq], parts.get(seq)), False)
        for n in self.pending_parts:
            deferred[f"part.{n}"] = (lambda w, n=n: self._replenish(n), False)

    def _take_down(self, i: int, why: str) -> None:
        if self.fleet.s.asset_up[i]:
            self.fleet.s.asset_up[i] = False
            self.down_since[i] = self.env.now
            self._down_kind[i] = why
            self.on_down(i, why)

    def _bring_up(self, i: int) -> float:
        if self.fleet.s.asset_up[i]:
            return 0.0
        since = self.down_since.pop(i, self.env.now)
        self.outages.append((i, since, self.env.now))
        hours = (self.env.now - since) / 3600.0
        self.down_hours[self._down_kind.pop(i, "unplanned")][i] += hours
        self.fleet.s.asset_up[i] = True
        self.on_up(i)
        return hours

    def outage_intervals(self, assets, end_s: int) -> list[tuple[int, int]]:
        """Merged intervals (ticks) when at least one of ``assets`` was out of service."""
        wanted = set(assets)
        iv = sorted([(a, b) for i, a, b in self.outages if i in wanted]
                    + [(a, end_s) for i, a in self.down_since.items() if i in wanted])
        merged: list[tuple[int, int]] = []
        for a, b in iv:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        return merged

    # -- KPIs ---------------------------------------------------------------------------------
    def kpis(self, horizon_s: int, alarm_horizon_h: float) -> dict:
        fleet = self.fleet
        now = self.env.now
        # assets still down count up to now, on copies: the KPIs can be read mid-run (a twin,
        # a fork) without changing the agent
        down_hours = {k: v.copy() for k, v in self.down_hours.items()}
        for i, since in self.down_since.items():
            down_hours[self._down_kind.get(i, "unplanned")][i] += (now - since) / 3600.0
        out = {"by_type": {}, "units": {"time": "h", "cost": "currency of the cost data"}}
        total_h = horizon_s / 3600.0
        types = sorted({a.type for a in fleet.assets})
        for t in types + ["total"]:
            idx = [i for i, a in enumerate(fleet.assets) if t in ("total", a.type)]
            n = len(idx)
            fails = [f for f in self.failures if t in ("total", f["type"])]
            recs = [r for r in self.records if t in ("total", r["type"])]
            corr = [r for r in recs if r["kind"] == "corrective"]
            prev = [r for r in recs if r["kind"] == "preventive"]
            planned = float(np.sum(down_hours["planned"][idx]))
            unplanned = float(np.sum(down_hours["unplanned"][idx]))
            by_mode: dict[str, int] = {}
            for f in fails:
                by_mode[f["mode"]] = by_mode.get(f["mode"], 0) + 1
            op_h = n * total_h - planned - unplanned
            cost = {k: float(sum(r["cost"][k] for r in recs)) for k in ("labour", "parts", "downtime")}
            out["by_type"][t] = {
                "assets": n, "failures": len(fails), "failures_by_mode": by_mode,
                "MTBF_h": op_h / len(fails) if fails else None,
                "MTTR_h": float(np.mean([r["down_h"] for r in corr])) if corr else None,
                "availability": 1.0 - (planned + unplanned) / (n * total_h) if n else None,
                "downtime_h": {"planned": planned, "unplanned": unplanned},
                "work_orders": {"preventive": len(prev), "corrective": len(corr)},
                "cost": {**cost, "total": sum(cost.values()),
                         "preventive": float(sum(sum(r["cost"].values()) for r in prev)),
                         "corrective": float(sum(sum(r["cost"].values()) for r in corr))},
                "useful_life_wasted_h": float(sum(r["wasted_life_h"] for r in prev)),
            }
            if t in self.model_decisions:
                made, outside = self.model_decisions[t]
                out["by_type"][t]["model_decisions"] = {"total": made, "outside_training_context": outside}
        if self.alarms:
            tp = [a for a in self.alarms if a["true_ttf_h"] <= alarm_horizon_h]
            missed = [f for f in self.failures if not f["alarmed"]]
            out["alarms"] = {"count": len(self.alarms), "horizon_h": alarm_horizon_h,
                             "precision": len(tp) / len(self.alarms),
                             "recall": len(tp) / (len(tp) + len(missed)) if (tp or missed) else None,
                             "mean_lead_time_h": float(np.mean([a["true_ttf_h"] for a in tp])) if tp else None}
        return out
