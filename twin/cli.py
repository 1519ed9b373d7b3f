"""The ``twin`` command line.

Exit codes: 0 success; 1 ``twin units check``: a check failed; 2 bad input (scenario, flowsheet, data file): one message, no
traceback, no results folder; 3 the integration failed: partial results kept in
``<out>.FAILED``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from twin.errors import ConfigError, SolverError

EXIT_USER_ERROR = 2
EXIT_SOLVER_ERROR = 3
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="twin",
        description="Digital twin of a wastewater treatment plant: run scenario files, validate them, "
                    "list process unit types.",
        epilog="Example: twin run scenarios/quickstart_24h.yaml --out results/quickstart",
    )
    from twin import package_version

    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}",
                   help="print the version of plant twin and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    r = sub.add_parser("run", help="run a scenario and write a results folder",
                       description="Run a scenario; results go to --out (default results/<scenario name>).")
    r.add_argument("scenario", help="scenario YAML file")
    r.add_argument("--out", help="results folder (replaced if it exists)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario field, e.g. --set influent.file=rain.ascii (repeatable)")
    r.add_argument("--seed", type=int, help="override the scenario's random seed")
    r.add_argument("--quiet", action="store_true", help="no progress output")
    r.add_argument("--no-report", action="store_true", help="skip report.html")
    r.add_argument("--checkpoint-every", metavar="DURATION",
                   help="save the run's state every DURATION of simulated time (e.g. 1y, 30d) into "
                        "<out>.checkpoint/, so that a killed run can be resumed; overrides "
                        "outputs.checkpoint_every; the folder is removed when the run completes")
    r.add_argument("--resume", action="store_true",
                   help="resume from the last checkpoint in <out>.checkpoint/ (same scenario, seed and "
                        "overrides); the results equal those of an uninterrupted run; checkpoints continue at "
                        "the interval of the run being resumed unless --checkpoint-every is given")
    v = sub.add_parser("validate", help="check a scenario (schema, plant wiring, files) without running it")
    v.add_argument("scenario")
    v.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    t = sub.add_parser("tune", help="identify and tune control loops on the plant in its initial state",
                       description="Runs each loop's identification test (its 'autotune' settings: step or relay, "
                                   "tuning rule, criteria) on the plant in the scenario's initial steady state, "
                                   "and prints the identified model, the gains and the verified margins. "
                                   "Nothing is written; the scenario is not run.")
    t.add_argument("scenario")
    t.add_argument("--loop", action="append", default=[], metavar="NAME", help="loop to tune (repeatable; default: all)")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    t.add_argument("--json", action="store_true", help="print the results as JSON")
    f = sub.add_parser("fleet-data", help="simulate the fleet and write labelled hourly sensor histories",
                       description="Simulates the scenario's fleet under run to failure and writes, per asset and "
                                   "hour, every sensor channel with the failure labels: the training set for a "
                                   "failure predictor. With fleet.process_model false the fleet runs alone at "
                                   "its load; otherwise the whole plant runs and its loops and machines set the "
                                   "loads (the scenario's events and optimiser left out).")
    f.add_argument("scenario")
    f.add_argument("--years", type=float, default=1.0)
    f.add_argument("--out", required=True, help="output folder (replaced if it exists)")
    f.add_argument("--seed", type=int)
    pr = sub.add_parser("predictor", help="train and evaluate the LSTM failure predictor",
                        description="Failure predictors on fleet data written by 'twin fleet-data'.")
    psub = pr.add_subparsers(dest="predictor_command", required=True)
    tr = psub.add_parser("train", help="train one LSTM per asset type on fleet-data folders (several seeds)")
    tr.add_argument("--data", nargs="+", required=True, help="fleet-data folders (their seeds are pooled)")
    tr.add_argument("--out", required=True, help="model file to write (.pt)")
    tr.add_argument("--type", dest="types", action="append", default=[], help="asset type (repeatable; default: all)")
    tr.add_argument("--hidden", action="append", default=None, metavar="[TYPE=]SIZES",
                    help="LSTM layer sizes, e.g. 128,64,32 (the default); TYPE=SIZES for one asset type, "
                         "e.g. heat_exchanger=64,32 (repeatable)")
    tr.add_argument("--epochs", type=int, default=None, help="most epochs (early stopping on validation)")
    tr.add_argument("--window-h", type=int, default=None)
    tr.add_argument("--block-h", type=int, default=None)
    tr.add_argument("--seed", type=int, default=None)
    tr.add_argument("--threads", type=int, default=None)
    tr.add_argument("--validation-data", nargs="+", default=None, metavar="DATA",
                    help="fleet-data folders (other seeds) held out whole for validation: early stopping, the "
                         "variant's choice, probability and RUL calibration, alarm level (default: 20 %% of the assets "
                         "of each --data folder)")
    tr.add_argument("--jobs", type=int, default=1,
                    help="asset types trained at once, one process each (default 1; the model is the same bit for "
                         "bit whatever the number)")
    tr.add_argument("--lr", type=float, default=None, help="Adam's learning rate (default 0.001)")
    tr.add_argument("--batch", type=int, default=None, help="windows per training step (default 256)")
    tr.add_argument("--variant", choices=("auto", "stats", "lstm"), default=None,
                    help="per type: 'lstm' (the default) the LSTM state alone, 'stats' the window statistics beside "
                         "it in the heads, 'auto' both, keeping the one with the better validation PR-AUC at 7 days "
                         "(ties: lstm; the shipped model's setting)")
    tr.add_argument("--no-stats", action="store_true", help="the same as --variant lstm")
    tr.add_argument("--no-residuals", action="store_true",
                    help="the readings alone as inputs, without each channel's residual from its normal-behaviour "
                         "model (a least-squares fit on load and ambient temperature over healthy blocks)")
    ev = psub.add_parser("evaluate", help="score a model and its baselines on fleet data; write metrics.json")
    ev.add_argument("--model", required=True, help="model file, or 'reference' for the model shipped with the package")
    ev.add_argument("--data", required=True, nargs="+",
                    help="fleet-data folders not used in training (other seeds); several are pooled, every window "
                         "of each scored once")
    ev.add_argument("--out", required=True)
    c = sub.add_parser("compare", help="compare two results folders (a run and its baseline)",
                       description="Prints and writes compare.json: effluent averages (SNH, Ntot, TSS, COD), EQI, "
                                   "effluent-violation hours, energy and its cost, downtime, failures and "
                                   "maintenance cost of RUN_A against RUN_B. Runs of different plants or "
                                   "different evaluation windows are refused (exit 2) unless --force.")
    c.add_argument("run_a")
    c.add_argument("run_b", help="the baseline")
    c.add_argument("--out", help="where to write the comparison (default: RUN_A/compare.json; if that exists, "
                                 "the next free RUN_A/compare.N.json). An existing --out file is refused "
                                 "unless --overwrite")
    c.add_argument("--overwrite", action="store_true",
                   help="replace an existing comparison file (RUN_A/compare.json or --out) instead of "
                        "writing compare.N.json or refusing")
    c.add_argument("--force", action="store_true",
                   help="compare runs of different plants or different evaluation windows")
    rp = sub.add_parser("report", help="write the HTML report of a finished run from its results folder",
                        description="Reads RUN_DIR (scenario.resolved.yaml, timeseries.parquet, events.jsonl, kpis.json, "
                                    "metadata.json) and writes RUN_DIR/report.html (or --out) again, without running "
                                    "anything: for runs made with --no-report or 'outputs: {report: false}'.")
    rp.add_argument("run_dir", help="results folder of a run")
    rp.add_argument("--out", help="report file to write (default: RUN_DIR/report.html, replaced)")
    un = sub.add_parser("units", help="list the registered process unit types, or check one ('twin units check NAME')",
                        description="Without arguments: list the registered process unit types. "
                                    "'twin units check NAME' runs the checks every unit type must pass (declarations, "
                                    "flow relations, kernel shapes and compilation, mass balance of every conserved "
                                    "quantity at random states, determinism) and says what failed; 'twin units check' "
                                    "alone checks them all. Exit 0 all passed, 1 a check failed, 2 unknown unit type.")
    un.add_argument("action", nargs="?", choices=["list", "check"], default="list")
    un.add_argument("names", nargs="*", metavar="NAME", help="unit type(s) to check (default: all registered)")
    sub.add_parser("plants", help="list the bundled plants")
    ve = sub.add_parser("verify", help="run the BSM1 validation cases against the published results (pass/fail table)",
                        description="Open-loop steady state, closed-loop steady state, open- and closed-loop dynamic dry "
                                    "weather, with the tolerances of the validation tests, against the published BSM1 "
                                    "results (Jeppsson 2009, with Alex et al. 2008). --set applies to every case, e.g. "
                                    "--set plant=my_plant.yaml after a change to a plant model. Exit 0 all run cases "
                                    "passed, 1 a case failed.")
    ve.add_argument("--case", action="append", choices=["steady", "closed_steady", "openloop_dry", "closedloop_dry"],
                    help="a case to run (repeatable; default: all)")
    ve.add_argument("--dry-file", help="the BSM1 dry-weather influent file (default: the copy in bsm2-python)")
    ve.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every case")
    de = sub.add_parser("demo", help="the integrated demonstration on the reference plant (simulated figures only)",
                        description="Forks and the energy optimiser on the reference plant, maintenance policies of the "
                                    "124-asset fleet paired on common random numbers, and (with --investment and "
                                    "--running-cost) the economics, beside the specification's claims.")
    lv = de.add_mutually_exclusive_group()
    lv.add_argument("--quick", action="store_true", help="the short version (default)")
    lv.add_argument("--complete", action="store_true", help="a longer search and the predictive (LSTM) policy")
    de.add_argument("--out", default="results/demo", help="results folder (default: results/demo)")
    de.add_argument("--investment", type=float, help="investment in the AI services and sensors (your figure)")
    de.add_argument("--running-cost", type=float, help="their running cost per year (your figure)")
    st = sub.add_parser("study", help="arms x replications with common random numbers: savings with intervals, economics",
                        description="Runs every arm of STUDY.yaml for each replication (seed), writes DIR/runs/ARM/SEED.json "
                                    "per run (a killed study resumes without redoing them), then study.json (per-arm "
                                    "figures, paired savings against the baseline with bootstrap intervals, how the "
                                    "intervals narrow with replications, the economics) and report.html.")
    st.add_argument("study")
    st.add_argument("--out", required=True, help="results folder of the study")
    st.add_argument("--replications", type=int, help="replications per arm (default: the study file's)")
    st.add_argument("--executor", choices=["local", "dask"], default="local",
                    help="local process pool (default) or Dask distributed (pip install -e '.[dask]')")
    st.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:8786); a LocalCluster otherwise")
    st.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    st.add_argument("--fleet-only", action="store_true", help="run the fleet and agent without the process model")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "validate":
            return _validate(args)
        if args.command == "units":
            return _units_check(args.names) if args.action == "check" else _units()
        if args.command == "tune":
            return _tune(args)
        if args.command == "fleet-data":
            return _fleet_data(args)
        if args.command == "predictor":
            return _predictor(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "report":
            return _report(args)
        if args.command == "verify":
            from twin.verify import format_rows, verify

            rows = verify(args.case, args.set, args.dry_file)
            print(format_rows(rows))
            return 1 if any(r.passed is False for r in rows) else 0
        if args.command == "study":
            return _study(args)
        if args.command == "demo":
            from twin.demo import run_demo

            if (args.investment is None) != (args.running_cost is None):
                raise ConfigError("--investment and --running-cost go together")
            run_demo("complete" if args.complete else "quick", Path(args.out), args.investment, args.running_cost)
            return 0
        if args.command == "plants":
            from twin.run import bundled_plants

            for name in bundled_plants():
                print(name)
            return 0
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except SolverError as exc:  # before the run started (steady state, tuning tests)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SOLVER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _study(args) -> int:
    from twin.study import run_study

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(f"\r  runs {done} / {total}")
            sys.stderr.flush()

    s = run_study(args.study, args.out, args.replications, args.executor, args.workers, args.scheduler,
                  args.fleet_only, progress)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    print(f"study {s['name']}: {s['replications']} replications per arm; savings against {s['baseline']} "
          f"(mean, {100 * s['confidence']:g} % interval):")
    for arm, d in s["savings_against_baseline"].items():
        print(f"  {arm}:")
        for m, v in d.items():
            if not m.startswith("_"):
                print(f"    {m:34s} {v['mean']:14,.1f}   [{v['ci'][0]:,.1f}, {v['ci'][1]:,.1f}]")
    if "economics" in s:
        e = s["economics"]
        print(f"  economics of {e['inputs']['arm']}: NPV {e['point']['npv']:,.0f} [{e['ci']['npv'][0]:,.0f}, "
              f"{e['ci']['npv'][1]:,.0f}], payback {e['point']['payback_months']:.1f} months, "
              f"ROI {e['point']['roi_pct']:.0f} %")
    sens = s.get("sensitivity")
    if sens and "tornado" in sens:
        st = sens.get("sobol", {}).get("indices", {})
        print(f"  sensitivity of {sens['output']} ({sens['arm']}), one at a time around {sens['tornado']['base']:,.0f}:")
        for r in sens["tornado"]["rows"]:
            total = f"   Sobol ST {st[r['input']]['ST']:.2f}" if r["input"] in st else ""
            print(f"    {r['input']:34s} {r['output_at_low']:14,.0f} to {r['output_at_high']:,.0f}{total}")
    for r in (sens or {}).get("simulated", {}).get("rows", []):
        print(f"    {r['input']:34s} {r['output_at_low']:14,.0f} to {r['output_at_high']:,.0f}   (new runs)")
    print(f"written: {args.out}/study.json, {args.out}/report.html")
    return 0


def _blame(exc: ConfigError, path: Path, overrides: list[str]) -> ConfigError:
    """Name the source of an error found after loading: the ``--set`` override that set the
    field the message starts with, else the scenario file."""
    from twin.scenario import split_override_key

    text = str(exc)
    field, sep, rest = text.partition(": ")
    if sep and " " not in field:
        loc = field.split(".")
        for item in reversed(overrides):
            key = item.partition("=")[0].strip()
            try:
                parts = split_override_key(key)
            except ConfigError:
                continue
            n = min(len(loc), len(parts))
            if n and (loc[:n] == parts[:n] or field == key or field.startswith(key + ".")):
                return ConfigError(f"--set {key}: {rest if field == key else text}")
    return ConfigError(f"{path}: {text}")


def _units() -> int:
    from twin.units import registered_types, unit_type

    for name in registered_types():
        cls = unit_type(name)
        print(f"{name:16s} {cls.__module__}.{cls.__qualname__}: {cls.description}")
    return 0


EXIT_CHECK_FAILED = 1


def _units_check(names: list[str]) -> int:
    from twin.units import registered_types, unit_type
    from twin.units.conformance import check_unit_type, format_findings

    names = names or registered_types()
    for name in names:
        unit_type(name)  # an unknown or broken name is bad input (exit 2, with a suggestion)
    failed = []
    for name in names:
        findings = check_unit_type(name)
        print(format_findings(name, findings))
        if not all(f.passed for f in findings):
            failed.append(name)
    if failed:
        print(f"{len(failed)} of {len(names)} unit type(s) failed: {', '.join(failed)}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    print(f"all checks passed ({len(names)} unit type(s))")
    return 0


def _fleet_data(args) -> int:
    from twin.fleet.export import export_fleet_data
    from twin.scenario import load_scenario

    scenario, path = load_scenario(args.scenario, seed=args.seed)
    if scenario.fleet is None:
        raise ConfigError(f"{path}: fleet: the scenario has no fleet section")
    if args.years <= 0:
        raise ConfigError("--years: expected a positive number of years")
    out = export_fleet_data(scenario, path.parent, args.years, Path(args.out))
    print(f"fleet data for {args.years:g} years written to {out}")
    return 0


def _predictor(args) -> int:
    from dataclasses import replace

    if args.predictor_command == "evaluate":
        from agents.predictors.evaluate import evaluate, summary_table
        from agents.predictors.policy import REFERENCE_MODEL

        model = REFERENCE_MODEL if args.model == "reference" else Path(args.model)
        for name, path in (("--model", model), *(("--data", d) for d in args.data)):
            if not Path(path).exists():
                raise ConfigError(f"{name}: {path} does not exist")
        doc = evaluate(model, [Path(d) for d in args.data], Path(args.out))
        print(summary_table(doc["summary"]))
        print(f"metrics of {len(doc['metrics'])} asset types written to {Path(args.out) / 'metrics.json'}")
        return 0
    from agents.predictors.dataset import type_channels
    from agents.predictors.lstm import TrainSettings, save, train_types

    s = TrainSettings()
    hidden_by_type: dict[str, tuple[int, ...]] = {}
    for spec in args.hidden or []:
        name, _, sizes = spec.rpartition("=")
        try:
            hidden = tuple(int(v) for v in sizes.split(","))
        except ValueError:
            raise ConfigError(f"--hidden: expected layer sizes such as 128,64,32 or TYPE=64,32, got '{spec}'") from None
        if not hidden or min(hidden) < 1:
            raise ConfigError(f"--hidden: layer sizes must be positive, got '{spec}'")
        if name:
            hidden_by_type[name] = hidden
        else:
            s = replace(s, hidden=hidden)
    if args.lr is not None:
        if not 0 < args.lr < 1:
            raise ConfigError(f"--lr: expected a learning rate between 0 and 1, got {args.lr}")
        s = replace(s, lr=args.lr)
    for key in ("epochs", "window_h", "block_h", "seed", "threads", "batch"):
        v = getattr(args, key)
        if v is not None:
            if v < (0 if key == "seed" else 1):
                raise ConfigError(f"--{key.replace('_', '-')}: expected a positive number, got {v}")
            s = replace(s, **{"max_epochs" if key == "epochs" else key: v})
    if args.no_stats and args.variant not in (None, "lstm"):
        raise ConfigError(f"--no-stats contradicts --variant {args.variant}")
    if args.no_stats:
        s = replace(s, variant="lstm")
    elif args.variant is not None:
        s = replace(s, variant=args.variant)
    if args.no_residuals:
        s = replace(s, residuals=False)
    folders = [Path(d) for d in args.data]
    for name, group in (("--data", folders), ("--validation-data", [Path(d) for d in args.validation_data or []])):
        for f in group:
            if not (f / "sensors.parquet").exists():
                raise ConfigError(f"{name}: {f} is not a fleet-data folder (no sensors.parquet)")
    if args.validation_data:
        same = {str(Path(d).resolve()) for d in args.validation_data} & {str(f.resolve()) for f in folders}
        if same:
            raise ConfigError(f"--validation-data: {', '.join(sorted(same))} is also in --data")
        s = replace(s, validation_data=tuple(str(d) for d in args.validation_data))
    types, _ = type_channels(folders[0])
    wanted = args.types or sorted(types)
    for name in hidden_by_type:
        if name not in wanted:
            from twin.units.base import did_you_mean

            raise ConfigError(f"--hidden {name}=...: no asset type '{name}' is trained"
                              f"{did_you_mean(name, wanted)} (trained: {', '.join(wanted)})")
    if args.jobs < 1:
        raise ConfigError(f"--jobs: expected a positive number, got {args.jobs}")
    models = train_types(folders, wanted, s, args.jobs, hidden_by_type=hidden_by_type)
    save(models, Path(args.out))
    print(f"{len(models)} model(s) written to {args.out}")
    for t, m in models.items():
        sel = m.meta.get("selection", {}).get("pr_auc_7d")
        got = "" if not sel else " (validation PR-AUC at 7 d: " + ", ".join(
            f"{v} {'-' if x is None else f'{x:.3f}'}" for v, x in sel.items()) + ")"
        print(f"  {t}: {m.meta['variant']}{got}")
    return 0


def _compare(args) -> int:
    from analysis.compare import compare_runs

    result = compare_runs(Path(args.run_a), Path(args.run_b), force=args.force)
    if args.out:
        out = Path(args.out)
        if out.exists() and not args.overwrite:
            raise ConfigError(f"--out: {out} exists; --overwrite to replace it")
    else:
        out = Path(args.run_a) / "compare.json"
        n = 1
        while out.exists() and not args.overwrite:
            out = Path(args.run_a) / f"compare.{n}.json"
            n += 1
    out.write_text(_json(result) + "\n")
    for line in result["summary"]:
        print(line)
    print(f"written to {out}")
    return 0


def _report(args) -> int:
    from twin.results import read_results, write_report_file

    run = read_results(Path(args.run_dir))
    out = Path(args.out) if args.out else Path(args.run_dir) / "report.html"
    if not out.parent.is_dir():
        raise ConfigError(f"--out: {out.parent} is not a folder")
    write_report_file(run, out)
    print(f"report written to {out}")
    return 0


def _tune(args) -> int:
    from twin.run import prepare, tune_in_initial_state
    from twin.scenario import load_scenario

    scenario, path = load_scenario(args.scenario, args.overrides)
    names = args.loop or [n for n, c in scenario.controllers.items() if c.enabled]
    for n in names:
        if n not in scenario.controllers:
            from twin.units.base import did_you_mean
            raise ConfigError(f"{path}: --loop {n}: no such loop{did_you_mean(n, scenario.controllers)} "
                              f"(loops: {', '.join(scenario.controllers) or 'none'})")
    try:
        st = prepare(scenario, path.parent)
    except ConfigError as exc:
        raise _blame(exc, path, args.overrides) from None
    skipped = []
    if not args.loop:  # all loops: leave out those whose signal only the equipment layer provides
        for lp in st.loops:
            if lp.name in names and not math.isfinite(lp.read()):
                names.remove(lp.name)
                skipped.append(lp.name)
    outcomes, _ = tune_in_initial_state(scenario, st.cp, st.plant.x, st.plant.u, names)
    units = {n: _gain_units(st.cp, c.measurement, c.actuator) for n, c in scenario.controllers.items()}
    rows = {}
    for n in names:
        o = outcomes[n]
        spec = scenario.controllers[n]
        row = {"measurement": spec.measurement, "actuator": spec.actuator, "rule": spec.autotune.rule,
               "method": spec.autotune.method, "model": o.model.describe() if o.model is not None else None,
               "current": {"K": spec.K, "Ti_d": spec.Ti_d, "Td_d": spec.Td_d},
               "proposed": None, "accepted": o.applied, "reason": o.reason}
        if o.tuning is not None:
            row["proposed"] = {"K": o.tuning.K, "Ti_d": o.tuning.Ti, "Td_d": o.tuning.Td}
            row["margins"] = o.tuning.verification.as_dict()
        if o.relay is not None:
            row["relay"] = {"Ku": o.relay.Ku, "Pu_d": o.relay.Pu}
        row["units"] = units[n]
        rows[n] = row
    for n in skipped:
        spec = scenario.controllers[n]
        rows[n] = {"measurement": spec.measurement, "actuator": spec.actuator, "rule": spec.autotune.rule,
                   "method": spec.autotune.method, "model": None,
                   "current": {"K": spec.K, "Ti_d": spec.Ti_d, "Td_d": spec.Td_d}, "proposed": None,
                   "accepted": False, "skipped": True,
                   "reason": "not tested: its measurement comes from the equipment layer, which the "
                             "initial-state test does not run", "units": units[n]}
    if args.json:
        print(_json(rows))
        return 0
    print(f"{'loop':18s} {'rule':8s} {'K':>11s} {'K unit':24s} {'Ti [d]':>10s} {'GM':>6s} {'PM deg':>7s} {'Ms':>5s}  "
          "result")
    for n, r in rows.items():
        p = r["proposed"] or {}
        m = r.get("margins") or {}

        def f(v, fmt):
            return format(v, fmt) if isinstance(v, (int, float)) else "-"
        verdict = "accepted" if r["accepted"] else r["reason"] if r.get("skipped") else f"refused: {r['reason']}"
        print(f"{n:18s} {r['rule']:8s} {f(p.get('K'), '11.4g')} {r['units']['K']:24s} {f(p.get('Ti_d'), '10.4g')} "
              f"{f(m.get('gain_margin'), '6.2f')} {f(m.get('phase_margin_deg'), '7.1f')} {f(m.get('Ms'), '5.2f')}  "
              f"{verdict}")
        print(f"{'':18s} model: {r['model']}; current K={r['current']['K']:.4g} {r['units']['K']} "
              f"Ti={r['current']['Ti_d']:.4g} d")
    return 0


def _gain_units(cp, measurement: str, actuator: str) -> dict[str, str]:
    """Units of a loop's gains: K in actuator units per measurement unit, times in days."""
    from twin.run import _signal_unit

    return {"K": f"({_signal_unit(cp, actuator)})/({_signal_unit(cp, measurement)})", "Ti_d": "d", "Td_d": "d"}


