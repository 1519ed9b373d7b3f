"""Many futures of one twin, evaluated in parallel.

Given a twin's state, a list of candidates, a horizon and an objective, :func:`evaluate` forks
the state once per candidate, applies the candidate's changes, advances the fork over the
horizon and returns the objective of each fork, in the candidates' order.

* A **candidate** is a mapping ``{target: value}`` applied at the start of the horizon, or a
  list of ``(offset_s, target, value)`` changes (a schedule), with targets as in
  :meth:`twin.twin.Twin.set` (``controllers.do_reactor5.setpoint``, ``reactor3.kla_per_d``).
* The **objective** is a picklable callable ``objective(fork, start_s, end_s)`` that reads the
  fork's recorded window (see :mod:`twin.objectives`); ``record`` names the columns it reads, so
  the forks record nothing else (headless).
* **Executors**: ``serial``; ``process`` (default: a local process pool, one worker per core);
  ``dask`` (``pip install -e '.[dask]'``; a ``distributed.Client`` for ``scheduler`` or a
  ``LocalCluster``). The state goes to each worker once, as one pickled payload; a worker builds
  the shared read-only parts (compiled plant, tables) once and forks them per candidate.
  Every candidate starts from the same state, so results are identical whatever the executor
  and the number of workers.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Candidate = dict[str, float] | Sequence[tuple[int, str, float]]

EXECUTORS = ("serial", "process", "dask")


def _changes(candidate: Candidate) -> list[tuple[int, str, float]]:
    if isinstance(candidate, dict):
        return [(0, k, float(v)) for k, v in candidate.items()]
    out = []
    for item in candidate:
        off, target, value = item
        out.append((int(off), str(target), float(value)))
    return sorted(out, key=lambda c: c[0])


def payload_of(tw, record: list[str] | None, forecast: dict | None = None) -> bytes:
    """What a worker needs, pickled once: the scenario, its folder, the twin's state (without
    the recorded history when the forks are headless) and the forecast that replaces the
    future of the influent and weather (None: the twin's own future, a perfect forecast)."""
    snap = tw.snapshot()
    if record is not None:  # headless forks keep only the sample already taken now
        keep = [k for k, t in enumerate(snap["rec_times"]) if t >= snap["now"]]
        snap["rec_times"] = [snap["rec_times"][k] for k in keep]
        snap["rec_rows"] = [snap["rec_rows"][k] for k in keep]
    return pickle.dumps({"scenario": tw.scenario.to_dict(), "base_dir": str(tw.shared.base_dir or ""),
                         "snapshot": snap, "record": record, "forecast": forecast},
                        protocol=pickle.HIGHEST_PROTOCOL)


def _back(t, from_s: int, period_s: int):
    """The time whole periods before ``t`` that was already seen at ``from_s``: one period back
    within the first period of the horizon, two within the second, and so on (a horizon longer
    than the period repeats the last seen period; it never reads past ``from_s``)."""
    import numpy as np

    k = np.maximum(1, np.ceil((t - from_s) / period_s))
    return t - k * period_s


def influent_history(shared):
    """The influent tables of every phase on the twin's clock: (times s, values (n, columns))."""
    import numpy as np

    starts = np.cumsum([0] + [dur for _, dur, _ in shared.phases[:-1]])
    times = np.concatenate([s + tb.times_s for s, tb in zip(starts, shared.tables)])
    return times, np.vstack([tb.values for tb in shared.tables])


def persistence(shared, from_s: int, horizon_s: int, period_s: int):
    """The shared parts with the influent and weather of ``[from_s, from_s + horizon_s]``
    replaced by what was seen ``period_s`` earlier (a persistence forecast: the same hours of the
    last day or week), across influent phases (a warm-up day is history); before the data
    start, the earliest values are used. A horizon longer than the period repeats the last
    period seen (the forecast never reads the future)."""
    import copy

    import numpy as np

    starts = np.cumsum([0] + [dur for _, dur, _ in shared.phases[:-1]])
    hist_t, hist_v = influent_history(shared)
    temps = [tb.temperature_degC for tb in shared.tables]
    hist_T = np.concatenate(temps) if all(x is not None for x in temps) else None
    new = copy.copy(shared)
    new.tables = []
    end = from_s + horizon_s
    for start, table in zip(starts, shared.tables):
        t_abs = start + table.times_s
        sel = (t_abs >= from_s) & (t_abs <= end)
        if not np.any(sel):
            new.tables.append(table)
            continue
        t2 = copy.copy(table)
        t2.values = table.values.copy()
        src = np.maximum(_back(t_abs[sel], from_s, period_s), hist_t[0])
        for j in range(table.values.shape[1]):
            t2.values[sel, j] = np.interp(src, hist_t, hist_v[:, j])
        if hist_T is not None:
            t2.temperature_degC = table.temperature_degC.copy()
            t2.temperature_degC[sel] = np.interp(src, hist_t, hist_T)
        new.tables.append(t2)
    w = shared.weather
    if w is not None and w.times_s.size > 1:
        sel = (w.times_s >= from_s) & (w.times_s <= end)
        if np.any(sel):
            w2 = copy.copy(w)
            w2.values = w.values.copy()
            src = np.maximum(_back(w.times_s[sel], from_s, period_s), w.times_s[0])
            for j in range(w.values.shape[1]):
                w2.values[sel, j] = np.interp(src, w.times_s, w.values[:, j])
            new.weather = w2
    return new


def noisy(shared, from_s: int, horizon_s: int, sd: float, correlation_s: float, seed: int):
    """The shared parts with the influent of ``[from_s, from_s + horizon_s]`` replaced by its
    true values times a seeded forecast error: ``exp(e(t))`` with ``e`` a stationary AR(1)
    (Gauss-Markov) process of standard deviation ``sd`` and correlation time ``correlation_s``
    (the correlation of two errors ``dt`` apart is ``exp(-dt / correlation_s)``), one process
    for the flow and one for all concentrations (a load forecast keeps the wastewater's
    composition). A forecast with a known, stated error, for testing how a plan holds up when
    the day differs from what was expected; the error model is a common choice for load
    forecast residuals, not fitted to any plant."""
    import copy

    import numpy as np

    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(from_s)]))
    starts = np.cumsum([0] + [dur for _, dur, _ in shared.phases[:-1]])
    new = copy.copy(shared)
    new.tables = []
    end = from_s + horizon_s
    for start, table in zip(starts, shared.tables):
        t_abs = start + table.times_s
        sel = np.nonzero((t_abs >= from_s) & (t_abs <= end))[0]
        if sel.size == 0:
            new.tables.append(table)
            continue
        e = np.zeros((sel.size, 2))
        e[0] = sd * rng.standard_normal(2)
        for k in range(1, sel.size):
            rho = float(np.exp(-(t_abs[sel[k]] - t_abs[sel[k - 1]]) / correlation_s)) if correlation_s > 0 else 0.0
            e[k] = rho * e[k - 1] + sd * np.sqrt(1.0 - rho * rho) * rng.standard_normal(2)
        t2 = copy.copy(table)
        t2.values = table.values.copy()
        t2.values[sel, 0] *= np.exp(e[:, 0])
        t2.values[sel, 1:] *= np.exp(e[:, 1])[:, None]
        new.tables.append(t2)
    return new


