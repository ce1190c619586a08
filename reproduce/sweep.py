"""Run a sweep of domains x algorithms x seeds, on a local process pool or on Ray.

    python -m reproduce.sweep --profile quick --domains Hopper,Swimmer
        --algos qprop-c,trpo --seeds 2 --workers 2 --backend local --results results

Each run is its own process with one TF thread and lands in its profile's tree,
``<results>/<profile>/runs/<Domain>/<algo>/seed<k>/`` (so profiles never share a run).
Runs are started seed-major (seed 0 of every run, then seed 1, ...), cheapest first within a
seed (``cost.run_hours``). Runs with a DONE marker are skipped (a finished
run with a *different* spec is skipped with a warning; ``--force`` re-runs it). Unfinished
runs resume from their last checkpoint. Each run holds a LOCK in its directory while it runs,
so two sweeps over the same results never run the same run twice (the second reports it as
busy). Before it trains, the sweep prints how many runs it will train and their estimated
cost (the dry run's figures). Interrupting a sweep (Ctrl-C, SIGTERM) starts no further run
and lets every running run checkpoint at its next iteration boundary; every run is then
finished or resumable, and the exit code is 128 + the signal (130, 143); a second Ctrl-C
aborts at once. A failed run is reported with its error and log and does not stop the
others; the exit code is 1 if any run failed. ``--dry-run`` lists the runs and an estimate
of their cost without training. The backends are in :mod:`reproduce.backends`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qprop_tf.config import ConfigError, parse_pairs
from qprop_tf.rundir import DONE
from reproduce.backends import SweepSignals, run_local, run_ray
from reproduce.cost import rate_for, run_hours, this_cpu
from reproduce.outcomes import (  # noqa: F401 (describe, last_env_steps: re-exported)
    NOT_STARTED,
    Progress,
    describe,
    last_env_steps,
)
from reproduce.results import stopped_nonfinite
from reproduce.runner import SPEC, read_json, reset_run_dir
from reproduce.spec import (
    RunSpec,
    SpecError,
    check_profile,
    profile_dir,
    profiles,
    resolve_runs,
)


def _csv_list(value: str | None) -> list[str] | None:
    if value is None or not value.strip():
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``--set KEY=VALUE`` items -> {key: value} (strings; the run's Config types them)."""
    try:
        return parse_pairs(items)
    except ConfigError as exc:
        raise SpecError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m reproduce.sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="table1", help=f"one of: {', '.join(profiles())}")
    p.add_argument("--domains", default=None, help="comma list of paper names (default: profile)")
    p.add_argument("--algos", default=None, help="comma list of algorithms (default: profile)")
    p.add_argument("--seeds", type=int, default=None,
                   help="N seeds, first_seed..first_seed+N-1 (default: profile)")
    p.add_argument("--first-seed", type=int, default=None,
                   help="the first seed (default: the profile's first_seed, else 0)")
    p.add_argument("--workers", type=int, default=None,
                   help="parallel runs (default: one per core; Ray: cluster CPUs)")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--results", default="results", help="results directory")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field for every run (repeatable)")
    p.add_argument("--force", action="store_true", help="re-run finished runs too")
    p.add_argument("--dry-run", action="store_true", help="list runs and estimated cost, exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--exclude", default=None, metavar="KEYS",
                   help="comma list of run keys (Domain/algo/seedK) this sweep must not touch: "
                        "a campaign's drain leaves them to their old pin")
    return p


# ---------------------------------------------------------------------- planning

SWEEP_ORDERS = ("seed", "domain")


def sweep_order(profile_name: str) -> str:
    """The profile's ``order`` (default ``"seed"``), validated: in which order its sweep
    starts runs (:func:`order_runs`)."""
    order = check_profile(profile_name).get("order", "seed")
    if order not in SWEEP_ORDERS:
        raise SpecError(f"profile {profile_name!r}: order must be one of "
                        f"{', '.join(SWEEP_ORDERS)}, not {order!r}")
    return order


def run_order(spec: RunSpec) -> tuple[int, float, str]:
    """Seed-major, then cheapest first (estimated hours at full budget), then by name: a
    sweep completes the table at one seed as early as it can, and cheap cells first."""
    return spec.seed, run_hours(spec), spec.key


def order_runs(specs: list[RunSpec]) -> list[RunSpec]:
    """The runs in the order a sweep starts them, by their profile's ``order``
    (:func:`sweep_order`):

    - ``"seed"``: :func:`run_order` (seed-major, cheapest first);
    - ``"domain"``: domain-major, the domain with the fewest estimated hours left among
      ``specs`` first, then :func:`run_order` within it. A profile whose verdicts are per
      domain (issue 15's best batch) completes one domain's grid as early as it can.
    """
    left: dict[tuple[str, str], float] = {}
    for s in specs:
        left[s.profile, s.domain] = left.get((s.profile, s.domain), 0.0) + run_hours(s)

    def key(s: RunSpec) -> tuple[float, str, int, float, str]:
        if sweep_order(s.profile) == "domain":
            return left[s.profile, s.domain], s.domain, *run_order(s)
        return 0.0, "", *run_order(s)

    return sorted(specs, key=key)