def _validate(args) -> int:
    from twin.run import cascade_targets, compile_flowsheet, input_slot, load_flowsheet
    from twin.scenario import load_scenario

    scenario, path = load_scenario(args.scenario, args.overrides)
    try:
        fs = load_flowsheet(scenario.plant, path.parent)
        fs.check()
        cp = compile_flowsheet(fs)
        loop_names = [n for n, c in scenario.controllers.items() if c.enabled]
        for name, c in scenario.controllers.items():
            cascade_targets(name, c, loop_names)
            if not c.actuator.startswith("controllers."):
                input_slot(cp, c.actuator, f"controllers.{name}.actuator")
            sig = c.measurement
            uname, _, part = sig.partition(".")
            external = uname in cp.units and part in dict(cp.units[uname].external_signals())
            if not (external or sig in cp.state_index or sig in cp.input_index
                    or sig.rpartition(".")[0] in cp.stream_index):
                raise ConfigError(f"controllers.{name}.measurement: the plant has no signal '{sig}'")
        for name in scenario.inputs:
            input_slot(cp, name, f"inputs.{name}")
        from twin.clock import TwinEnvironment
        from twin.plant import Plant
        from twin.run import make_instruments

        make_instruments(TwinEnvironment(scenario, scenario.seed), Plant(TwinEnvironment(), cp, scenario.solver),
                         scenario)
        from twin.schedules import check_scenario_targets

        check_scenario_targets(scenario, cp)
        from twin.influent import resolve_path

        for spec in [scenario.influent] + [p.influent for p in scenario.warmup]:
            if spec.file:
                resolve_path(spec.file, path.parent)
        if scenario.equipment is not None:  # a price file is read and checked
            from twin.run import build_tariff

            build_tariff(scenario.equipment.tariff, path.parent)
        if scenario.fleet is not None:  # the fleet file and the predictive policies' model files
            from agents.predictors.policy import load_policy_models
            from twin.fleet.model import load_fleet

            try:
                fleet_path = resolve_path(scenario.fleet.file, path.parent)
            except ConfigError as exc:
                raise ConfigError(str(exc).replace("influent.file", "fleet.file")) from None
            types, _ = load_fleet(fleet_path)
            load_policy_models(scenario.fleet, types, path.parent)
    except ConfigError as exc:
        raise _blame(exc, path, args.overrides) from None
    print(f"{path}: valid ({cp.n_states} states, {cp.n_streams} streams, {len(scenario.controllers)} controllers)")
    return 0


