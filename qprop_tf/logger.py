"""Run directory: config.json, progress.csv (one row per iteration) and TensorBoard events.

The columns of progress.csv, and which of them depend on the clock (``TIME_COLUMNS``), are
declared in :mod:`qprop_tf.progress`.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import tensorflow as tf

from qprop_tf.progress import COLUMNS as C

FLOAT32_MAX = 3.4028234663852886e38
"""The largest value TensorBoard's float32 scalars hold."""


class RunLogger:
    """Appends one flushed row per iteration, so a crash never loses logged iterations."""

    def __init__(self, out_dir: str | Path, tensorboard: bool = True,
                 resume_rows: int | None = None) -> None:
        """``resume_rows``: keep the first rows of an existing progress.csv and append after
        them (a resumed run; later rows are cut, they get recomputed). None starts afresh."""
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.progress_path = self.dir / "progress.csv"
        self._file = None
        self._writer: csv.DictWriter | None = None
        self.rows = 0
        self.kept_rows: list[dict[str, str]] = []
        if resume_rows:
            self._resume(resume_rows)
        self._tb = tf.summary.create_file_writer(str(self.dir)) if tensorboard else None

    def _resume(self, n: int) -> None:
        with open(self.progress_path, newline="") as f:
            reader = csv.DictReader(f)
            fields = list(reader.fieldnames or [])
            rows = [row for _, row in zip(range(n), reader, strict=False)]
        if len(rows) < n:
            raise ValueError(f"{self.progress_path} has {len(rows)} rows, the checkpoint "
                             f"expects {n}")
        self._rewrite(fields, rows)
        self.rows = n
        self.kept_rows = rows

    def _rewrite(self, fields: list[str], rows: list[dict[str, Any]]) -> None:
        """Replace progress.csv atomically with ``rows`` under the header ``fields``, and
        reopen it for appending."""
        tmp = self.progress_path.with_name("progress.csv.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.progress_path)
        self._file = open(self.progress_path, "a", newline="")  # noqa: SIM115
        self._writer = csv.DictWriter(self._file, fieldnames=fields)

    def write_config(self, config: dict[str, Any]) -> None:
        tmp = self.dir / "config.json.tmp"
        tmp.write_text(json.dumps(config, indent=2, sort_keys=True, default=str) + "\n")
        tmp.replace(self.dir / "config.json")

    def _widen(self, fields: list[str]) -> None:
        """Rewrite progress.csv under the header ``fields`` (a resumed run whose file was
        written by older code, before columns were added): earlier rows keep their values,
        blank in the new columns."""
        old = list(self._writer.fieldnames)
        fields = fields + [f for f in old if f not in fields]
        self._file.close()
        with open(self.progress_path, newline="") as f:
            rows = list(csv.DictReader(f))
        self._rewrite(fields, rows)

    def log(self, row: dict[str, Any]) -> None:
        if self._writer is not None and not set(row) <= set(self._writer.fieldnames):
            self._widen(list(row))
        if self._writer is None:
            self._file = open(self.progress_path, "w", newline="")  # noqa: SIM115
            self._writer = csv.DictWriter(self._file, fieldnames=list(row))
            self._writer.writeheader()
        self._writer.writerow(row)
        self._file.flush()
        self.rows += 1
        if self._tb is not None:
            step = int(row.get(C.env_steps, row.get(C.iteration, 0)))
            with self._tb.as_default():
                for key, value in row.items():  # TensorBoard stores float32: a finite
                    # value beyond its range (a blown-up statistic) stays in the CSV only
                    if isinstance(value, (int, float)) and abs(value) <= FLOAT32_MAX:
                        tf.summary.scalar(key, value, step=step)
            self._tb.flush()

    def sync(self) -> None:
        """fsync progress.csv (before a checkpoint that counts its rows)."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._tb is not None:
            self._tb.close()


def report(bar: Any, line: str, n_steps: int, verbose: bool) -> None:
    """Advance the progress bar by ``n_steps`` and print the iteration's summary line
    (under the bar when there is one)."""
    if bar is not None:
        bar.update(n_steps)
        if verbose:
            bar.write(line)
    elif verbose:
        print(line, flush=True)
