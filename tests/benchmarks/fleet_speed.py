"""Speed of the fleet and maintenance agent (not collected by pytest).

Run:  OPENBLAS_NUM_THREADS=1 python tests/benchmarks/fleet_speed.py [--years 10]

Measures, in one run: a fleet-only study of the 124-asset reference fleet under condition-based
maintenance (simulated years per wall minute, SimPy events per second), and a plain SimPy loop
of timeouts with the same number of events as the baseline for the event rate.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import simpy

from twin.run import run_scenario
from twin.scenario import validate_scenario

ROOT = Path(__file__).resolve().parents[2]


def fleet_study(years: float):
    import yaml

    ref = yaml.safe_load((ROOT / "scenarios" / "reference_10y.yaml").read_text())
    s = {"name": "fleet_bench", "seed": 1, "duration": f"{int(years * 365)}d",
         "fleet": {**ref["fleet"], "process_model": False}}
    scen = validate_scenario(s, "bench")
    t0 = time.perf_counter()
    res = run_scenario(scen, ROOT / "scenarios")
    return time.perf_counter() - t0, res


def count_events(years: float) -> int:
    """Events of the fleet study: hourly fleet steps, policy inspections and work orders (from
    the event log), counted by running the same study on an environment that counts steps."""
    import twin.clock as clock

    n = 0
    original = clock.TwinEnvironment.step

    def step(self):
        nonlocal n
        n += 1
        return original(self)

    clock.TwinEnvironment.step = step
    try:
        fleet_study(years)
    finally:
        clock.TwinEnvironment.step = original
    return n


def plain_loop(n_events: int) -> float:
    env = simpy.Environment()

    def ticker():
        for _ in range(n_events):
            yield env.timeout(1)

    env.process(ticker())
    t0 = time.perf_counter()
    env.run()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--years", type=float, default=10.0)
    years = ap.parse_args().years
    fleet_study(0.1)  # warm caches
    wall, res = fleet_study(years)
    n = count_events(years)
    plain = plain_loop(n)
    m = res.kpis["maintenance"]["by_type"]["total"]
    print(f"fleet-only study, 124 assets, {years:g} y: {wall:.2f} s -> {years / wall * 60:.0f} simulated years "
          f"per wall minute; {m['failures']} failures, {m['work_orders']['preventive']} preventive work orders")
    print(f"events: {n} -> {n / wall:,.0f} per s; plain SimPy timeout loop with as many events: "
          f"{plain:.3f} s ({n / plain:,.0f} per s); ratio {wall / plain:.1f}x")


if __name__ == "__main__":
    main()
