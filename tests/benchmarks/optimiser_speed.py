"""One optimiser decision, timed (a benchmark, not a test: prints figures, asserts nothing).

    OPENBLAS_NUM_THREADS=1 python tests/benchmarks/optimiser_speed.py [--plant reference|bsm1]
        [--workers 2] [--population 80] [--generations 40] [--elite 10]

Builds the bundled optimised scenario (``reference_week_optimised.yaml``: NSGA-II over the DO
and nitrate setpoints of the reference plant; ``bsm1_closedloop_dry_optimised.yaml``: the GA on
BSM1's operational cost index), advances it to its first decision time, and runs that one
decision with the process pool of ``--workers`` (``0``: serial). Prints the decision's wall time
against the plant specification's target (2 minutes on two cores, goal 1 minute), the distinct
candidates evaluated, and where the time went (the decision's ``time_split``: forking,
simulating and the objective summed over workers, the elapsed time in evaluation batches, the
search's own time), and the elapsed time per candidate day.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from twin import Twin  # noqa: E402
from twin.durations import parse_duration  # noqa: E402

SCEN = Path(__file__).resolve().parents[2] / "scenarios"
FILES = {"reference": "reference_week_optimised.yaml", "bsm1": "bsm1_closedloop_dry_optimised.yaml"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plant", choices=sorted(FILES), default="reference")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--population", type=int, default=80)
    ap.add_argument("--generations", type=int, default=40)
    ap.add_argument("--elite", type=int, default=10)
    a = ap.parse_args()
    opt = {"population": a.population, "generations": a.generations, "elite": a.elite,
           "executor": "process" if a.workers else "serial", "workers": a.workers or None}
    tw = Twin.from_scenario(SCEN / FILES[a.plant], overrides={f"optimiser.{k}": v for k, v in opt.items()})
    first = tw.optimiser.decision_times(tw)[0]
    t0 = time.perf_counter()
    tw.advance_to(first)
    print(f"{FILES[a.plant]}: advanced to the first decision ({first / 86400:g} d) in {time.perf_counter() - t0:.1f} s")
    d = tw.optimiser.decide(tw)
    sp = d["time_split"]
    horizon_d = parse_duration(tw.scenario.optimiser.horizon) / 86400
    print(f"decision ({d['algorithm']}, {a.population} x {a.generations}, "
          f"{'serial' if not a.workers else f'{a.workers} workers'}): {d['wall_s']:.1f} s wall "
          f"(target 120 s, goal 60 s); {d['evaluations']} distinct candidates")
    print(f"  elapsed in evaluation batches {sp['evaluations_s']:.1f} s, search {sp['search_s']:.2f} s; "
          f"summed over workers: fork {sp['fork_s']:.1f} s, simulate {sp['simulate_s']:.1f} s, "
          f"objective {sp['objective_s']:.1f} s")
    print(f"  {1000 * sp['evaluations_s'] / max(d['evaluations'], 1):.1f} ms elapsed per candidate, "
          f"{1000 * sp['simulate_s'] / max(d['evaluations'], 1):.1f} ms of simulation per candidate "
          f"(horizon {horizon_d:g} d)")


if __name__ == "__main__":
    main()
