"""Checkpoints of a run: save its whole state every so often, resume a killed run from the last one.

A resumed run gives the same results, bit for bit, as an uninterrupted one with the same seed:

* the run is stopped *between* events (``env.run(until=T)`` processes every event before ``T``
  and none at ``T``), so no process is half-way through a step;
* every process of a run is started with :meth:`TwinEnvironment.start`: its state lives in
  objects (plant, loops, equipment, fleet, maintenance agent) that are saved, and its factory
  can restart it at the timeout it was waiting for. The processes are restarted in the order
  their pending events had in SimPy's queue (time, priority, event id), so that events at equal
  times keep their order; work orders waiting for a crew or a spare part are re-queued in their
  queues' order;
* the plant is saved at its last synchronisation, not synchronised for the checkpoint, so the
  integrator takes the same steps; random generators are saved with their state.

The folder holds ``state.pkl`` (written to a temporary name and renamed, so a kill while
saving leaves the previous checkpoint), ``checkpoint.json`` (the simulated time of the checkpoint
and the checkpoint interval of the run that wrote it, so that a resumed run keeps that interval
and the command line can say where it resumes) and the recorded samples in one ``rows.NNNN.npz`` per
checkpoint (only the samples since the previous one). Checkpoints are tied to the resolved
scenario (a hash of it, the checkpoint interval aside) and to this version of the package; a
mismatch is refused. Runs with an identification test or an adaptive monitor running in the
main period cannot be checkpointed (their SimPy processes nest other processes).
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from twin.errors import ConfigError

FORMAT = 1


class Halted(Exception):
    """Raised after ``halt_after`` checkpoints (to test resuming a killed run in-process)."""


@dataclass
class Checkpointing:
    folder: Path
    every_s: int | None = None  # None: write no checkpoints
    resume: bool = False
    halt_after: int | None = None  # stop (raise Halted) after this many checkpoints written
    on_save: Any = None  # called with (number, saved state) after each checkpoint


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("plant-twin")
    except Exception:  # noqa: BLE001 (not installed: source tree)
        return "source"


def scenario_key(scenario) -> str:
    """Hash of the resolved scenario (without its checkpoint interval) and the package version."""
    d = scenario.to_dict()
    d.get("outputs", {}).pop("checkpoint_every", None)
    text = repr(sorted(_flatten(d))) + _version()
    return hashlib.sha256(text.encode()).hexdigest()


def _flatten(d, prefix=""):
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _flatten(v, f"{prefix}{k}.")
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield from _flatten(v, f"{prefix}{i}.")
    else:
        yield (prefix, repr(d))


def check_supported(scenario) -> None:
    """Refuse, before running, a scenario whose processes cannot be saved."""
    for name, c in scenario.controllers.items():
        if c.enabled and c.adaptive.enabled and c.adaptive.method != "model_gain":
            raise ConfigError(f"outputs.checkpoint_every: loop '{name}' retunes adaptively "
                              f"(controllers.{name}.adaptive), which cannot be checkpointed")
        if c.enabled and c.autotune.enabled and c.autotune.at != "initial":
            raise ConfigError(f"outputs.checkpoint_every: loop '{name}' is auto-tuned during the run "
                              f"(controllers.{name}.autotune.at), which cannot be checkpointed")


def checkpoint_info(folder: Path) -> dict | None:
    """``{"now_s", "every_s"}`` of the last checkpoint in ``folder`` (None if there is none)."""
    folder = Path(folder)
    if not (folder / "state.pkl").exists():
        return None
    import json

    try:
        info = json.loads((folder / "checkpoint.json").read_text())
        return {"now_s": int(info["now_s"]), "every_s": info.get("every_s")}
    except (OSError, ValueError, KeyError, TypeError):  # written by an earlier version: read the state itself
        with open(folder / "state.pkl", "rb") as fh:
            state = pickle.load(fh)
        return {"now_s": int(state["now"]), "every_s": state.get("every_s")}


class Checkpointer:
    """Saves and restores the state of one run. ``parts`` maps a name to an object with
    ``checkpoint_state()`` and ``restore_state(state)``."""

    def __init__(self, spec: Checkpointing, scenario, env, parts: dict[str, Any]):
        self.spec = spec
        self.env = env
        self.parts = parts
        self.key = scenario_key(scenario)
        self.folder = Path(spec.folder)
        self.chunks: list[str] = []
        self.saved_rows = 0
        self.written = 0

    # -- loading --------------------------------------------------------------------------
    @staticmethod
    def read(folder: Path, scenario) -> dict:
        path = Path(folder) / "state.pkl"
        if not path.exists():
            raise ConfigError(f"--resume: no checkpoint in {folder} (run with --checkpoint-every first)")
        with open(path, "rb") as fh:
            state = pickle.load(fh)
        if state.get("format") != FORMAT or state.get("key") != scenario_key(scenario):
            raise ConfigError(f"--resume: the checkpoint in {folder} was written by a different scenario, seed or "
                              "version of plant twin; remove it or run without --resume")
        return state

    def restore(self, state: dict) -> None:
        """Put the saved state into the freshly built run and restart its processes."""
        env = self.env
        env.set_clock(state["now"])
        for name, obj in self.parts.items():
            obj.restore_state(state["parts"][name])
        env.events.records = state["events"]
        rec = env.recorder
        rec._times, rec._rows = [], []
        for name in state["chunks"]:
            with np.load(self.folder / name) as z:
                rec._times += z["times"].tolist()
                rec._rows += list(z["rows"])
        self.chunks = list(state["chunks"])
        self.saved_rows = len(rec._times)
        env.restart(state["now"], state["pending"])
        env.log("resumed", "run", f"resumed from the checkpoint at {state['now'] / 86400:g} d")

    # -- saving ---------------------------------------------------------------------------
    def save(self) -> None:
        env = self.env
        self.folder.mkdir(parents=True, exist_ok=True)
        pending = env.pending()
        rec = env.recorder
        if len(rec._times) > self.saved_rows:
            name = f"rows.{len(self.chunks):04d}.npz"
            rows = np.vstack(rec._rows[self.saved_rows:])
            with open(self.folder / name, "wb") as fh:
                np.savez(fh, times=np.array(rec._times[self.saved_rows:], dtype=np.int64), rows=rows)
            self.chunks.append(name)
            self.saved_rows = len(rec._times)
        state = {"format": FORMAT, "key": self.key, "now": int(env.now), "pending": pending,
                 "parts": {name: obj.checkpoint_state() for name, obj in self.parts.items()},
                 "events": env.events.records, "chunks": list(self.chunks), "every_s": self.spec.every_s}
        tmp = self.folder / "state.pkl.tmp"
        with open(tmp, "wb") as fh:
            pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.folder / "state.pkl")
        import json

        tmp = self.folder / "checkpoint.json.tmp"
        tmp.write_text(json.dumps({"now_s": int(env.now), "every_s": self.spec.every_s}) + "\n")
        os.replace(tmp, self.folder / "checkpoint.json")
        self.written += 1
        if self.spec.on_save is not None:
            self.spec.on_save(self.written, state)
        if self.spec.halt_after is not None and self.written >= self.spec.halt_after:
            raise Halted(f"halted after {self.written} checkpoint(s) at {env.now} s")

    def drive(self, until: int) -> None:
        """``env.run(until=until)``, stopping to save every ``every_s`` of simulated time."""
        env = self.env
        every = self.spec.every_s
        if every:
            t = (env.now // every + 1) * every
            while t < until:
                env.run(until=t)
                self.save()
                t += every
        env.run(until=until)


def run_clock(env, until: int, checkpointer: Checkpointer | None) -> None:
    if checkpointer is None:
        env.run(until=until)
    else:
        checkpointer.drive(until)
