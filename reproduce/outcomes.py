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
    """A tqdm bar over the sweep's work, in estimated CPU-hours; total shrinks when runs end
    early or fail.

    A run's env steps are weighted by the cost model's hours per step for its algorithm and
    domain (``reproduce.cost.rate_for``), plus its start-up once begun: a Humanoid
    TR-c-Q-Prop step costs about 16 times a HalfCheetah TRPO step, so a bar over raw steps
    gives an ETA that is wrong by as much. Work that resumed runs already hold (their
    progress.csv at the start) is the bar's ``initial``: tqdm's ETA counts only what this
    sweep trains, so a restart does not show the held millions as if trained in its first
    seconds. The postfix keeps the env steps."""

    BAR_FORMAT = ("{{desc}}: {{percentage:3.0f}}%|{{bar}}| {{n:.2f}}/{{total:.2f}} {unit} (est.) "
                  "[{{elapsed}}<{{remaining}}{{postfix}}]")
    UNITS = ((1.0, "CPU-h"), (60.0, "CPU-min"), (3600.0, "CPU-s"))  # the first that shows >= 1

    def __init__(self, specs: list[RunSpec], enabled: bool,
                 results: Path | str | None = None) -> None:
        from reproduce.cost import rate_for, startup_hours

        self.budget = {s.key: s.max_steps for s in specs}
        self.hours_per_step = {s.key: 1.0 / (rate_for(s) * 3600.0) for s in specs}
        self.startup = startup_hours()
        total = self.hours(self.budget)
        self.scale, unit = next(((f, u) for f, u in self.UNITS if total * f >= 1),
                                self.UNITS[-1])
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

            self.bar = tqdm(total=total * self.scale,
                            initial=self.hours(self.steps) * self.scale,
                            bar_format=self.BAR_FORMAT.format(unit=unit), dynamic_ncols=True,
                            desc="sweep")

    def hours(self, steps: dict[str, int]) -> float:
        """Estimated CPU-hours of ``steps`` env steps per run (the cost model's rates, and its
        start-up for each run that has begun)."""
        return sum(n * self.hours_per_step.get(k, 0.0) + (self.startup if n else 0.0)
                   for k, n in steps.items())

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
        self.bar.total = max(1e-9, self.hours(self.budget) * self.scale)
        self.bar.n = self.hours(self.steps) * self.scale
        postfix = {"steps": f"{sum(self.steps.values()):,}/{sum(self.budget.values()):,}"}
        postfix.update((k, v) for k, v in self.counts.items() if v or k == "running")
        self.bar.set_postfix(postfix, refresh=False)
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
