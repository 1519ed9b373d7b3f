"""The results folder, written atomically.

Everything is written into a hidden temporary folder beside the destination and renamed
into place when complete, so a results folder either holds a whole run or does not exist.
A run whose integration failed keeps what it had in ``<out>.FAILED`` (with a
``FAILED.txt`` saying why), never under the normal name.

Contents: ``scenario.resolved.yaml``, ``timeseries.parquet`` (columns carry their units,
``time_s`` and ``time_d`` count from the start of the main period), ``events.jsonl``,
``kpis.json``, ``metadata.json`` (what the analysis needs to know about the plant: reactor
volumes, the roles of streams, loops and instruments with their units) and ``report.html``.
:func:`read_results` reads a folder back, so ``twin report`` can write the report again
from a finished run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from twin.scenario import dump_scenario


def write_timeseries(path: Path, times_s: np.ndarray, columns: list[str], values: np.ndarray,
                     units: dict[str, str] | None = None) -> None:
    """The series as Parquet; ``units`` (column -> unit) goes into the file's schema metadata
    as the JSON mapping ``units`` (``pyarrow.parquet.read_schema(path).metadata[b"units"]``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = [pa.array(times_s.astype(np.int64)), pa.array(times_s / 86400.0)]
    names = ["time_s", "time_d"]
    for j, c in enumerate(columns):
        arrays.append(pa.array(values[:, j]))
        names.append(c)
    table = pa.Table.from_arrays(arrays, names=names)
    if units:
        table = table.replace_schema_metadata({"units": json.dumps({n: units[n] for n in names if n in units})})
    pq.write_table(table, path, compression="zstd")


def write_results(result, out: Path, report: bool = True) -> Path:
    """Write a run's results to ``out`` (replaced if it exists). Returns the final folder."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    try:
        s = result.scenario
        (tmp / "scenario.resolved.yaml").write_text(dump_scenario(s))
        if s.outputs.timeseries:
            write_timeseries(tmp / "timeseries.parquet", result.times_s, result.columns, result.values,
                             result.metadata.get("column_units"))
        (tmp / "events.jsonl").write_text(result.events.to_jsonl())
        (tmp / "kpis.json").write_text(json.dumps(result.kpis, indent=2, sort_keys=True) + "\n")
        (tmp / "metadata.json").write_text(json.dumps(result.metadata, indent=2) + "\n")  # keeps loop order
        if result.failed is not None:
            (tmp / "FAILED.txt").write_text(f"The run stopped early: {result.failed}\n"
                                            "The files here hold the partial results up to that time.\n")
        elif report and s.outputs.report:
            from analysis.report import write_report

            write_report(tmp / "report.html", result)
        final = out if result.failed is None else out.with_name(out.name + ".FAILED")
        if final.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{final.name}.old.", dir=out.parent))
            os.replace(final, trash / "old")
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@dataclass
class SavedRun:
    """A run read back from its results folder: what :func:`analysis.report.write_report` reads."""

    scenario: Any
    times_s: np.ndarray
    columns: list[str]
    values: np.ndarray
    events: Any  # ``.records``: the event log's entries
    kpis: dict[str, Any]
    metadata: dict[str, Any]


@dataclass
class _Events:
    records: list[dict[str, Any]]


def read_results(folder: Path) -> SavedRun:
    """Read a results folder written by :func:`write_results`. A missing or unreadable part is a
    ConfigError naming the file. Without ``timeseries.parquet`` (``outputs.timeseries: false``)
    the series are empty."""
    from twin.errors import ConfigError
    from twin.scenario import load_scenario

    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such results folder")
    for name in ("scenario.resolved.yaml", "kpis.json", "events.jsonl", "metadata.json"):
        if not (folder / name).exists():
            hint = " (written by runs of this version; run the scenario again)" if name == "metadata.json" else ""
            raise ConfigError(f"{folder}: not a results folder: {name} is missing{hint}")
    scenario, _ = load_scenario(folder / "scenario.resolved.yaml")
    docs = {}
    for name in ("kpis.json", "metadata.json"):
        try:
            docs[name] = json.loads((folder / name).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{folder / name}: not valid JSON ({exc})") from None
    records = []
    for i, line in enumerate((folder / "events.jsonl").read_text().splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{folder / 'events.jsonl'}: line {i}: not valid JSON ({exc})") from None
    times = np.zeros(0, dtype=np.int64)
    columns: list[str] = []
    values = np.zeros((0, 0))
    ts = folder / "timeseries.parquet"
    if ts.exists():
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(ts)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise ConfigError(f"{ts}: not a readable Parquet file ({exc})") from None
        if "time_s" not in table.column_names:
            raise ConfigError(f"{ts}: no time_s column")
        times = table.column("time_s").to_numpy().astype(np.int64)
        columns = [c for c in table.column_names if c not in ("time_s", "time_d")]
        values = (np.column_stack([table.column(c).to_numpy(zero_copy_only=False).astype(float) for c in columns])
                  if columns else np.zeros((times.size, 0)))
    return SavedRun(scenario, times, columns, values, _Events(records), docs["kpis.json"], docs["metadata.json"])


def write_report_file(run, path: Path) -> Path:
    """Write the report of ``run`` to ``path`` atomically (a temporary file renamed into place)."""
    from analysis.report import render_report

    path = Path(path)
    text = render_report(run)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m