def _run(args) -> int:
    from twin.results import write_results
    from twin.run import run_scenario
    from twin.scenario import load_scenario

    overrides = list(args.overrides)
    if args.checkpoint_every:
        overrides.append(f"outputs.checkpoint_every={args.checkpoint_every}")
    scenario, path = load_scenario(args.scenario, overrides, args.seed)
    out = Path(args.out) if args.out else Path("results") / scenario.name
    progress = not args.quiet and sys.stderr.isatty()
    checkpoint = None
    every = scenario.outputs.checkpoint_every
    if every or args.resume:
        from twin.checkpoint import Checkpointing, checkpoint_info
        from twin.durations import format_duration

        folder = out.with_name(out.name + ".checkpoint")
        every_s = int(every) if every else None
        if args.resume:
            info = checkpoint_info(folder)
            if info is None:
                raise ConfigError(f"--resume: no checkpoint in {folder} (run with --checkpoint-every first)")
            if not args.checkpoint_every and info["every_s"]:
                every_s = info["every_s"]  # the interval of the run being resumed
            if not args.quiet:
                then = f", checkpoints every {format_duration(every_s)}" if every_s else ", no further checkpoints"
                print(f"resuming from day {info['now_s'] / 86400:g} (checkpoint in {folder}{then})", file=sys.stderr)
        checkpoint = Checkpointing(folder, every_s, args.resume)
    try:
        if not args.quiet:
            _compile_note(scenario, path)
        result = run_scenario(scenario, path.parent, progress=progress, checkpoint=checkpoint)
    except ConfigError as exc:
        raise _blame(exc, path, args.overrides) from None
    except KeyboardInterrupt:
        if checkpoint is None:
            raise
        _interrupted(args, out, checkpoint)
        return EXIT_INTERRUPTED
    final = write_results(result, out, report=not args.no_report)
    if checkpoint is not None and result.failed is None:
        import shutil

        shutil.rmtree(checkpoint.folder, ignore_errors=True)
    if result.failed is not None:
        print(f"error: {result.failed}", file=sys.stderr)
        print(f"partial results kept in {final}", file=sys.stderr)
        return EXIT_SOLVER_ERROR
    _summary(result.kpis, final, result.metadata)
    return 0


