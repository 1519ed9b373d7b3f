"""The one clock: a SimPy environment that also owns the RNG, the scenario, the recorder and the event log.

Simulated time ``env.now`` is an integer number of seconds (ticks, see
:mod:`twin.durations`) since the start of the run (the start of the first warm-up
phase). Nothing else keeps its own time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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

    def add_probe(self, names: list[str], fn: Callable[[], np.ndarray]) -> None:
        if self._times:
            raise RuntimeError("probes must be registered before the first sample")
        self._probes.append((list(names), fn))

    @property
    def columns(self) -> list[str]:
        return [n for names, _ in self._probes for n in names]

    def sample(self, time_s: int) -> None:
        row = np.concatenate([np.asarray(fn(), dtype=float) for _, fn in self._probes])
        self._times.append(int(time_s))
        self._rows.append(row)

    def table(self) -> tuple[np.ndarray, list[str], np.ndarray]:
        """(times in s, column names, values (n_samples, n_columns))."""
        cols = self.columns
        if not self._rows:
            return np.zeros(0, dtype=np.int64), cols, np.zeros((0, len(cols)))
        return np.array(self._times, dtype=np.int64), cols, np.vstack(self._rows)


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
