"""Speed of the learned predictor and of the policy that uses it (not collected by pytest).

Run:  OPENBLAS_NUM_THREADS=1 python tests/benchmarks/predictor_speed.py [--years 1] [--data DIR] [--epochs 2]
          [--plant-days 3650]

Measures, in one run, on one thread (torch and BLAS pinned):

* the hourly sensor record: reading all 124 assets of the reference fleet one asset at a time
  (``Fleet.read_channels``) against one call per asset type (``Fleet.read_type``, one compiled
  call, what the policy and ``twin fleet-data`` use); the same readings either way (checked here);
* a fleet-only run of ``scenarios/fleet_predictor.yaml`` under the predictive policy with the
  shipped model against the same run under the condition policies of ``reference_10y.yaml``
  (ratio of wall times, same seed);
* with ``--plant-days N``: N days of the reference plant with its process model,
  ``reference_10y.yaml`` (condition-based) against ``reference_10y_predictive.yaml`` (the shipped
  LSTM), one after the other (``--plant-days 3650``: the issue's ten-year ratio, about 8 minutes);
* inference per decision: every asset of the fleet scored by its type's shipped model (block
  means, normalisation, one forward call per type, Platt scaling), median of repeated decisions;
* training time per epoch of one asset type's model, small (16, 8) and the default (128, 64, 32),
  on a fleet-data folder (``--data``; by default one year of seed 1 written to a temporary folder),
  with the number of training windows, so the figure can be scaled to another data volume.

Figures are printed, never asserted: they depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONDITION = {"default": {"kind": "rtf"},
             "centrifugal_pump": {"kind": "condition", "channel": "vibration_rms", "threshold": 3.4,
                                  "inspection_interval": "7d"},
             "blower": {"kind": "condition", "channel": "vibration_rms", "threshold": 3.8, "inspection_interval": "7d"},
             "filter": {"kind": "condition", "channel": "differential_pressure", "threshold": 26,
                        "inspection_interval": "1d"},
             "aeration_grid": {"kind": "condition", "channel": "dynamic_wet_pressure", "threshold": 50,
                               "inspection_interval": "30d"},
             "heat_exchanger": {"kind": "condition", "channel": "pressure_drop", "threshold": 30,
                                "inspection_interval": "7d"}}
PREDICTIVE = {"default": {"kind": "predictive", "model": "reference", "horizon_h": 336}}


def _fleet(seed: int = 1):
    from twin.fleet.model import Fleet, load_fleet

    types, assets = load_fleet(ROOT / "scenarios" / "fleets" / "reference.yaml")
    fleet = Fleet(types, assets, seed)
    fleet.s.asset_load[:] = 0.85
    return fleet


def sensor_reads(hours: int) -> tuple[float, float]:
    """Seconds for ``hours`` hourly readings of the whole fleet: per asset, per type."""
    one, whole = _fleet(), _fleet()
    t0 = time.perf_counter()
    per_asset = [[one.read_channels(i) for i in range(len(one.assets))] for _ in range(hours)]
    t1 = time.perf_counter()
    per_type = [{t: whole.read_type(t) for t in whole.types} for _ in range(hours)]
    t2 = time.perf_counter()
    for h in (0, hours - 1):  # the same readings either way
        for t, (idx, v) in per_type[h].items():
            names = [c.name for c in whole.types[t].channels]
            ref = np.array([[per_asset[h][i][c] for c in names] for i in idx])
            assert np.array_equal(ref, v, equal_nan=True), t
    return t1 - t0, t2 - t1


def fleet_run(policies: dict, years: float) -> float:
    from twin.run import run_scenario
    from twin.scenario import load_scenario

    days = int(round(years * 365))
    scen, p = load_scenario(ROOT / "scenarios" / "fleet_predictor.yaml",
                            [f"duration={days}d", f"fleet.policies={policies}"])
    t0 = time.perf_counter()
    run_scenario(scen, p.parent)
    return time.perf_counter() - t0


def plant_run(name: str, days: int) -> float:
    from twin.run import run_scenario
    from twin.scenario import load_scenario

    scen, p = load_scenario(ROOT / "scenarios" / f"{name}.yaml",
                            [f"duration={days}d", f"evaluation.end={days}d", "outputs.checkpoint_every=null"])
    t0 = time.perf_counter()
    run_scenario(scen, p.parent)
    return time.perf_counter() - t0


def inference(repeats: int) -> tuple[float, int]:
    """Median seconds of one decision over every asset of the reference fleet, and the asset count."""
    from agents.predictors.lstm import load
    from agents.predictors.policy import REFERENCE_MODEL, block_windows, calibrated

    models = load(REFERENCE_MODEL)
    fleet = _fleet()
    rng = np.random.default_rng(0)
    hourly = {}
    for t, m in models.items():
        n = sum(a.type == t for a in fleet.assets)
        nf = len(m.meta["features"])  # the raw readings (the residuals are the model's own)
        hourly[t] = np.array(m.meta["mean"][:nf]) + rng.standard_normal((n, m.meta["window_h"], nf))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for t, m in models.items():
            p, q = m.predict_windows(m.normalise(block_windows(hourly[t], m.meta["block_h"])))
            calibrated(m, p)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), sum(len(h) for h in hourly.values())


def training(data: Path, type_name: str, hidden: tuple[int, ...], epochs: int) -> tuple[float, int]:
    """Seconds per epoch (median of the epochs) and training windows of one type's model."""
    from agents.predictors.lstm import TrainSettings, train_type

    stamps: list[float] = []
    n_windows = [0]

    def log(msg: str) -> None:
        if "epoch" in msg:
            stamps.append(time.perf_counter())
        elif "training windows" in msg:
            n_windows[0] = int(msg.split(": ", 1)[1].split()[0])
            stamps.append(time.perf_counter())

    # one architecture timed (the wider one): 'auto' trains both, one after the other
    settings = TrainSettings(hidden=hidden, max_epochs=epochs, patience=epochs, threads=1, variant="stats")
    train_type([data], type_name, settings, log=log)
    return statistics.median(np.diff(stamps)), n_windows[0]


