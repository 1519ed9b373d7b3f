"""Scale-out of a study (not collected by pytest): the same fleet-only study run serially, on a
local process pool and on a Dask LocalCluster, timed in one run and printed as ratios.

Run:  OPENBLAS_NUM_THREADS=1 python tests/benchmarks/study_speed.py [--replications 10] [--years 10] [--workers 2]
      [--no-dask]

The study is the bundled reference_policies (run-to-failure against condition-based maintenance
of the 124-asset reference fleet, no process model) with the given years and replications. Each
executor writes into a fresh folder, so nothing is resumed. Printed: wall time per executor, the
speed-up against the serial run, the efficiency (speed-up per worker; 1 - efficiency is what the
executor and an uneven last batch cost), that every executor gave the same savings, and the time
to write the study report. Nothing is asserted: the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import time
from pathlib import Path

import yaml

from twin.study import run_study

ROOT = Path(__file__).resolve().parents[2]


def study_file(folder: Path, years: int, replications: int) -> Path:
    spec = yaml.safe_load((ROOT / "scenarios" / "studies" / "reference_policies.yaml").read_text())
    spec["scenario"] = str(ROOT / "scenarios" / "reference_10y.yaml")
    spec["overrides"] = {**spec.get("overrides", {}), "duration": f"{365 * years}d",
                         "evaluation.end": f"{365 * years}d", "outputs.checkpoint_every": None}
    spec["replications"] = replications
    # the fleet-only model's speed: run-to-failure against condition-based (the predictive arm's
    # hourly sensor record and inference are measured by predictor_speed.py)
    spec["arms"] = {k: v for k, v in spec["arms"].items() if k in ("run_to_failure", "condition")}
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def timed(path: Path, out: Path, **kw) -> tuple[float, dict]:
    t0 = time.perf_counter()
    s = run_study(path, out, **kw)
    return time.perf_counter() - t0, s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replications", type=int, default=10)
    ap.add_argument("--years", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-dask", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = study_file(tmp, a.years, a.replications)
        runs = 2 * a.replications
        print(f"study: 2 arms x {a.replications} replications of {a.years} years, fleet only ({runs} runs)")
        serial, ref = timed(path, tmp / "serial", workers=1)
        print(f"  serial                      {serial:8.1f} s   ({serial / runs:.2f} s per run)")
        rows = [("local pool", dict(workers=a.workers))]
        if not a.no_dask and importlib.util.find_spec("distributed") is not None:
            rows.append(("dask LocalCluster", dict(executor="dask", workers=a.workers)))
        for name, kw in rows:
            wall, s = timed(path, tmp / name.replace(" ", "_"), **kw)
            same = s["savings_against_baseline"] == ref["savings_against_baseline"]
            speedup = serial / wall
            print(f"  {name:18s} {a.workers} workers {wall:8.1f} s   speed-up {speedup:.2f}   efficiency "
                  f"{speedup / a.workers:.2f}   same savings as serial: {same}")
        from analysis.study_report import render_study_report

        summary = json.loads((tmp / "serial" / "study.json").read_text())
        t0 = time.perf_counter()
        render_study_report(summary)
        print(f"  study report rendered in {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