def _interrupted(args, out: Path, checkpoint) -> None:
    """Ctrl-C during a run with checkpoints: say where the last checkpoint is and how to resume."""
    import shlex

    from twin.checkpoint import checkpoint_info

    info = checkpoint_info(checkpoint.folder)
    if info is None:
        print(f"interrupted before the first checkpoint: nothing to resume in {checkpoint.folder}", file=sys.stderr)
        return
    cmd = ["twin", "run", args.scenario, "--out", str(out)]
    for o in args.overrides:
        cmd += ["--set", o]
    if args.seed is not None:
        cmd += ["--seed", str(args.seed)]
    if args.checkpoint_every:
        cmd += ["--checkpoint-every", args.checkpoint_every]
    cmd += [f for f, on in (("--no-report", args.no_report), ("--quiet", args.quiet)) if on]
    print(f"interrupted: a checkpoint exists at day {info['now_s'] / 86400:g} in {checkpoint.folder}", file=sys.stderr)
    print(f"resume with: {shlex.join(cmd + ['--resume'])}", file=sys.stderr)


def _compile_note(scenario, path: Path) -> None:
    """Say so, before a run, when its plant's numba kernels are not cached yet (a 10-20 s compile)."""
    if scenario.fleet is not None and not scenario.fleet.process_model:
        return
    from twin.flowsheet import cache_dir
    from twin.run import compile_flowsheet, load_flowsheet

    cp = compile_flowsheet(load_flowsheet(scenario.plant, path.parent))  # reused by the run
    if not cp.kernels_cached():
        print(f"compiling the plant model '{scenario.plant}' with numba (first run of this plant, 10-20 s); "
              f"the compiled code is cached in {cache_dir()} for later runs", file=sys.stderr)


