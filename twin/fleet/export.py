"""Run-to-failure data export: hourly sensor histories of every asset with failure labels."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np


def export_fleet_data(scenario, base_dir: Path | None, years: float, out: Path) -> Path:
    """Simulate the fleet under run to failure for ``years`` and write ``sensors.parquet``
    (one row per asset and hour: time_h, asset, type, up, load, ambient_c, operating_h (hours run
    since the asset's last repair), every channel of the fleet's types; and the labels
    failure_mode (the mode failing in that hour, else empty), hours_to_failure (to the asset's
    next failure; NaN when none follows within the record) and next_failure_mode),
    ``failures.parquet`` and ``meta.json`` (seed, years, fleet file and its SHA-256, and whether
    the process model ran).

    With ``fleet.process_model: false`` the fleet runs alone at its configured load (and daily
    load variation). With the process model (a scenario with a plant and its equipment) the whole
    plant runs, its loops and machines setting the pumps', blowers' and aeration grids' loads and
    the weather the ambient temperature, so that a predictor learns the sensors at the operating
    points it will meet in the plant; the scenario's events and optimiser are left out and its
    own policies replaced by run to failure."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from twin.influent import resolve_path

    rtf = scenario.fleet.policy_for("default").model_copy(update={"kind": "rtf"})
    n_hours = int(years * 365 * 24)
    with_plant = bool(scenario.fleet.process_model)
    if with_plant:
        from twin.twin import Twin

        raw = scenario.to_dict()
        raw["fleet"]["policies"] = {"default": rtf.model_dump(mode="json", exclude_none=True)}
        raw.update(events=[], duration=f"{n_hours}h", optimiser=None)
        raw["outputs"] = {**raw.get("outputs", {}), "checkpoint_every": None}
        if raw.get("evaluation"):
            raw["evaluation"] = {**raw["evaluation"], "start": "0d", "end": f"{n_hours}h"}
        tw = Twin.from_scenario(raw, base_dir=base_dir, progress=False)
        env, agent, spec = tw.env, tw.agent, tw.scenario.fleet
        t0 = tw.main_start_s
        scen = tw.scenario
    else:
        from twin.clock import TwinEnvironment
        from twin.fleet.assembly import build_fleet

        spec = scenario.fleet.model_copy(update={"policies": {"default": rtf}, "process_model": False})
        scen = scenario.model_copy(update={"fleet": spec, "events": []})
        env = TwinEnvironment(scen, seed=scen.seed)
        agent = build_fleet(env, spec, base_dir)
        t0 = 0
    fleet = agent.fleet
    channels = sorted({c.name for t in fleet.types.values() for c in t.channels})
    n = len(fleet.assets)
    data = {c: np.full((n_hours, n), np.nan) for c in channels}
    up = np.zeros((n_hours, n), dtype=bool)
    load = np.zeros((n_hours, n))
    ambient = np.zeros(n_hours)
    op_h = np.zeros((n_hours, n))
    row_asset = fleet.s.row_asset

    def sample(h):
        for t in fleet.types:
            idx, v = fleet.read_type(t)
            for k, c in enumerate(fleet.types[t].channels):
                data[c.name][h, idx] = v[:, k]
        up[h] = fleet.s.asset_up
        load[h] = fleet.s.asset_load
        ambient[h] = fleet.s.ambient_c
        op_h[h] = np.minimum.reduceat(fleet.s.run_h, np.r_[0, np.nonzero(np.diff(row_asset))[0] + 1])

    if with_plant:
        for h in range(n_hours):
            tw.advance_to(t0 + 3600 * (h + 1))
            if tw.failed is not None:
                raise tw.failed
            sample(h)
    else:
        def sampler():
            for h in range(n_hours):
                yield env.timeout(3600)
                sample(h)

        env.run(until=env.process(sampler()))
    failures = [{**f, "time_s": f["time_s"] - t0} for f in agent.failures]
    fail_mode = np.full((n_hours, n), "", dtype=object)
    to_fail = np.full((n_hours, n), np.nan)
    next_mode = np.full((n_hours, n), "", dtype=object)
    hours = np.arange(1, n_hours + 1, dtype=float)
    for f in failures:
        i = fleet.index[f["asset"]]
        h = int(f["time_s"] // 3600) - 1
        if 0 <= h < n_hours:
            fail_mode[h, i] = f["mode"]
    for i in range(n):
        fi = sorted((f["time_s"] / 3600.0, f["mode"]) for f in failures if fleet.index[f["asset"]] == i)
        times = [t for t, _ in fi]
        nxt = np.searchsorted(times, hours, side="left")
        ok = nxt < len(times)
        if times:
            to_fail[ok, i] = np.array(times)[nxt[ok]] - hours[ok]
            next_mode[ok, i] = np.array([m for _, m in fi], dtype=object)[nxt[ok]]
    cols = {"time_h": np.repeat(hours, n), "asset": np.tile([a.id for a in fleet.assets], n_hours),
            "type": np.tile([a.type for a in fleet.assets], n_hours), "up": up.ravel(),
            "load": load.ravel(), "ambient_c": np.repeat(ambient, n), "operating_h": op_h.ravel(),
            "failure_mode": fail_mode.ravel().astype(str), "hours_to_failure": to_fail.ravel(),
            "next_failure_mode": next_mode.ravel().astype(str)}
    cols.update({c: data[c].ravel() for c in channels})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        pq.write_table(pa.table(cols), tmp / "sensors.parquet", compression="zstd")
        fl = failures
        pq.write_table(pa.table({"time_h": [f["time_s"] / 3600.0 for f in fl], "asset": [f["asset"] for f in fl],
                                 "type": [f["type"] for f in fl], "mode": [f["mode"] for f in fl],
                                 "age_h": [f["age_h"] for f in fl]}), tmp / "failures.parquet")
        fleet_file = resolve_path(spec.file, base_dir)
        meta = {"scenario": scenario.name, "seed": int(scen.seed), "years": years, "fleet_file": str(fleet_file),
                "fleet_sha256": hashlib.sha256(Path(fleet_file).read_bytes()).hexdigest(),
                "load": spec.load, "load_variation": spec.load_variation, "process_model": with_plant}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