def forecast_shared(shared, forecast: dict | None):
    if not forecast or forecast.get("kind", "perfect") == "perfect":
        return shared
    if forecast["kind"] == "persistence":
        return persistence(shared, forecast["from_s"], forecast["horizon_s"], forecast["period_s"])
    if forecast["kind"] == "noisy":
        return noisy(shared, forecast["from_s"], forecast["horizon_s"], forecast["sd"], forecast["correlation_s"],
                     forecast["seed"])
    raise ValueError(f"unknown forecast kind '{forecast['kind']}'")


class _Base:
    """A worker's copy of the state: the shared parts built once, forked per candidate."""

    def __init__(self, payload: bytes, shared=None) -> None:
        from twin.scenario import validate_scenario
        from twin.twin import Shared

        d = pickle.loads(payload)
        self.snapshot = d["snapshot"]
        self.record = d["record"]
        if shared is None:
            scenario = validate_scenario(d["scenario"], "scenario")
            shared = Shared.build(scenario, Path(d["base_dir"]) if d["base_dir"] else None)
        self.shared = forecast_shared(shared, d.get("forecast"))

    def run(self, candidate: Candidate, horizon_s: int, objective: Callable) -> Any:
        return self.run_timed(candidate, horizon_s, objective)[0]

    def run_timed(self, candidate: Candidate, horizon_s: int, objective: Callable) -> tuple[Any, tuple]:
        """The objective and the wall time (s) spent forking, simulating and in the objective."""
        from twin.twin import Twin

        w0 = time.perf_counter()
        fork = Twin(self.shared, snapshot=self.snapshot, record=self.record, lean=self.record is not None)
        if fork.plan is not None:
            fork.plan.changes = []  # the candidate is the plan, scored open loop (no fallback)
            fork.optimiser.plan_active = False
        w1 = time.perf_counter()
        t0 = fork.now
        for off, target, value in _changes(candidate):
            if off > horizon_s:
                continue
            fork.advance_to(t0 + off)
            fork.set(target, value, reason="candidate")
        fork.advance_to(t0 + horizon_s + 1)
        w2 = time.perf_counter()
        out = objective(fork, t0, t0 + horizon_s)
        return out, (w1 - w0, w2 - w1, time.perf_counter() - w2)


_WORKER: dict[str, _Base] = {}


