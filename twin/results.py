"""The results folder, written atomically.

Everything is written into a hidden temporary folder beside the destination and renamed
into place when complete, so a results folder either holds a whole run or does not exist.
A run whose integration failed keeps what it had in ``<out>.FAILED`` (with a
``FAILED.txt`` saying why), never under the normal name.

Contents: ``scenario.resolved.yaml``, ``timeseries.parquet`` (columns carry their units,
``time_s`` and ``time_d`` count from the start of the main period), ``events.jsonl``,
``kpis.json`` and ``report.html``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

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