def main() -> None:
    import torch

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--years", type=float, default=1.0, help="simulated years of the fleet-only runs")
    ap.add_argument("--hours", type=int, default=500, help="hourly fleet readings timed")
    ap.add_argument("--data", type=Path, help="fleet-data folder for the training figures (default: 1 y, seed 1)")
    ap.add_argument("--type", default="centrifugal_pump")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--skip-training", action="store_true")
    ap.add_argument("--plant-days", type=int, default=0, help="days of the reference plant, condition-based "
                    "against predictive (0: skip)")
    args = ap.parse_args()

    per_asset, per_type = sensor_reads(args.hours)
    print(f"hourly record of 124 assets, {args.hours} h: per asset {per_asset:.3f} s, per type {per_type:.3f} s "
          f"(ratio {per_asset / per_type:.1f}x; identical readings)")

    fleet_run(CONDITION, 0.05)  # warm caches and imports
    cond = fleet_run(CONDITION, args.years)
    pred = fleet_run(PREDICTIVE, args.years)
    print(f"fleet-only {args.years:g} y, seed 1: condition {cond:.2f} s, predictive (shipped LSTM) {pred:.2f} s, "
          f"ratio {pred / cond:.1f}x")

    if args.plant_days:
        cond = plant_run("reference_10y", args.plant_days)
        pred = plant_run("reference_10y_predictive", args.plant_days)
        print(f"reference plant {args.plant_days} d, seed 11: condition {cond:.1f} s, predictive (shipped LSTM) "
              f"{pred:.1f} s, ratio {pred / cond:.2f}x")

    per_decision, n_assets = inference(50)
    print(f"inference: one decision over {n_assets} assets (7 types, one forward call each): "
          f"{per_decision * 1000:.1f} ms (median of 50)")

    if args.skip_training:
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            from twin.fleet.export import export_fleet_data
            from twin.scenario import load_scenario

            scen, p = load_scenario(ROOT / "scenarios" / "fleet_predictor.yaml")
            data = export_fleet_data(scen, p.parent, 1.0, Path(tmp) / "fleet_s1")
        small, n = training(data, args.type, (16, 8), args.epochs)
        large, _ = training(data, args.type, (128, 64, 32), args.epochs)
    print(f"training {args.type}, {n} windows of 42 steps: per epoch {small:.1f} s (16, 8), {large:.1f} s "
          f"(128, 64, 32), ratio {large / small:.1f}x")


if __name__ == "__main__":
    main()