def plan(specs: list[RunSpec], results: Path, force: bool
         ) -> tuple[list[RunSpec], list[RunSpec], list[tuple[RunSpec, str]]]:
    """Split specs into (to run, in ``order_runs``'s order; finished; finished with another spec +
    why). A run whose training stopped on a non-finite value (``results.stopped_nonfinite``)
    counts as finished: resuming it would only fail again (``--force`` reruns)."""
    todo: list[RunSpec] = []
    done: list[RunSpec] = []
    mismatched: list[tuple[RunSpec, str]] = []
    for spec in specs:
        run_dir = spec.run_dir(results)
        if force or not (run_dir / DONE).is_file():
            if not force and stopped_nonfinite(run_dir):
                done.append(spec)  # stopped on a non-finite value: a result, never rerun
            else:
                todo.append(spec)
            continue
        old = read_json(run_dir / SPEC)
        if old is None:
            mismatched.append((spec, "no readable spec.json"))
            continue
        try:
            old_identity = RunSpec.from_dict(old).identity()
        except TypeError:
            mismatched.append((spec, "spec.json of an older format"))
            continue
        new_identity = spec.identity()
        if old_identity == new_identity:
            done.append(spec)
        else:
            diff = _diff(old_identity, new_identity)
            mismatched.append((spec, f"finished with profile {old.get('profile')!r}, "
                                     f"differs in {diff}"))
    return order_runs(todo), done, mismatched


def _diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = []
    for k in sorted(set(old) | set(new)):
        if k == "overrides":
            o, n = old.get(k, {}), new.get(k, {})
            keys += [f"{kk}: {o.get(kk)} -> {n.get(kk)}" for kk in sorted(set(o) | set(n))
                     if o.get(kk) != n.get(kk)]
        elif old.get(k) != new.get(k):
            keys.append(f"{k}: {old.get(k)} -> {new.get(k)}")
    return "; ".join(keys[:4]) + (" ..." if len(keys) > 4 else "")


def cost_line(specs: list[RunSpec], workers: int, results: Path | None = None) -> str:
    """"N runs, at most H CPU-hours at full budget (~W wall on K workers)": the cost model
    of profiles.toml (one core a run). The wall time is the longer of the CPU time shared
    by the workers and the longest single run. With ``results``, an unfinished run counts
    only the steps it has left (its progress.csv's last env_steps are held)."""
    hours = [run_hours(s) for s in specs]
    held = 0
    if results is not None:
        for i, s in enumerate(specs):
            steps = min(last_env_steps(s.run_dir(results) / "progress.csv"), s.max_steps)
            hours[i] -= steps / rate_for(s) / 3600
            held += steps > 0
    total = sum(hours)
    wall = max(total / max(1, workers), max(hours, default=0.0))
    return (f"{len(specs)} run{'s' if len(specs) != 1 else ''}"
            + (f" ({held} resumed)" if held else "")
            + f", at most {total:.2f} CPU-hours "
            f"at full budget (~{_duration(wall)} wall on {workers} worker"
            f"{'s' if workers != 1 else ''})")


def _duration(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.0f} min" if hours * 60 >= 1 else "<1 min"
    return f"{hours:.1f} h"


def estimate(specs: list[RunSpec], workers: int) -> str:
    lines = [f"{'run':<34} {'budget (ep)':>11} {'env steps':>12} {'steps/s':>8} "
             f"{'est. CPU-h':>10}"]
    for s in specs:
        lines.append(f"{s.key:<34} {s.budget_episodes:>11,.1f} {s.max_steps:>12,d} "
                     f"{rate_for(s):>8,.0f} {run_hours(s):>10.3f}")
    lines.append(f"{cost_line(specs, workers)}; early stopping ends runs sooner. "
                 "Rates: reproduce/configs/profiles.toml [rates], or [rates_cpu] measured "
                 f"on this CPU ({this_cpu()}) where it has the cell.")
    return "\n".join(lines)


def plan_line(todo: list[RunSpec], workers: int, results: Path | None = None) -> str:
    """What a sweep is about to train, printed before it starts (the dry run's figures):
    with ``results``, resumed runs count what they have left."""
    return f"to train: {cost_line(todo, workers, results)}; early stopping ends runs sooner"


# ---------------------------------------------------------------------- main

