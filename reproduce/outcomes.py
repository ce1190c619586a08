"""A sweep's outcomes as they come in: each run's result line, the progress bar, the counts.

A run's result is the dict ``reproduce.runner.run_one`` returns (``key``, ``status``,
``stopped``, ``env_steps``, ``seconds``, ``error``, ``log``); a backend adds the status
``"not started"`` for runs it did not start because the sweep was told to stop.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from qprop_tf.progress import COLUMNS as C
from reproduce.spec import RunSpec

NOT_STARTED = "not started"


def not_started(spec: RunSpec, results: Path | str) -> dict[str, Any]:
    return {"key": spec.key, "status": NOT_STARTED, "stopped": None, "env_steps": 0,
            "seconds": 0.0, "error": "the sweep was stopped before this run started",
            "log": str(spec.run_dir(results) / "log.txt")}


def last_env_steps(progress_csv: Path) -> int:
    """env_steps of the last complete row of a progress.csv being written (0 if none)."""
    try:
        with open(progress_csv, "rb") as f:
            header = f.readline().decode().strip().split(",")
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 65536))
            tail = f.read().decode(errors="replace")
    except OSError:
        return 0
    lines = tail.split("\n")
    complete = lines[:-1] if not tail.endswith("\n") else lines
    rows = [ln for ln in complete if ln.strip()]
    if len(rows) < 1 or C.env_steps not in header:
        return 0
    fields = rows[-1].split(",")
    if fields == header or len(fields) != len(header):
        return 0
    try:
        return int(float(fields[header.index(C.env_steps)]))
    except ValueError:
        return 0


class Progress:
    """A tqdm bar over the sweep's env steps; total shrinks when runs end early or fail.

    Steps that resumed runs already hold (read from their progress.csv at the start) are the
    bar's `initial`: tqdm's rate and ETA count only what this sweep trains, so a restart does
    not show the held millions as if trained in the first seconds."""

    def __init__(self, specs: list[RunSpec], enabled: bool,
                 results: Path | str | None = None) -> None:
        self.budget = {s.key: s.max_steps for s in specs}
        self.steps = dict.fromkeys(self.budget, 0)
        if results is not None:
            for s in specs:
                self.steps[s.key] = min(last_env_steps(s.run_dir(results) / "progress.csv"),
                                        s.max_steps)
        self.held = sum(self.steps.values())
        self.finished: set[str] = set()
        self.bar = None
        self.counts = {"running": 0, "done": 0, "failed": 0, "busy": 0, "interrupted": 0,
                       NOT_STARTED: 0}
        if enabled and specs:
            from tqdm import tqdm

            self.bar = tqdm(total=sum(self.budget.values()), initial=self.held, unit="step",
                            unit_scale=True, dynamic_ncols=True, desc="sweep", smoothing=0.05)

    def set_steps(self, key: str, steps: int) -> None:
        if key not in self.finished:
            self.steps[key] = min(max(self.steps[key], steps), self.budget[key])

    def finish(self, key: str, steps: int) -> None:
        """A run ended (done, early, failed): its remaining budget leaves the total."""
        self.finished.add(key)
        self.steps[key] = steps
        self.budget[key] = steps

    def refresh(self) -> None:
        if self.bar is None:
            return
        self.bar.total = max(1, sum(self.budget.values()))
        self.bar.n = sum(self.steps.values())
        self.bar.set_postfix({k: v for k, v in self.counts.items() if v or k == "running"},
                             refresh=False)
        self.bar.refresh()

    def write(self, line: str) -> None:
        if self.bar is None:
            print(line, flush=True)
        else:
            self.bar.write(line)

    def close(self) -> None:
        if self.bar is not None:
            self.refresh()
            self.bar.close()


def describe(result: dict[str, Any]) -> str:
    if result["status"] == "busy":
        return f"busy    {result['key']}: {result['error']}"
    if result["status"] == "done" and result["stopped"] == "already":
        return f"done    {result['key']}: already finished by another process"
    if result["status"] == "interrupted":
        return f"stopped {result['key']}: {result['error']}"
    if result["status"] == NOT_STARTED:
        return f"skipped {result['key']}: {result['error']}"
    if result["status"] == "done":
        how = "stopped early by rule" if result["stopped"] == "early" else "full budget"
        return (f"done    {result['key']}: {result['env_steps']:,} env steps in "
                f"{result['seconds']:.1f} s ({how})")
    return (f"FAILED  {result['key']}: {result['error']}\n"
            f"        log: {result['log']}")


def record(res: dict[str, Any], progress: Progress, out: list[dict[str, Any]]) -> None:
    """Count and print one run's outcome (runs not started are counted, not printed)."""
    out.append(res)
    status = res["status"]
    progress.counts[status if status in progress.counts and status != "running"
                    else "failed"] += 1
    progress.finish(res["key"], int(res["env_steps"]))
    if status != NOT_STARTED:
        progress.write(describe(res))
