"""Speed of the reference plant against the plain BSM1 plant, measured in the same run.

Run:  OPENBLAS_NUM_THREADS=1 python tests/benchmarks/reference_speed.py [--days 365]

Runs ``scenarios/reference_year.yaml`` (reference plant, eight loops, equipment, instruments, weather,
fleet and maintenance agent) and the
BSM1 closed loop with default control on the same synthetic influent for the same number of
days, each as a fresh process with a warm numba cache, and prints simulated days per wall
second for both and their ratio.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "twin.cli", *args], check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=365)
    days = ap.parse_args().days
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ref = ["run", str(ROOT / "scenarios" / "reference_year.yaml"), "--quiet", "--no-report",
               "--set", f"duration={days}d", "--set", f"evaluation.end={days}d"]
        bsm1 = ["run", str(ROOT / "scenarios" / "quickstart_24h.yaml"), "--quiet", "--no-report",
                "--set", f"duration={days}d", "--set", f"evaluation.end={days}d",
                "--set", "outputs.sample_interval=1h"]
        timed(ref + ["--set", "duration=1d", "--set", "evaluation.end=1d", "--out", str(tmp / "w1")])
        timed(bsm1 + ["--set", "duration=1d", "--set", "evaluation.end=1d", "--out", str(tmp / "w2")])
        t_ref = timed(ref + ["--out", str(tmp / "ref")])
        t_bsm1 = timed(bsm1 + ["--out", str(tmp / "bsm1")])
    print(f"reference plant: {days} d in {t_ref:.1f} s -> {days / t_ref:.1f} simulated d per wall s")
    print(f"plain BSM1 (default control): {days} d in {t_bsm1:.1f} s -> {days / t_bsm1:.1f} simulated d per wall s")
    print(f"ratio reference / BSM1 wall time: {t_ref / t_bsm1:.2f}")


if __name__ == "__main__":
    main()
