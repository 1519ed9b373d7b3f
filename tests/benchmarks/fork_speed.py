"""Fork and candidate-evaluation speed (a benchmark, not a test: prints figures, asserts nothing).

    OPENBLAS_NUM_THREADS=1 python tests/benchmarks/fork_speed.py [--candidates 40]

Prints, measured in one run on this machine:
* the time to fork the reference plant with its eight loops, air header, instruments, weather,
  124-asset fleet and maintenance agent (median of 20 forks), and the BSM1 quickstart's;
* one candidate day on a headless fork (recording only what the objective reads), reference
  plant (``reference_10y``: loops at 5-minute samples, and ``reference_year``: 1-minute samples)
  and BSM1 closed loop (two loops, 1-minute sampling), per simulated day;
* N candidate days through the evaluator with the serial executor and the process pool with
  1 and 2 workers, and the time 3,200 candidate days (a GA of 80 x 40) would take at that rate.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from twin import Twin  # noqa: E402
from twin.evaluate import evaluate  # noqa: E402
from twin.objectives import WindowMeans  # noqa: E402

SCEN = Path(__file__).resolve().parents[2] / "scenarios"


def fork_ms(tw: Twin, n: int = 20) -> float:
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        tw.fork()
        ts.append(1000 * (time.perf_counter() - t0))
    return statistics.median(ts)


def day_s(tw: Twin, objective, n: int = 3) -> float:
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        f = tw.fork(record=list(objective.columns))
        start = f.now
        f.advance("1d")
        objective(f, start, f.now)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candidates", type=int, default=40)
    args = ap.parse_args()
    ref = Twin.from_scenario(SCEN / "reference_10y.yaml", overrides={"duration": "60d", "evaluation.end": "60d"})
    ref.advance("2d")
    bsm1 = Twin.from_scenario(SCEN / "quickstart_24h.yaml", overrides={"duration": "10d", "evaluation.end": "10d"})
    bsm1.advance("6h")
    obj_ref = WindowMeans(("power.aeration_kW", "effluent.SNH_g_m3"))
    obj_bsm1 = WindowMeans(("reactor5.kla_per_d", "effluent.SNH_g_m3"))
    print(f"fork, reference plant with fleet and agent: {fork_ms(ref):.1f} ms (median of 20)")
    print(f"fork, BSM1 quickstart:                      {fork_ms(bsm1):.2f} ms")
    r_day, b_day = day_s(ref, obj_ref), day_s(bsm1, obj_bsm1)
    ref1 = Twin.from_scenario(SCEN / "reference_year.yaml", overrides={"duration": "30d", "evaluation.end": "30d"})
    ref1.advance("2d")
    r1_day = day_s(ref1, obj_ref)
    print(f"one candidate day, headless fork, reference plant: {1000 * r_day:.0f} ms per simulated day "
          "(reference_10y: loops and instruments at 5-minute samples)")
    print(f"one candidate day, headless fork, reference plant at 1-minute samples (reference_year): "
          f"{1000 * r1_day:.0f} ms per simulated day")
    print(f"one candidate day, headless fork, BSM1 closed loop: {1000 * b_day:.0f} ms per simulated day")
    n = args.candidates
    cands = [{f"controllers.do_reactor{z}.setpoint": 1.0 + 2.0 * k / max(n - 1, 1) for z in (3, 4, 5)}
             for k in range(n)]
    rec = list(obj_ref.columns)
    results = {}
    for label, ex, w in (("serial", "serial", 1), ("process pool, 1 worker", "process", 1),
                         ("process pool, 2 workers", "process", 2)):
        t0 = time.perf_counter()
        results[label] = evaluate(ref, cands, "1d", obj_ref, executor=ex, workers=w, record=rec)
        wall = time.perf_counter() - t0
        print(f"{n} candidate days, reference plant, {label}: {wall:.1f} s "
              f"({1000 * wall / n:.0f} ms each; 3,200 would take {3200 * wall / n / 60:.1f} min)")
    same = all(v == results["serial"] for v in results.values())
    print(f"results identical across executors: {same}")


if __name__ == "__main__":
    main()
