"""Speed benchmark of the BSM1 closed loop (not collected by pytest).

Run:  OPENBLAS_NUM_THREADS=1 python tests/benchmarks/bsm1_speed.py [--bsm2-days 2] [--no-year]

Measures, in one run on this machine:
1. ``twin run scenarios/bsm1_closedloop_dry.yaml`` as a fresh process (start-up, steady state,
   14 warm-up days and 14 test days included), median of three after one warm-up run
   (numba's on-disk cache warm);
2. one simulated year of the closed-loop plant (default control, 1-minute PI sampling) on the
   synthetic influent;
3. when bsm2-python is installed, its ``BSM1CL`` over ``--bsm2-days`` of the dry-weather file
   (1-minute steps, its own fastest setting with OPENBLAS_NUM_THREADS=1), scaled to 14 days,
   and the ratio of that time to the twin's whole protocol.
Prints simulated days per wall second for each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def time_cli(args: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "twin.cli", *args], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return times


def year_scenario(folder: Path) -> Path:
    text = (ROOT / "scenarios" / "quickstart_24h.yaml").read_text()
    text = text.replace("name: quickstart_24h", "name: bsm1_closedloop_year").replace("duration: 24h", "duration: 365d")
    text = text.replace("end: 24h", "end: 365d")
    text = text.replace("outputs: {sample_interval: 5min}", "outputs: {sample_interval: 1h, report: false}")
    p = folder / "year.yaml"
    p.write_text(text)
    return p


def bsm2_python_seconds(days: float) -> float | None:
    try:
        from bsm2_python.bsm1_cl import BSM1CL
    except ImportError:
        return None
    plant = BSM1CL(endtime=days, use_noise=1)
    t0 = time.perf_counter()
    for i in range(len(plant.simtime)):
        plant.step(i)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bsm2-days", type=float, default=2.0, help="days of bsm2-python BSM1CL to time (scaled to 14)")
    ap.add_argument("--no-year", action="store_true")
    args = ap.parse_args()
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1":
        print("note: set OPENBLAS_NUM_THREADS=1 for a fair comparison (bsm2-python is fastest so)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        scen = ROOT / "scenarios" / "bsm1_closedloop_dry.yaml"
        cli = ["run", str(scen), "--out", str(tmp / "cl"), "--quiet", "--no-report"]
        time_cli(cli, 1)  # warm numba's on-disk cache
        t = statistics.median(time_cli(cli, 3))
        print(f"twin closed loop, whole protocol (28 simulated days + steady state), fresh process: {t:.2f} s "
              f"-> {28 / t:.1f} simulated d per wall s")
        if not args.no_year:
            y = year_scenario(tmp)
            ty = statistics.median(time_cli(["run", str(y), "--out", str(tmp / "y"), "--quiet"], 1))
            print(f"twin closed loop, one simulated year (synthetic influent, 1-min PI): {ty:.1f} s "
                  f"-> {365 / ty:.0f} simulated d per wall s")
        tb = bsm2_python_seconds(args.bsm2_days)
        if tb is None:
            print("bsm2-python not installed: no comparison")
            return
        tb14 = tb * 14 / args.bsm2_days
        print(f"bsm2-python BSM1CL: {args.bsm2_days:g} d in {tb:.1f} s -> {tb14:.0f} s for 14 d "
              f"({args.bsm2_days / tb:.2f} simulated d per wall s)")
        print(f"ratio bsm2-python 14 test days / twin whole protocol: {tb14 / t:.1f}x")


if __name__ == "__main__":
    main()
