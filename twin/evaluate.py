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


def payload_of(tw, record: list[str] | None) -> bytes:
    """What a worker needs, pickled once: the scenario, its folder and the twin's state (without
    the recorded history when the forks are headless)."""
    snap = tw.snapshot()
    if record is not None:
        snap["rec_times"], snap["rec_rows"] = [], []
    return pickle.dumps({"scenario": tw.scenario.to_dict(), "base_dir": str(tw.shared.base_dir or ""),
                         "snapshot": snap, "record": record}, protocol=pickle.HIGHEST_PROTOCOL)


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
        self.shared = shared

    def run(self, candidate: Candidate, horizon_s: int, objective: Callable) -> Any:
        from twin.twin import Twin

        fork = Twin(self.shared, snapshot=self.snapshot, record=self.record)
        t0 = fork.now
        for off, target, value in _changes(candidate):
            if off > horizon_s:
                continue
            fork.advance_to(t0 + off)
            fork.set(target, value, reason="candidate")
        fork.advance_to(t0 + horizon_s + 1)
        return objective(fork, t0, t0 + horizon_s)


_WORKER: dict[str, _Base] = {}


def _init_worker(payload: bytes) -> None:
    _WORKER["base"] = _Base(payload)


def _run_in_worker(args) -> Any:
    candidate, horizon_s, objective = args
    return _WORKER["base"].run(candidate, horizon_s, objective)


def _dask_run(payload: bytes, key: str, candidate, horizon_s: int, objective) -> Any:
    base = _WORKER.get(key)
    if base is None:
        _WORKER.clear()
        base = _WORKER[key] = _Base(payload)
    return base.run(candidate, horizon_s, objective)


def evaluate(tw, candidates: Sequence[Candidate], horizon: str | int, objective: Callable,
             executor: str = "process", workers: int | None = None, record: list[str] | None = None,
             scheduler: str | None = None, client: Any = None) -> list:
    """Evaluate every candidate on a fork of ``tw`` over ``horizon`` (a duration string or
    seconds) and return the objectives in the candidates' order."""
    from twin.durations import parse_duration

    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor '{executor}'; known: {', '.join(EXECUTORS)}")
    horizon_s = parse_duration(horizon) if isinstance(horizon, str) else int(horizon)
    if horizon_s <= 0:
        raise ValueError("the horizon must be positive")
    if tw.now + horizon_s > tw.end_s:
        raise ValueError(f"the horizon ends at {(tw.now + horizon_s) / 86400:g} d, after the scenario's end "
                         f"({tw.end_s / 86400:g} d)")
    payload = payload_of(tw, record)
    jobs = [(c, horizon_s, objective) for c in candidates]
    if executor == "serial" or not jobs:
        base = _Base(payload, shared=tw.shared)
        return [base.run(*j) for j in jobs]
    if executor == "process":
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        n = min(workers or os.cpu_count() or 1, len(jobs))
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
        with ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init_worker,
                                 initargs=(payload,)) as pool:
            return list(pool.map(_run_in_worker, jobs, chunksize=max(1, len(jobs) // (4 * n))))
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise RuntimeError("the dask executor needs dask.distributed: pip install -e '.[dask]'") from None
    own = None
    if client is None:
        if scheduler:
            client = own = Client(scheduler)
        else:
            cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                   processes=True, dashboard_address=None)
            client = own = Client(cluster)
    try:
        key = hashlib.sha256(payload).hexdigest()
        shared = client.scatter(payload, broadcast=True)
        futures = [client.submit(_dask_run, shared, key, c, h, o, pure=False) for c, h, o in jobs]
        return client.gather(futures)
    finally:
        if own is not None:
            cluster = getattr(own, "cluster", None)
            own.close()
            if cluster is not None:
                cluster.close()
