"""Steady state of a compiled plant, optionally with ideal integral controllers.

Method: integrate with constant inputs for a settling period (the explicit integrator,
fast and robust far from equilibrium), then solve ``f(x, u) = 0`` with a Newton-type root
finder (SciPy ``root``, MINPACK hybrid method) to remove the remaining slow drift (sludge
age ~ 10 days makes plain integration converge slowly). A controller with integral
action holds its measurement at the setpoint at steady state, so each active loop adds
its actuator as an unknown and ``y - setpoint = 0`` as an equation; when the solution
would put an actuator outside its limits, that actuator is fixed at the limit instead.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import root

from twin.errors import SolverError


def solve_steady_state(cp, x0: np.ndarray, u: np.ndarray, loops: list[tuple[int, int, float, float, float]],
                       settle_d: float, rtol: float, atol: float, h_max_d: float,
                       chunk_d: float = 15.0) -> tuple[np.ndarray, np.ndarray, dict]:
    """Return (x, u, info). ``loops``: (state index measured, input index, setpoint, u_min, u_max).

    Integrates in chunks of ``chunk_d`` days and tries the root finder after each; gives up
    after ``settle_d`` days of integration and keeps the integrated state (``info`` says so).
    """
    x = x0.copy()
    u = u.copy()
    du = np.zeros_like(u)
    settled = 0.0
    info: dict = {}
    while True:
        step = min(chunk_d, settle_d - settled) if settle_d > settled else 0.0
        if step > 0:
            t, h, steps, nfev, status, bad = cp.advance(x, u, du, settled, settled + step, 1e-4, rtol, atol,
                                                        h_max_d, 10**9, cp.M, cp.P)
            if status != 0:
                raise SolverError(f"steady-state settling failed at t = {t:.4f} d (status {status}, "
                                  f"unit '{cp.unit_of_state(bad) if bad >= 0 else '?'}')")
            settled += step
        info["settle_days"] = settled
        xs, us, ok, note = _newton(cp, x, u, loops)
        if not ok and loops:
            xs, us, ok, note = _continuation(cp, x, u, loops)
        info["root"] = note
        if ok:
            return xs, us, info
        if settled >= settle_d:
            info["root"] = f"{note}; integrated state after {settled:g} d kept"
            return x, u, info


def _continuation(cp, x: np.ndarray, u: np.ndarray, loops, n_steps: int = 6):
    """Setpoint continuation: solve the open-loop steady state first, then move each loop's
    setpoint from the open-loop value of its measurement to its target in ``n_steps``, each
    solve starting from the previous solution (a far-away closed-loop root is reached in small
    steps)."""
    x0, u0, ok, note = _newton(cp, x, u, [])
    if not ok:
        return x, u, False, f"continuation: open-loop root failed ({note})"
    y0 = [x0[si] for (si, _, _, _, _) in loops]
    xs, us = x0, u0
    for k in range(1, n_steps + 1):
        f = k / n_steps
        step = [(si, ui, y + f * (sp - y), lo, hi) for (si, ui, sp, lo, hi), y in zip(loops, y0)]
        xs, us, ok, note = _newton(cp, xs, us, step)
        if not ok:
            return x, u, False, f"continuation step {k}/{n_steps}: {note}"
    return xs, us, True, f"{note} (by setpoint continuation)"


def _newton(cp, x: np.ndarray, u: np.ndarray, loops) -> tuple[np.ndarray, np.ndarray, bool, str]:
    """Root of the steady-state equations from (x, u), with saturated loops fixed at their limit."""
    active = list(loops)
    u = u.copy()
    for _ in range(len(loops) + 1):
        n = x.size
        scale_x = np.maximum(np.abs(x), 1.0)
        scale_u = np.array([max(abs(u[ui]), 1.0) for (_, ui, _, _, _) in active])

        def residual(z, active=active, scale_u=scale_u, n=n, scale_x=scale_x):
            xx = z[:n] * scale_x
            uu = u.copy()
            for k, (_, ui, _, _, _) in enumerate(active):
                uu[ui] = z[n + k] * scale_u[k]
            dx = cp.derivs(0.0, xx, uu, cp.M, cp.P)
            ctrl = [xx[si] - sp for (si, _, sp, _, _) in active]
            return np.concatenate([dx / scale_x, ctrl])

        z0 = np.concatenate([x / scale_x, np.array([u[ui] for (_, ui, _, _, _) in active]) / scale_u])
        # MINPACK hybrid first; Levenberg-Marquardt when it stalls (it does on the augmented
        # closed-loop system started from the open-loop state)
        sol = root(residual, z0, method="hybr", options={"xtol": 1e-12, "maxfev": 200 * (n + 10)})
        res = np.max(np.abs(residual(sol.x)))
        if not np.isfinite(res) or res > 1e-9:
            sol = root(residual, z0, method="lm", options={"xtol": 1e-14, "ftol": 1e-14, "maxiter": 200 * (n + 10)})
            res = np.max(np.abs(residual(sol.x)))
        if not np.all(np.isfinite(sol.x)) or res > 1e-6:
            return x, u, False, f"root finder not converged (max scaled residual {res:.3g})"
        x_new = sol.x[:n] * scale_x
        u_new = u.copy()
        out_of_range = None
        for k, (_si, ui, _sp, lo, hi) in enumerate(active):
            u_new[ui] = sol.x[n + k] * scale_u[k]
            if not lo <= u_new[ui] <= hi:
                out_of_range = k
        if out_of_range is None:
            return x_new, u_new, True, f"converged (max scaled residual {res:.3g})"
        si, ui, sp, lo, hi = active.pop(out_of_range)
        u[ui] = min(max(sol.x[n + out_of_range] * scale_u[out_of_range], lo), hi)
    return x, u, False, "root finder: every loop saturated"
