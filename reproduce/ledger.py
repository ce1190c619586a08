"""The campaign's ledger: every run of a profile, where it stands, what it cost, what is left.

``python -m reproduce.ledger --profile table1 --results results --campaign /var/tmp/qprop-campaign``
writes ``results/table1/CAMPAIGN.md`` (``<results>/<profile>/CAMPAIGN.md``; ``--out``). A run's
status, looked up in the campaign root first and then in the committed results:

- **done**: its run directory has ``DONE``;
- **stopped (non-finite)**: stopped on a NonFiniteError (:func:`reproduce.results.
  stopped_nonfinite`): a result, counted by the tables as not crossed after it, never resumed;
- **in flight**: unfinished, its ``LOCK`` held by a live process (a sweep is training it);
- **paused**: unfinished, not locked: the next ``make campaign`` resumes it from its checkpoint;
- **failed**: unfinished, and its log shows a traceback (kept and named, not rerun away);
- **to go**: no run directory yet.

CPU-hours spent are each run's own process CPU time (``progress.csv``'s ``cpu_time``; one
process, one TF thread), summed over done and unfinished runs. A run made before that column
existed counts its wall time (``time``) instead: the same on a core of its own, more when
more runs than cores shared the machine. The estimate left is an upper bound (no early stop)
made two ways: by the cost model (``reproduce.cost.run_hours``, the rates in
``profiles.toml``), and at the env steps per CPU-second this ledger's own runs of the same
cell measured: the runs that logged ``cpu_time`` if the cell has any, else its wall-timed
ones (an upper bound when runs outnumbered cores); an unfinished run at its own where
slower, a run with no rate of its own at its cell's times this machine's measured slowdown
(:func:`machine_slowdown`); a cell with no run yet takes the cost model's. A run to go
costs its whole budget, an unfinished one what its budget has left, a done, stopped or failed
one nothing. Given the workers (``campaign status`` and ``collect`` pass the profile's), the
ledger also gives the wall-clock hours left (:func:`wall_hours`): the runs left on that many
one-core lanes in the sweep's start order, which counts the tail where one long run has the
machine to itself.
"""

from __future__ import annotations

import argparse
import heapq
import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qprop_tf.progress import COLUMNS as C
from qprop_tf.rundir import CONFIG, DONE, is_locked
from reproduce.campaign_losses import lost_line, read_losses
from reproduce.cost import run_hours, startup_hours
from reproduce.results import stopped_nonfinite
from reproduce.reuse import holds_other_spec
from reproduce.runner import LOG
from reproduce.spec import (
    REPO_ROOT,
    RunSpec,
    SpecError,
    profile_dir,
    resolve_runs,
)

STATUSES = ("done", "stopped (non-finite)", "in flight", "paused", "failed", "to go")
ENDED = ("done", "stopped (non-finite)", "failed")  # nothing left to run
LEDGER = "CAMPAIGN.md"


def ledger_path(results: Path, profile: str) -> Path:
    """Where a profile's ledger goes: ``<results>/<profile>/CAMPAIGN.md``."""
    return profile_dir(results, profile) / LEDGER


@dataclass
class RunState:
    spec: RunSpec
    status: str
    path: Path | None
    env_steps: int
    hours_spent: float  # CPU hours (wall hours for runs that predate cpu_time)
    cpu_timed: bool  # hours_spent is the process's CPU time, not wall time
    hours_left: float  # by the cost model
    commit: str


def last_progress(run_dir: Path) -> tuple[int, float, bool]:
    """(env steps, training seconds, CPU-timed) of the last row of ``progress.csv``: its
    process CPU seconds (``cpu_time``) when it logged them, else its wall seconds; (0, 0,
    False) if none."""
    try:
        df = pd.read_csv(run_dir / "progress.csv",
                         usecols=lambda c: c in (C.env_steps, C.time, C.cpu_time))
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return 0, 0.0, False
    if df.empty or C.env_steps not in df or C.time not in df:
        return 0, 0.0, False
    last = df.iloc[-1]
    cpu = float(last[C.cpu_time]) if C.cpu_time in df else float("nan")
    if np.isfinite(cpu):
        return int(last[C.env_steps]), cpu, True
    return int(last[C.env_steps]), float(last[C.time]), False