def _init_worker(payload: bytes) -> None:
    _WORKER["base"] = _Base(payload)


def _run_in_worker(args) -> Any:
    candidate, horizon_s, objective = args
    return _WORKER["base"].run_timed(candidate, horizon_s, objective)


def _dask_run(payload: bytes, key: str, candidate, horizon_s: int, objective) -> Any:
    base = _WORKER.get(key)
    if base is None:
        _WORKER.clear()
        base = _WORKER[key] = _Base(payload)
    return base.run_timed(candidate, horizon_s, objective)


class Evaluator:
    """Evaluations of candidates from one state, with the workers (and the state in them) kept
    for as many batches as needed: ``with Evaluator(tw, horizon, objective) as ev:
    ev.map(candidates)``. The state is sent to each worker once. With ``record`` the forks are
    headless and lean (:class:`twin.twin.Twin`): they record only those columns, and the
    instruments whose readings are not among them are not built (an objective reads the
    recorded columns)."""

    def __init__(self, tw, horizon: str | int, objective: Callable, executor: str = "process",
                 workers: int | None = None, record: list[str] | None = None, scheduler: str | None = None,
                 client: Any = None, forecast: dict | None = None) -> None:
        from twin.durations import parse_duration

        if executor not in EXECUTORS:
            raise ValueError(f"unknown executor '{executor}'; known: {', '.join(EXECUTORS)}")
        self.horizon_s = parse_duration(horizon) if isinstance(horizon, str) else int(horizon)
        if self.horizon_s <= 0:
            raise ValueError("the horizon must be positive")
        if tw.now + self.horizon_s > tw.end_s:
            raise ValueError(f"the horizon ends at {(tw.now + self.horizon_s) / 86400:g} d, after the scenario's "
                             f"end ({tw.end_s / 86400:g} d)")
        self.objective = objective
        self.executor = executor
        self.workers = workers or os.cpu_count() or 1
        self.payload = payload_of(tw, record, forecast)
        self.tw = tw
        self.scheduler, self.client = scheduler, client
        self._pool = self._own = self._cluster = self._shared = None
        self._base = None
        #: wall time (s) the candidates spent forking, simulating and in the objective, summed
        #: over the workers (with several workers it exceeds the elapsed time)
        self.timing = {"fork_s": 0.0, "simulate_s": 0.0, "objective_s": 0.0, "candidates": 0}

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        if self._own is not None:
            self._own.close()
            if self._cluster is not None:
                self._cluster.close()
            self._own = self._cluster = None

    def map(self, candidates: Sequence[Candidate]) -> list:
        timed = self._map(candidates)
        for _, (f, s, o) in timed:
            self.timing["fork_s"] += f
            self.timing["simulate_s"] += s
            self.timing["objective_s"] += o
        self.timing["candidates"] += len(timed)
        return [r for r, _ in timed]

    def _map(self, candidates: Sequence[Candidate]) -> list:
        jobs = [(c, self.horizon_s, self.objective) for c in candidates]
        if not jobs:
            return []
        if self.executor == "serial":
            if self._base is None:
                self._base = _Base(self.payload, shared=self.tw.shared)
            return [self._base.run_timed(*j) for j in jobs]
        if self.executor == "process":
            if self._pool is None:
                import multiprocessing as mp
                from concurrent.futures import ProcessPoolExecutor

                ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
                self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                                 initializer=_init_worker, initargs=(self.payload,))
            n = self.workers
            return list(self._pool.map(_run_in_worker, jobs, chunksize=max(1, len(jobs) // (4 * n))))
        if self.client is None:
            try:
                from distributed import Client, LocalCluster
            except ImportError:
                raise RuntimeError("the dask executor needs dask.distributed: pip install -e '.[dask]'") from None
            if self.scheduler:
                self.client = self._own = Client(self.scheduler)
            else:
                self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                             dashboard_address=None)
                self.client = self._own = Client(self._cluster)
        if self._shared is None:
            self._key = hashlib.sha256(self.payload).hexdigest()
            self._shared = self.client.scatter(self.payload, broadcast=True)
        futures = [self.client.submit(_dask_run, self._shared, self._key, c, h, o, pure=False) for c, h, o in jobs]
        return self.client.gather(futures)


def evaluate(tw, candidates: Sequence[Candidate], horizon: str | int, objective: Callable,
             executor: str = "process", workers: int | None = None, record: list[str] | None = None,
             scheduler: str | None = None, client: Any = None, forecast: dict | None = None) -> list:
    """Evaluate every candidate on a fork of ``tw`` over ``horizon`` (a duration string or
    seconds) and return the objectives in the candidates' order."""
    if not candidates:
        return []
    with Evaluator(tw, horizon, objective, executor, min(workers or os.cpu_count() or 1, len(candidates)), record,
                   scheduler, client, forecast) as ev:
        return ev.map(candidates)
