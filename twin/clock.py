"""The one clock: a SimPy environment that also owns the RNG, the scenario, the recorder and the event log.

Simulated time ``env.now`` is an integer number of seconds (ticks, see
:mod:`twin.durations`) since the start of the run (the start of the first warm-up
phase). Nothing else keeps its own time.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from twin.durations import TICKS_PER_DAY


@dataclass
class EventLog:
    """Append-only log of decisions and happenings; one JSON object per line when written."""

    records: list[dict[str, Any]] = field(default_factory=list)

    def append(self, time_s: int, kind: str, source: str, message: str, **data: Any) -> None:
        self.records.append({"time_s": int(time_s), "time_d": time_s / TICKS_PER_DAY, "kind": kind,
                             "source": source, "message": message, **({"data": data} if data else {})})

    def to_jsonl(self) -> str:
        return "".join(json.dumps(r, sort_keys=True, default=_json_default) + "\n" for r in self.records)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


class Recorder:
    """Samples named signals on a fixed grid into columns.

    A *probe* returns a 1-D array of values for a fixed list of column names; probes are
    registered once and called at every sample, so recording is a few array copies.
    """

    def __init__(self) -> None:
        self._probes: list[tuple[list[str], Callable[[], np.ndarray]]] = []
        self._times: list[int] = []
        self._rows: list[np.ndarray] = []
        self.active = False
        #: only these columns are recorded (a headless fork); None: every column
        self.selected: list[str] | None = None
        self._plan: list[Callable[[], np.ndarray]] | None = None

    def add_probe(self, names: list[str], fn: Callable[[], np.ndarray]) -> None:
        if self._times:
            raise RuntimeError("probes must be registered before the first sample")
        self._probes.append((list(names), fn))

    @property
    def columns(self) -> list[str]:
        if self.selected is not None:
            return list(self.selected)
        return [n for names, _ in self._probes for n in names]

    def select(self, names: list[str]) -> None:
        """Record only ``names`` from now on (earlier samples are dropped): only the probes that
        give them are called. Unknown names are a KeyError."""
        known = [n for names_, _ in self._probes for n in names_]
        missing = [n for n in names if n not in known]
        if missing:
            from twin.units.base import did_you_mean

            raise KeyError(f"no recorder column '{missing[0]}'{did_you_mean(missing[0], known)}")
        where: dict[str, tuple[int, int]] = {}  # column -> (probe, position in its output)
        for k, (names_, _) in enumerate(self._probes):
            for j, n in enumerate(names_):
                where.setdefault(n, (k, j))
        needed = sorted({where[n][0] for n in names})
        within = dict(zip(needed, np.cumsum([0] + [len(self._probes[k][0]) for k in needed])))
        self._plan = [self._probes[k][1] for k in needed]
        self._take = np.array([within[where[n][0]] + where[n][1] for n in names], dtype=np.int64)
        self.selected = list(names)
        self._times, self._rows = [], []

    def load(self, times: list[int], rows: list[np.ndarray], since: int,
             columns: list[str] | None = None) -> None:
        """Put recorded samples back (a restored snapshot): all of them, or for a headless
        recorder those at or after ``since`` (the sample already taken now), cut to its columns.
        ``columns``: the columns of ``rows`` when they came from a headless recorder (None: every
        column); a full recorder restored from those gets NaN where nothing was recorded."""
        if self.selected is None and columns is None:
            self._times, self._rows = list(times), list(rows)
            return
        src = columns if columns is not None else [n for names, _ in self._probes for n in names]
        pos: dict[str, int] = {}
        for i, c in enumerate(src):
            pos.setdefault(c, i)  # a name given by two probes: the first, as ``select`` takes it
        if self.selected is not None:
            missing = [c for c in self.selected if c not in pos]
            if missing:
                raise KeyError(f"the snapshot did not record '{missing[0]}'")
            keep = [k for k, t in enumerate(times) if t >= since]
        else:
            keep = range(len(times))
        index = np.array([pos.get(c, len(src)) for c in self.columns], dtype=np.int64)  # len(src): NaN
        pad = bool(index.size) and int(index.max()) == len(src)
        self._times = [times[k] for k in keep]
        self._rows = [(np.append(np.asarray(rows[k], dtype=float), np.nan) if pad else np.asarray(rows[k]))[index]
                      for k in keep]

    def drop_before(self, time_s: int) -> None:
        """Forget the samples before ``time_s`` (a twin kept only for windows from then on)."""
        k = next((i for i, t in enumerate(self._times) if t >= time_s), len(self._times))
        del self._times[:k], self._rows[:k]

    def sample(self, time_s: int) -> None:
        if self._plan is not None:
            row = np.concatenate([np.asarray(fn(), dtype=float) for fn in self._plan])[self._take]
            self._times.append(int(time_s))
            self._rows.append(row)
            return
        row = np.concatenate([np.asarray(fn(), dtype=float) for _, fn in self._probes])
        self._times.append(int(time_s))
        self._rows.append(row)

    def table(self) -> tuple[np.ndarray, list[str], np.ndarray]:
        """(times in s, column names, values (n_samples, n_columns))."""
        cols = self.columns
        if not self._rows:
            return np.zeros(0, dtype=np.int64), cols, np.zeros((0, len(cols)))
        return np.array(self._times, dtype=np.int64), cols, np.vstack(self._rows)


class CheckpointError(RuntimeError):
    """The run's state cannot be saved or restored."""


def child_rng(seed: int, name: str) -> np.random.Generator:
    """The generator of component ``name`` under scenario seed ``seed`` (see TwinEnvironment.child_rng)."""
    key = [int(b) for b in name.encode()]
    return np.random.default_rng(np.random.SeedSequence([int(seed), *key]))