def _commit(run_dir: Path) -> str:
    try:
        return str(json.loads((run_dir / CONFIG).read_text()).get("git_commit") or "?")[:7]
    except (OSError, ValueError):
        return "?"


def _failed(run_dir: Path) -> bool:
    try:
        return "Traceback (most recent call last)" in (run_dir / LOG).read_text(errors="replace")
    except OSError:
        return False


def run_state(spec: RunSpec, roots: list[Path]) -> RunState:
    """Where one run stands: the first root holding it finished, else the first holding it.
    A directory holding another spec's run (``reuse.holds_other_spec``) does not hold it."""
    dirs = [spec.run_dir(r) for r in roots if spec.run_dir(r).is_dir()
            and not holds_other_spec(spec, spec.run_dir(r))]
    full = run_hours(spec)
    if not dirs:
        return RunState(spec, "to go", None, 0, 0.0, False, full, "")
    done = [d for d in dirs if (d / DONE).is_file()]
    run_dir = done[0] if done else dirs[0]
    steps, seconds, cpu_timed = last_progress(run_dir)
    if done:
        status, left = "done", 0.0
    else:
        status = ("in flight" if is_locked(run_dir)
                  else "stopped (non-finite)" if stopped_nonfinite(run_dir)
                  else "failed" if _failed(run_dir) else "paused")
        left = 0.0 if status in ENDED else full * max(0.0, 1 - steps / spec.max_steps)
    return RunState(spec, status, run_dir, steps, seconds / 3600, cpu_timed, left,
                    _commit(run_dir))