def _num(v: float, digits: int = 0) -> str:
    """A figure with thousands separators."""
    return f"{v:,.{digits}f}"


def _summary(kpis: dict, out: Path, metadata: dict | None = None) -> None:
    b = kpis.get("bsm1")
    run = kpis["run"]
    print(f"simulated {run['total_simulated_days']:g} d in {run['wall_s']:.2f} s; results in {out}")
    _summary_bsm1(b)
    for line in _summary_extra(kpis, metadata or {}):
        print("  " + line)


def _summary_extra(kpis: dict, metadata: dict) -> list[str]:
    """Energy, maintenance and control lines of the console summary (what the scenario has beyond BSM1)."""
    lines = []
    e = kpis.get("energy")
    if e:
        cur = e.get("units", {}).get("cost") or "currency of the tariff"
        areas = sorted(e.get("by_area", {}).items(), key=lambda kv: -kv[1]["kWh"])
        lines.append(f"energy {_num(e['total_kWh'])} kWh (" + ", ".join(f"{a} {_num(v['kWh'])}" for a, v in areas)
                     + f"); cost {_num(e['total_cost'])} {cur}")
    m = kpis.get("maintenance", {}).get("by_type", {}).get("total")
    if m:
        cur = kpis["maintenance"].get("units", {}).get("cost") or "currency of the cost data"
        d = m["downtime_h"]
        avail = f"{100 * m['availability']:.2f} %" if m.get("availability") is not None else "-"
        lines.append(f"maintenance: {_num(m['failures'])} failures, availability {avail}, downtime "
                     f"{_num(d['planned'] + d['unplanned'], 1)} h (unplanned {_num(d['unplanned'], 1)} h), "
                     f"cost {_num(m['cost']['total'])} {cur}")
        outside = {t: v["model_decisions"] for t, v in kpis["maintenance"]["by_type"].items()
                   if v.get("model_decisions", {}).get("outside_training_context")}
        if outside:
            lines.append("warning: the predictive model ran outside its training context (load, air temperature) in "
                         + ", ".join(f"{_num(v['outside_training_context'])} of {_num(v['total'])} {t} decisions"
                                     for t, v in sorted(outside.items()))
                         + " (events 'model_outside_context'; a model trained on this plant's data fits it)")
    c = kpis.get("control")
    if c:
        units = metadata.get("controllers", {})
        parts = []
        for name, k in c.items():
            if "IAE" in k:
                unit = units.get(name, {}).get("measurement_unit")
                parts.append(f"{name} {_num(k['IAE'], 3)}" + (f" {unit}·d" if unit else ""))
        if parts:
            lines.append("control IAE: " + ", ".join(parts))
    return lines


def _summary_bsm1(b: dict | None) -> None:
    if b:
        e = b["effluent_avg"]
        print(f"  EQI {b['EQI']:,.1f} kg PU/d  AE {b['AE']:.1f} kWh/d  PE {b['PE']:.1f} kWh/d  "
              f"SP {b['SP']:.1f} kg SS/d  OCI {b['OCI']:.1f}")
        print(f"  effluent (g/m3): SNH {e['SNH']:.3f}  Ntot {e['Ntot']:.3f}  TSS {e['TSS']:.3f}  "
              f"CODt {e['CODt']:.2f}  BOD5 {e['BOD5']:.3f}")
        worst = {k: v["pct_time"] for k, v in b["violations"].items() if v["pct_time"] > 0}
        if worst:
            print("  time in violation: " + ", ".join(f"{k} {v:.2f} %" for k, v in worst.items()))


def _json(o) -> str:
    return json.dumps(o, indent=2)


if __name__ == "__main__":
    sys.exit(main())