class TwinEnvironment(simpy.Environment):
    """SimPy environment of one run: time in integer seconds, seeded RNG, scenario, recorder, events."""

    def __init__(self, scenario: Any = None, seed: int = 0) -> None:
        super().__init__(initial_time=0)
        self.scenario = scenario
        self.seed = int(seed)
        self._seed_seq = np.random.SeedSequence(self.seed)
        self.rng = np.random.default_rng(self._seed_seq)
        self.recorder = Recorder()
        self.events = EventLog()
        #: processes a checkpoint can save: key -> (process, factory, stateless)
        self._tracked: dict[str, tuple[Any, Callable[[int | None], Generator], bool]] = {}
        self._all: weakref.WeakSet = weakref.WeakSet()
        #: while a saved run is rebuilt: key -> (factory, stateless), started by :meth:`restart`
        self.deferred: dict[str, tuple[Callable[[int | None], Generator], bool]] | None = None

    # -- processes a checkpoint can save -----------------------------------------------------
    def process(self, generator):  # noqa: D102 (simpy's, with bookkeeping)
        p = super().process(generator)
        self._all.add(p)
        return p

    def start(self, key: str, make: Callable[[int | None], Generator], stateless: bool = False):
        """Start a process that a checkpoint can save and a resumed run can restart.

        ``make(wake_at)`` returns the process's generator: with ``wake_at=None`` a fresh start;
        with a time, the process was waiting (for a timeout ending at ``wake_at``, or in a
        resource queue when that is ``None`` for a resumed process) and its generator must
        first wait until then (``yield env.timeout(wake_at - env.now)``, even for a zero
        delay: that keeps its place among events at the same time), then carry on. Its state
        lives in objects the checkpoint saves, never in generator locals. A ``stateless``
        process (progress display) is simply started afresh. Processes started with plain
        :meth:`process` cannot be saved: a checkpoint taken while one is alive fails.
        """
        if self.deferred is not None:
            self.deferred[key] = (make, stateless)
            return None
        old = self._tracked.get(key)
        if old is not None and old[0].is_alive:
            raise RuntimeError(f"process key '{key}' is already in use")
        p = self.process(make(None))
        self._tracked[key] = (p, make, stateless)
        return p

    def pending(self) -> list[tuple[int | None, int, int, str]]:
        """Where every live process waits, in the order its wake-up would be processed:
        (time, priority, event id, key) for a timeout in the event queue, (None, 0, 0, key)
        for a wait outside it (a resource or store queue). Only valid between events."""
        where = {id(e): (t, prio, eid) for t, prio, eid, e in self._queue}
        out: list[tuple[int | None, int, int, str]] = []
        seen = set()
        for key in [k for k, (p, _, _) in self._tracked.items() if not p.is_alive]:
            del self._tracked[key]  # finished work orders and deliveries
        for key, (p, _, stateless) in self._tracked.items():
            seen.add(id(p))
            if stateless:
                continue
            tgt = p.target
            if id(tgt) in where:
                if not isinstance(tgt, simpy.events.Timeout):
                    raise CheckpointError(f"process '{key}' waits on a triggered {type(tgt).__name__}")
                out.append((*where[id(tgt)], key))
            elif isinstance(tgt, (simpy.resources.base.Put, simpy.resources.base.Get)):
                out.append((None, 0, 0, key))
            else:
                raise CheckpointError(f"process '{key}' waits on a {type(tgt).__name__}, which cannot be saved")
        for p in list(self._all):
            if p.is_alive and id(p) not in seen:
                raise CheckpointError(f"process '{p.name}' cannot be saved (an identification test or an "
                                      "adaptive monitor is running)")
        return sorted(out, key=lambda r: (r[0] is not None, r[0] or 0, r[1], r[2]))

    def set_clock(self, now: int) -> None:
        """Put the clock of a freshly built environment at ``now`` before saved parts are restored
        into it: what they queue while restoring (a work order's request for a crew, granted at
        once) must be queued at the saved time, not at 0, or the first step would turn the clock
        back."""
        self._now = int(now)

    def restart(self, now: int, pending: list[tuple[int | None, int, int, str]],
                optional: tuple[str, ...] = ()) -> None:
        """Resume at time ``now`` the processes of a checkpoint, in their saved order (so that
        their wake-ups at equal times keep their order), then the stateless ones. A saved process
        this run does not build is an error, unless its key starts with one of ``optional``
        (what a lean fork leaves out)."""
        deferred, self.deferred = self.deferred or {}, None
        self._now = int(now)
        for t, _, _, key in pending:
            if key not in deferred:
                if optional and key.startswith(optional):
                    continue
                raise CheckpointError(f"the checkpoint has a process '{key}' that this run does not build")
            make, _ = deferred.pop(key)
            self._tracked[key] = (self.process(make(t)), make, False)
        for key, (make, stateless) in deferred.items():
            if stateless:
                self._tracked[key] = (self.process(make(None)), make, True)

    def settle(self) -> None:
        """Run the processes started just now up to their first wait (their ``Initialize``
        events at the head of the queue), as the first ``run`` would do before anything else:
        after that every process waits somewhere a snapshot can see."""
        init = simpy.events.Initialize
        while self._queue and self._queue[0][0] == self._now and isinstance(self._queue[0][3], init):
            self.step()

    def child_rng(self, name: str) -> np.random.Generator:
        """An independent generator for one component, stable whatever else draws numbers.

        Derived from the scenario seed and the component name, so adding a component
        does not change the random numbers of the others.
        """
        return child_rng(self.seed, name)

    @property
    def now_d(self) -> float:
        return self.now / TICKS_PER_DAY

    def log(self, kind: str, source: str, message: str, **data: Any) -> None:
        self.events.append(self.now, kind, source, message, **data)