def _cell_rates(runs: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Env steps per CPU-hour, cell by cell: summed steps / summed hours over the cell's
    CPU-timed runs with progress, or, with none, its wall-timed ones."""
    measured = runs[(runs["env_steps"] > 0) & (runs["hours_spent"] > 0)]
    cell_has_cpu = measured.groupby(["domain", "algo"])["cpu_timed"].transform("any")
    use = measured[measured["cpu_timed"] | ~cell_has_cpu]
    sums = use.groupby(["domain", "algo"])[["env_steps", "hours_spent"]].sum()
    return (sums["env_steps"] / sums["hours_spent"]).to_dict()


def _own_rate(row: dict[str, Any]) -> float | None:
    """A ledger row's own env steps per CPU-hour, when it logged CPU time and has progress."""
    if row["cpu_timed"] and row["env_steps"] > 0 and row["hours_spent"] > 0:
        return row["env_steps"] / row["hours_spent"]
    return None


def machine_slowdown(runs: pd.DataFrame) -> float:
    """This machine's speed against the machines that finished the runs, in (0, 1]: the
    median, over the unfinished CPU-timed runs with progress (which run here), of
    own rate / the rate of their cell's finished runs; 1 when no such pair exists or the
    median is above 1. The VMs have differed up to 3x per CPU-second."""
    if runs.empty:
        return 1.0
    done = runs[runs["status"].isin(ENDED) & runs["cpu_timed"]]
    finished = _cell_rates(done) if len(done) else {}
    ratios = [own / finished[r["domain"], r["algo"]]
              for r in runs[~runs["status"].isin(ENDED)].to_dict("records")
              if (own := _own_rate(r)) is not None and (r["domain"], r["algo"]) in finished]
    return min(1.0, float(np.median(ratios))) if ratios else 1.0


def measured_hours_left(runs: pd.DataFrame, specs: list[RunSpec]) -> pd.Series:
    """Each run's hours left at the env steps per CPU-hour its cell's runs measured
    (:func:`_cell_rates`), or at its own, when it is CPU-timed and slower (a run on a slower
    machine than its cell's others); a run with no rate of its own at its cell's times
    :func:`machine_slowdown`; the cost model's estimate where the cell has no such run.
    Runs to go also pay the start-up."""
    rate = _cell_rates(runs)
    slowdown = machine_slowdown(runs)
    left = []
    for row, spec in zip(runs.to_dict("records"), specs, strict=True):
        r = rate.get((row["domain"], row["algo"]))
        if r is None or row["status"] in ENDED:
            left.append(row["hours_left"])
            continue
        own = _own_rate(row)
        r = min(r, own) if own is not None else r * slowdown
        steps = max(0, spec.max_steps - row["env_steps"])
        left.append(steps / r + (startup_hours() if row["status"] == "to go" else 0.0))
    return pd.Series(left, index=runs.index, dtype=float)


def ledger(specs: list[RunSpec], roots: list[Path]) -> pd.DataFrame:
    """One row per run: domain, algo, seed, status, env steps, budget, hours spent, hours left
    (cost model, and at measured rates), commit, and its place in the sweep's start order."""
    from reproduce.sweep import order_runs

    place = {s.key: i for i, s in enumerate(order_runs(list(specs)))}
    rows = []
    for spec in specs:
        st = run_state(spec, roots)
        rows.append({"domain": spec.domain, "algo": spec.algo, "seed": spec.seed,
                     "status": st.status, "env_steps": st.env_steps,
                     "budget_steps": spec.max_steps, "hours_spent": st.hours_spent,
                     "cpu_timed": st.cpu_timed,
                     "hours_left": st.hours_left, "commit": st.commit,
                     "order": place[spec.key]})
    runs = pd.DataFrame(rows)
    runs["hours_left_measured"] = measured_hours_left(runs, specs) if rows else []
    return runs


def wall_hours(runs: pd.DataFrame, workers: int) -> float:
    """Wall-clock hours until every run left has ended, on ``workers`` lanes of one core
    each, at the measured rates and full budget: the runs in flight hold lanes first, then
    the others start in the sweep's order (``reproduce.sweep.order_runs``) as lanes free up.
    Unlike CPU-hours / workers it counts the tail, where one long run has the machine to
    itself while the other lanes idle."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, not {workers}")
    left = runs[~runs["status"].isin(ENDED)]
    queue = pd.concat([left[left["status"] == "in flight"].sort_values("order"),
                       left[left["status"] != "in flight"].sort_values("order")])
    lanes = [0.0] * workers
    for hours in queue["hours_left_measured"]:
        heapq.heapreplace(lanes, lanes[0] + float(hours))
    return max(lanes)


def cells(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (domain, algo): the seeds in each status, hours spent and left, commits."""
    out = []
    for (domain, algo), g in runs.groupby(["domain", "algo"], sort=False):
        row: dict[str, object] = {"domain": domain, "algo": algo}
        for status in STATUSES:
            seeds = g.loc[g["status"] == status, "seed"].tolist()
            row[status] = ", ".join(str(s) for s in seeds) or "-"
        row["hours_spent"] = g["hours_spent"].sum()
        row["hours_left"] = g["hours_left"].sum()
        row["hours_left_measured"] = g["hours_left_measured"].sum()
        row["commits"] = ", ".join(sorted({c for c in g["commit"] if c})) or "-"
        out.append(row)
    return pd.DataFrame(out)


def _git_head() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def wall_text(runs: pd.DataFrame, workers: int | None) -> str:
    """", wall at most X h on W workers" (``wall_hours``), or nothing without ``workers``."""
    if workers is None or "order" not in runs:
        return ""
    return f"; wall-clock at most {wall_hours(runs, workers):.1f} h on {workers} worker(s)"


def brief(runs: pd.DataFrame, lost: pd.DataFrame | None = None,
          workers: int | None = None) -> str:
    """The ledger's totals on one line: runs by status, CPU-hours spent (and lost) and left,
    and with ``workers`` the wall-clock hours left (``wall_hours``)."""
    counts = runs["status"].value_counts()
    total = ", ".join(f"{int(counts.get(s, 0))} {s}" for s in STATUSES)
    lost_h = "" if lost is None or not len(lost) else (
        f" (+{lost['lost_cpu_hours'].sum():.1f} lost to interruptions)")
    return (f"{len(runs)} runs: {total}; CPU-h spent {runs['hours_spent'].sum():.1f}{lost_h}, "
            "left at "
            f"most {runs['hours_left_measured'].sum():.1f} (measured rates) / "
            f"{runs['hours_left'].sum():.1f} (cost model)" + wall_text(runs, workers))


def render(profile: str, runs: pd.DataFrame, roots: list[Path], command: str,
           lost: pd.DataFrame | None = None, workers: int | None = None,
           nice: int = 0) -> str:
    """The ledger as Markdown: totals (with the work ``lost``, ``LOST.csv``'s rows, when there
    is some, and with ``workers`` the wall-clock hours left, which for a profile whose sweeps
    start at ``nice`` > 0 assume cores no sweep of lower niceness takes), then one line per
    cell."""
    c = cells(runs)
    counts = runs["status"].value_counts()
    total = ", ".join(f"{int(counts.get(s, 0))} {s}" for s in STATUSES)
    lines = [
        f"# Campaign ledger: profile `{profile}`", "",
        f"Written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC at commit {_git_head()} by "
        f"`{command}`; roots read: {', '.join(f'`{r}`' for r in roots)}.", "",
        f"- **Runs**: {len(runs)}: {total}.",
        f"- **CPU-hours spent**: {runs['hours_spent'].sum():.1f} (each run's own process CPU "
        "time, one TF thread each; runs that predate `progress.csv`'s `cpu_time` count their "
        "wall time, more than their CPU time when runs outnumbered cores).",
        *([lost_line(lost)] if lost is not None and len(lost) else []),
        f"- **CPU-hours left (estimate)**: at most {runs['hours_left_measured'].sum():.1f} at "
        "the rates this profile's runs measured, cell by cell (an unfinished run's own where "
        "slower; a run to go at its cell's times this machine's measured slowdown, "
        f"{machine_slowdown(runs):.2f}; cells with no run yet: the cost "
        f"model); at most {runs['hours_left'].sum():.1f} by the cost model of "
        "`reproduce/configs/profiles.toml` alone. Both at full budget: early stopping ends "
        "most runs sooner.",
        *([f"- **Wall-clock hours left (estimate)**: at most {wall_hours(runs, workers):.1f} "
           f"on {workers} worker(s) of one core each: the runs left, in the sweep's order, at "
           "the measured rates and full budget (CPU-hours / workers would say "
           f"{runs['hours_left_measured'].sum() / workers:.1f}; the difference is the tail, "
           "where one long run has the machine to itself)"
           + (f". Its sweeps start at nice {nice}, behind every sweep of lower niceness: "
              "these hours assume cores none of those takes, and pass more slowly while "
              "they run." if nice > 0 else ").")]
          if workers is not None and "order" in runs else []),
        "- **Statuses**: done = `DONE`; stopped (non-finite) = stopped on a NonFiniteError: a "
        "result, which the tables count (not crossed after it), never resumed; in flight = a "
        "live sweep holds its `LOCK`; paused = unfinished, resumes from its checkpoint on the "
        "next `make campaign`; failed = unfinished with another traceback in its log (kept, "
        "named, not rerun); to go = not started.",
        "",
        "| Domain | Algorithm | done | stopped (non-finite) | in flight | paused | failed | "
        "to go | CPU-h spent | CPU-h left (measured rates) | CPU-h left (cost model) | "
        "commits |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in c.to_dict("records"):
        seeds = " | ".join(str(d[s]) for s in STATUSES)
        lines.append(f"| {d['domain']} | {d['algo']} | {seeds} | {d['hours_spent']:.2f} | "
                     f"{d['hours_left_measured']:.2f} | {d['hours_left']:.2f} | {d['commits']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="table1")
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "results",
                        help="the committed results root")
    parser.add_argument("--campaign", type=Path, action="append", default=[],
                        help="a results root where the campaign runs (repeatable)")
    parser.add_argument("--out", type=Path, help="default: <results>/<profile>/CAMPAIGN.md")
    parser.add_argument("--workers", type=int, default=None,
                        help="estimate the wall-clock hours left on this many workers")
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        print(f"ledger: --workers must be >= 1, not {args.workers}", file=sys.stderr)
        return 2
    roots = [*args.campaign, args.results]
    missing = [r for r in roots if not r.is_dir()]
    if missing:
        print(f"ledger: no such results root: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    try:
        specs = resolve_runs(args.profile, results=args.results)
    except SpecError as exc:
        print(f"ledger: {exc}", file=sys.stderr)
        return 2
    runs = ledger(specs, roots)
    command = "python -m reproduce.ledger " + " ".join(argv if argv is not None else sys.argv[1:])
    text = render(args.profile, runs, roots, command.strip(),
                  read_losses(args.results, args.profile), args.workers)
    out = args.out or ledger_path(args.results, args.profile)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