def sweep(specs: list[RunSpec], results: Path, workers: int | None, backend: str,
          show_progress: bool = True, force: bool = False,
          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run what is not finished yet; return a summary (ran, skipped, mismatched, failed)."""
    results.mkdir(parents=True, exist_ok=True)
    todo, done, mismatched = plan(specs, results, force)
    n_workers = workers or os.cpu_count() or 1
    log(f"{len(specs)} runs: {len(done)} already finished, {len(todo)} to run"
        + (f", {len(mismatched)} finished with another spec (skipped)" if mismatched else "")
        + ("" if todo else ": nothing to train"))
    if todo:
        log(plan_line(todo, n_workers, results))
    for spec, why in mismatched:
        log(f"  skipped {spec.key}: {why} (use --force to re-run, or another --results)")
    for spec in todo:
        run_dir = spec.run_dir(results)
        if run_dir.exists():
            if (run_dir / DONE).is_file():  # --force
                reset_run_dir(run_dir)
            elif (run_dir / "LOCK").is_file():
                log(f"  {spec.key}: unfinished and locked (running elsewhere, or stale)")
            else:
                log(f"  {spec.key}: unfinished; resuming from its last checkpoint")
    progress = Progress(todo, show_progress, results)
    stop = SweepSignals()
    t0 = time.perf_counter()
    try:
        if not todo:
            outcomes: list[dict[str, Any]] = []
        elif backend == "ray":
            outcomes = run_ray(todo, results, workers, progress, stop)
        else:
            outcomes = run_local(todo, results, n_workers, progress, stop)
    finally:
        progress.close()
    by_status = {k: [r for r in outcomes if r["status"] == k]
                 for k in ("failed", "busy", "interrupted", NOT_STARTED)}
    failed, busy, stopped = by_status["failed"], by_status["busy"], by_status["interrupted"]
    summary = {"ran": len(outcomes) - sum(map(len, by_status.values())),
               "skipped": len(done), "busy": busy, "interrupted": stopped,
               "not_started": by_status[NOT_STARTED], "signal": stop.signum,
               "mismatched": len(mismatched), "failed": failed,
               "seconds": time.perf_counter() - t0, "outcomes": outcomes}
    log(f"sweep {'stopped by ' + signal.Signals(stop.signum).name if stop.signum else 'finished'}"
        f" in {summary['seconds']:.1f} s: {summary['ran']} trained, "
        f"{len(done)} skipped (already done), {len(failed)} failed"
        + (f", {len(busy)} busy in another process" if busy else "")
        + (f", {len(stopped)} interrupted (checkpointed, resumable)" if stopped else "")
        + (f", {len(summary['not_started'])} not started" if summary["not_started"] else ""))
    for r in failed:
        log(f"  FAILED {r['key']}: {r['error']}\n         log: {r['log']}")
    _append_history(results, specs, summary, backend)
    return summary


def _append_history(results: Path, specs: list[RunSpec], summary: dict[str, Any],
                    backend: str) -> None:
    """One line per sweep in each of its profiles' trees: ``<results>/<profile>/sweeps.jsonl``."""
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "backend": backend,
             "profiles": sorted({s.profile for s in specs}), "runs": len(specs),
             "trained": summary["ran"], "skipped": summary["skipped"],
             "failed": [r["key"] for r in summary["failed"]],
             "seconds": round(summary["seconds"], 1)}
    for profile in entry["profiles"]:
        home = profile_dir(results, profile)
        home.mkdir(parents=True, exist_ok=True)
        with open(home / "sweeps.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        specs = resolve_runs(args.profile, _csv_list(args.domains), _csv_list(args.algos),
                             args.seeds, parse_overrides(args.overrides), args.first_seed,
                             args.results)
    except SpecError as exc:
        print(f"reproduce.sweep: error: {exc}", file=sys.stderr)
        return 2
    excluded = set(_csv_list(args.exclude) or [])
    unknown = sorted(excluded - {s.key for s in specs})
    if unknown:
        print(f"reproduce.sweep: error: --exclude names runs this sweep does not have: "
              f"{', '.join(unknown)} (keys look like {specs[0].key})" if specs else
              "reproduce.sweep: error: --exclude given to a sweep without runs", file=sys.stderr)
        return 2
    if excluded:
        specs = [s for s in specs if s.key not in excluded]
        print(f"{len(excluded)} run(s) excluded (--exclude): {', '.join(sorted(excluded))}")
    if args.backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            print("reproduce.sweep: error: --backend ray needs Ray: "
                  ".venv/bin/pip install -r requirements.txt", file=sys.stderr)
            return 2
    results = Path(args.results)
    workers = args.workers or (None if args.backend == "ray" else os.cpu_count())
    if args.dry_run:
        todo, _, _ = plan(specs, results, args.force)
        print(f"profile {args.profile}: {profiles()[args.profile]['description']}")
        print(estimate(specs, workers or os.cpu_count() or 1))
        print(f"{len(todo)} of them not finished in {profile_dir(results, args.profile)}/runs")
        if todo:
            print(plan_line(todo, workers or os.cpu_count() or 1, results))
        return 0
    try:
        summary = sweep(specs, results, workers, args.backend, not args.no_progress,
                        args.force)
    except KeyboardInterrupt:  # a second Ctrl-C: the runs aborted without checkpointing
        print("reproduce.sweep: aborted; unfinished runs resume from their last checkpoint: "
              "run the same command to continue (finished runs are skipped)", file=sys.stderr)
        return 130
    if summary["signal"] is not None:
        print("reproduce.sweep: interrupted; the running runs checkpointed and are resumable: "
              "run the same command to continue (finished runs are skipped)", file=sys.stderr)
        return 128 + int(summary["signal"])
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
