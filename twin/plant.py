"""The continuous plant inside the discrete-event clock.

:class:`Plant` holds the flat state vector of a compiled flowsheet and advances it
lazily: before anything reads a signal or changes an input, :meth:`Plant.sync`
integrates from the last synchronised time to ``env.now`` with the inputs held (or
ramped, for interpolated boundary data). An input change therefore always falls on a
step boundary: no step ever integrates across it.

Derived quality signals (what instruments on a real plant show, from the model's states):

* ``<stream>.TSS`` (g SS/m3): 0.75 x particulate COD (BSM1's COD-to-SS conversion).
* ``<stream>.turbidity_NTU``: TSS / 2.2. Turbidity and TSS are proportional for a given
  water, with a site-specific factor; for settled secondary effluent Metcalf & Eddy
  (*Wastewater Engineering*, 5th ed., 2014, section 2-3) give TSS = (2.0 to 2.4) x NTU: we
  use the middle of that range (:data:`TSS_PER_NTU`). Valid for clarified effluent, not for
  mixed liquor (a turbidimeter saturates there).
* DO is a state (``reactor5.SO``).
* pH and conductivity are *not* derived: ASM1 carries alkalinity but no inorganic carbon or
  background ions, and no documented correlation gives either from ASM1's states alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from twin.durations import TICKS_PER_DAY
from twin.errors import ConfigError, SolverError
from twin.flowsheet import CompiledPlant
from twin.integrate import STATUS_MESSAGES
from twin.units.asm1 import IDX, NAMES, TSS_PER_COD
from twin.units.base import did_you_mean

#: g TSS/m3 per NTU in settled secondary effluent (Metcalf & Eddy 2014: 2.0 to 2.4)
TSS_PER_NTU = 2.2


class Plant:
    def __init__(self, env, compiled: CompiledPlant, solver) -> None:
        self.env = env
        self.cp = compiled
        self.x = compiled.x_default.copy()
        self.u = compiled.u_default.copy()
        self.du = np.zeros_like(self.u)
        self.t_sync = env.now
        self.h = 1e-4
        self.rtol = float(solver.rtol)
        self.atol = float(solver.atol)
        self.h_max = solver.max_step / TICKS_PER_DAY
        self.max_steps = int(solver.max_steps_per_event)
        self.steps = 0
        self.rhs_evals = 0
        #: algebraic signals solved outside the ODE (see UnitModel.external_signals), by name
        self.aux: dict[str, float] = {}
        #: reuse stream values between changes of the state or inputs (switched on once a run's
        #: setup, which writes x and u directly, is over)
        self.cache_streams = False
        self._version = 0
        self._cache_key: tuple | None = None
        self._cache = None

    # -- time ---------------------------------------------------------------------------
    def sync(self) -> None:
        """Integrate from the last synchronised time to ``env.now``."""
        now = self.env.now
        if now == self.t_sync:
            return
        t0 = self.t_sync / TICKS_PER_DAY
        t1 = now / TICKS_PER_DAY
        t, h, steps, nfev, status, bad = self.cp.advance(
            self.x, self.u, self.du, t0, t1, self.h, self.rtol, self.atol, self.h_max, self.max_steps,
            self.cp.M, self.cp.P)
        self.steps += steps
        self.rhs_evals += nfev
        if status != 0:
            self._fail(status, bad, t)
        # keep the ramp of interpolated inputs continuous across the sync point
        self.u = self.u + (t1 - t0) * self.du
        self.h = h
        self.t_sync = now
        self._version += 1

    _SAVED = ("x", "u", "du", "t_sync", "h", "steps", "rhs_evals", "aux")

    def checkpoint_state(self) -> dict:
        """The state at the last synchronisation (not synchronised now: a saved run continues
        with exactly the integration steps an uninterrupted one takes)."""
        return {k: getattr(self, k) for k in self._SAVED}

    def restore_state(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)
        self._version += 1

    def streams(self) -> tuple[np.ndarray, np.ndarray]:
        """Flows (m3/d) and concentrations of every stream now (read-only arrays)."""
        self.sync()
        key = (self.env.now, self._version)
        if self.cache_streams and self._cache_key == key:
            return self._cache
        Q, C = self.cp.stream_values(self.env.now_d, self.x, self.u)
        if self.cache_streams:
            self._cache_key, self._cache = key, (Q, C)
        return Q, C

    def _fail(self, status: int, bad: int, t_d: float) -> None:
        what = STATUS_MESSAGES.get(status, f"status {status}")
        if status == 1 and bad >= 0:
            unit = self.cp.unit_of_state(bad)
            detail = f"in unit '{unit}' (state {self.cp.state_names[bad]})"
        elif status == 3 and bad >= 0:
            unit = next(c.src_unit for c in self.cp.flowsheet.connections if c.name == self.cp.stream_names[bad])
            detail = f"in stream '{self.cp.stream_names[bad]}' leaving unit '{unit}'"
        else:
            unit = None
            detail = ""
        raise SolverError(f"integration failed at t = {t_d:.6f} d: {what} {detail}".rstrip(),
                          time_s=int(round(t_d * TICKS_PER_DAY)), unit=unit)

    # -- inputs ---------------------------------------------------------------------------
    def set_input(self, index: int, value: float, slope_per_d: float = 0.0) -> None:
        self.sync()
        self.u[index] = value
        self.du[index] = slope_per_d
        self._version += 1

    def set_inputs(self, index: np.ndarray, values: np.ndarray, slopes_per_d: np.ndarray | None = None) -> None:
        self.sync()
        self.u[index] = values
        self.du[index] = 0.0 if slopes_per_d is None else slopes_per_d
        self._version += 1

    # -- signals ---------------------------------------------------------------------------
    def signal_reader(self, name: str):
        """A function returning the current value of a named signal (state, input or stream)."""
        cp = self.cp
        if name in cp.state_index:
            i = cp.state_index[name]
            return lambda: (self.sync(), self.x[i])[1]
        if name in cp.input_index:
            i = cp.input_index[name]
            return lambda: (self.sync(), self.u[i])[1]
        uname, _, sig = name.partition(".")
        if uname in cp.units and sig in dict(cp.units[uname].external_signals()):
            return lambda: self.aux.get(name, float("nan"))
        stream, _, comp = name.rpartition(".")
        if stream in cp.stream_index and (comp in IDX or comp in ("Q", "TSS", "turbidity_NTU")):
            k = cp.stream_index[stream]
            solids = [IDX[n] for n in ("XI", "XS", "XBH", "XBA", "XP")]

            def read():
                Q, C = self.streams()
                if comp == "Q":
                    return Q[k]
                if comp == "TSS":
                    return TSS_PER_COD * float(np.sum(C[k, solids]))
                if comp == "turbidity_NTU":
                    return TSS_PER_COD * float(np.sum(C[k, solids])) / TSS_PER_NTU
                return C[k, IDX[comp]]
            return read
        options = list(cp.state_index) + list(cp.input_index)
        raise ConfigError(f"unknown signal '{name}'{did_you_mean(name, options)}; signals are unit states "
                          f"(reactor5.SO), inputs (reactor5.kla_per_d) or stream values (effluent.SNH, reactor5_out.TSS, "
                          f"effluent.turbidity_NTU)")

    def solids_inventory_kg(self) -> float:
        total = 0.0
        for uname, unit in self.cp.units.items():
            total += unit.solids_inventory_kg(self.x[self.cp.state_slices[uname]])
        return total

    def recorder_probes(self, settler_layers: bool = True) -> list[tuple[list[str], Any]]:
        """Column names and probes: every stream (flow, concentrations, TSS), every input (names
        carry their unit), optionally the settler layers' TSS, and the solids inventory. Separate
        probes, so that a recorder that keeps only some columns calls only what gives them."""
        cp = self.cp
        comp_cols = [f"{n}_mol_m3" if n == "SALK" else f"{n}_g_m3" for n in NAMES]
        cols: list[str] = []
        for s in cp.stream_names:
            cols += [f"{s}.Q_m3_d"] + [f"{s}.{c}" for c in comp_cols] + [f"{s}.TSS_g_m3"]
        inputs = [i for i, n in enumerate(cp.input_names)
                  if cp.units[n.split(".")[0]].type_name != "influent"]
        input_cols = [cp.input_names[i] for i in inputs]
        layers: list[int] = []
        if settler_layers:
            for uname, unit in cp.units.items():
                if unit.type_name == "takacs_settler":
                    start = cp.state_slices[uname].start
                    layers += list(range(start, start + unit.params.layers))
        layer_cols = [f"{cp.state_names[i]}_g_m3" for i in layers]
        # a unit's own states that are not concentrations (a wet well's level, a heated tank's
        # temperature): the stream columns already carry every concentration
        own = [i for i, n in enumerate(cp.state_names)
               if cp.units[n.split(".")[0]].type_name not in ("takacs_settler", "asm1_reactor")
               and n.split(".", 1)[1] not in IDX]
        own_cols = [cp.state_names[i] for i in own]
        layers = own + layers
        solids = np.array([IDX[n] for n in ("XI", "XS", "XBH", "XBA", "XP")])
        inputs_arr = np.array(inputs, dtype=np.int64)
        layers_arr = np.array(layers, dtype=np.int64)

        def streams() -> np.ndarray:
            Q, C = self.streams()
            tss = TSS_PER_COD * C[:, solids].sum(axis=1)
            return np.concatenate([Q[:, None], C, tss[:, None]], axis=1).ravel()

        def states() -> np.ndarray:
            self.sync()
            return np.concatenate([self.u[inputs_arr], self.x[layers_arr]])

        def inventory() -> np.ndarray:
            self.sync()
            return np.array([self.solids_inventory_kg()])
        return [(cols, streams), (input_cols + own_cols + layer_cols, states), (["plant.solids_inventory_kg"], inventory)]
