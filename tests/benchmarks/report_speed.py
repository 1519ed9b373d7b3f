"""What the HTML report costs a run, measured in one process.

Run:  python tests/benchmarks/report_speed.py [--scenario scenarios/reference_24h.yaml] [--repeat 3]

Runs the scenario once (without writing anything), then renders its report ``--repeat`` times
and prints the run's wall time, the first render (with the imports it needs) and the fastest
render, and the report's share of the run. With ``--results DIR`` it renders the report of a
finished results folder instead (``twin report DIR`` without writing).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "reference_24h.yaml"))
    ap.add_argument("--results", help="a results folder to render instead of running the scenario")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if args.results:
        from twin.results import read_results

        result = read_results(Path(args.results))
        run_s = float(result.kpis.get("run", {}).get("wall_s", float("nan")))
    else:
        from twin.run import run_scenario
        from twin.scenario import load_scenario

        scenario, path = load_scenario(args.scenario)
        t0 = time.perf_counter()
        result = run_scenario(scenario, path.parent)
        run_s = time.perf_counter() - t0
    from analysis.report import render_report

    times = []
    for _ in range(max(args.repeat, 1)):
        t0 = time.perf_counter()
        text = render_report(result)
        times.append(time.perf_counter() - t0)
    print(f"series: {result.values.shape[0]} rows x {result.values.shape[1]} columns; report {len(text) / 1e3:.0f} kB, "
          f"{text.count('<svg')} charts")
    print(f"run {run_s:.2f} s; report first {times[0]:.3f} s, fastest {min(times):.3f} s "
          f"({100 * times[0] / run_s:.1f} % of the run)")


if __name__ == "__main__":
    main()
