"""Run a sweep of domains x algorithms x seeds, on a local process pool or on Ray.

    python -m reproduce.sweep --profile quick --domains Hopper,Swimmer
        --algos qprop-c,trpo --seeds 2 --workers 2 --backend local --results results

Each run is its own process with one TF thread and lands in its profile's tree,
``<results>/<profile>/runs/<Domain>/<algo>/seed<k>/`` (so profiles never share a run).
Runs are started seed-major (seed 0 of every run, then seed 1, ...), cheapest first within a
seed (``spec.run_hours``). Runs with a DONE marker are skipped (a finished
run with a *different* spec is skipped with a warning; ``--force`` re-runs it). Unfinished
runs resume from their last checkpoint. Each run holds a LOCK in its directory while it runs,
so two sweeps over the same results never run the same run twice (the second reports it as
busy). Interrupting a sweep (Ctrl-C, SIGTERM) lets every running run checkpoint at its next
iteration boundary; every run is then finished or resumable. A failed run is reported with
its error and log and does not stop the others; the exit code is 1 if any run failed.
``--dry-run`` lists the runs and an estimate of their cost without training.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from qprop_tf.progress import COLUMNS as C
from qprop_tf.rundir import DONE
from reproduce.runner import SPEC, read_json, reset_run_dir, run_one
from reproduce.spec import (
    RunSpec,
    SpecError,
    parse_overrides,
    profile_dir,
    profiles,
    rate_for,
    resolve_runs,
    run_hours,
)

POLL_SECONDS = 3.0


def _csv_list(value: str | None) -> list[str] | None:
    if value is None or not value.strip():
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m reproduce.sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="table1", help=f"one of: {', '.join(profiles())}")
    p.add_argument("--domains", default=None, help="comma list of paper names (default: profile)")
    p.add_argument("--algos", default=None, help="comma list of algorithms (default: profile)")
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default: profile)")
    p.add_argument("--workers", type=int, default=None,
                   help="parallel runs (default: one per core; Ray: cluster CPUs)")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--results", default="results", help="results directory")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field for every run (repeatable)")
    p.add_argument("--force", action="store_true", help="re-run finished runs too")
    p.add_argument("--dry-run", action="store_true", help="list runs and estimated cost, exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


# ---------------------------------------------------------------------- planning

def run_order(spec: RunSpec) -> tuple[int, float, str]:
    """Seed-major, then cheapest first (estimated hours at full budget), then by name: a
    sweep completes the table at one seed as early as it can, and cheap cells first."""
    return spec.seed, run_hours(spec), spec.key


def plan(specs: list[RunSpec], results: Path, force: bool
         ) -> tuple[list[RunSpec], list[RunSpec], list[tuple[RunSpec, str]]]:
    """Split specs into (to run, in ``run_order``; finished; finished with another spec +
    why)."""
    todo: list[RunSpec] = []
    done: list[RunSpec] = []
    mismatched: list[tuple[RunSpec, str]] = []
    for spec in specs:
        run_dir = spec.run_dir(results)
        if force or not (run_dir / DONE).is_file():
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
    return sorted(todo, key=run_order), done, mismatched


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


def estimate(specs: list[RunSpec], workers: int) -> str:
    lines = [f"{'run':<34} {'budget (ep)':>11} {'env steps':>12} {'steps/s':>8} "
             f"{'est. CPU-h':>10}"]
    total = 0.0
    for s in specs:
        hours = run_hours(s)
        total += hours
        lines.append(f"{s.key:<34} {s.budget_episodes:>11,.1f} {s.max_steps:>12,d} "
                     f"{rate_for(s):>8,.0f} {hours:>10.3f}")
    lines.append(f"{len(specs)} runs, at most {total:.2f} CPU-hours at full budget "
                 f"(~{total / max(1, workers):.2f} h wall on {workers} workers); early "
                 "stopping ends runs sooner. Rates: reproduce/configs/profiles.toml [rates].")
    return "\n".join(lines)


# ---------------------------------------------------------------------- progress

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
    """A tqdm bar over the sweep's env steps; total shrinks when runs end early or fail."""

    def __init__(self, specs: list[RunSpec], enabled: bool) -> None:
        self.budget = {s.key: s.max_steps for s in specs}
        self.steps = dict.fromkeys(self.budget, 0)
        self.finished: set[str] = set()
        self.bar = None
        self.counts = {"running": 0, "done": 0, "failed": 0, "busy": 0, "interrupted": 0}
        if enabled and specs:
            from tqdm import tqdm

            self.bar = tqdm(total=sum(self.budget.values()), unit="step", unit_scale=True,
                            dynamic_ncols=True, desc="sweep", smoothing=0.05)

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
        self.bar.set_postfix(self.counts, refresh=False)
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
    if result["status"] == "done":
        how = "stopped early by rule" if result["stopped"] == "early" else "full budget"
        return (f"done    {result['key']}: {result['env_steps']:,} env steps in "
                f"{result['seconds']:.1f} s ({how})")
    return (f"FAILED  {result['key']}: {result['error']}\n"
            f"        log: {result['log']}")


# ---------------------------------------------------------------------- backends

def run_local(specs: list[RunSpec], results: Path, workers: int, progress: Progress
              ) -> list[dict[str, Any]]:
    """A spawn-context process pool; one fresh process per run (max_tasks_per_child=1)."""
    import multiprocessing

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    ctx = multiprocessing.get_context("spawn")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    results_out: list[dict[str, Any]] = []
    by_key = {s.key: s for s in specs}
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                             max_tasks_per_child=1) as pool:
        futures: dict[Future, str] = {
            pool.submit(run_one, s.to_dict(), str(results)): s.key for s in specs}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, timeout=POLL_SECONDS,
                                         return_when=FIRST_COMPLETED)
                for fut in finished:
                    key = futures[fut]
                    try:
                        res = fut.result()
                    except Exception as exc:  # the worker process itself died
                        spec = by_key[key]
                        res = {"key": key, "status": "failed", "stopped": None,
                               "env_steps": last_env_steps(
                                   spec.run_dir(results) / "progress.csv"),
                               "seconds": 0.0, "error": f"worker died: {exc!r}",
                               "log": str(spec.run_dir(results) / "log.txt")}
                    _record(res, progress, results_out)
                # Queued futures can report running(); a run is live once its spec.json exists.
                live = [futures[f] for f in pending
                        if (by_key[futures[f]].run_dir(results) / SPEC).is_file()]
                progress.counts["running"] = min(workers, len(pending))
                for key in live:
                    csv_path = by_key[key].run_dir(results) / "progress.csv"
                    progress.set_steps(key, last_env_steps(csv_path))
                progress.refresh()
        except KeyboardInterrupt:
            # Ctrl-C in a terminal reaches the workers too, but a SIGTERM sent to this
            # process alone does not: pass it on, so each running run checkpoints at its
            # next iteration boundary, and wait for them (no orphan keeps a run's LOCK).
            for proc in multiprocessing.active_children():  # the pool's workers
                proc.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results_out


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _record(res: dict[str, Any], progress: Progress, out: list[dict[str, Any]]) -> None:
    out.append(res)
    progress.counts[{"done": "done", "busy": "busy", "interrupted": "interrupted"}.get(
        res["status"], "failed")] += 1
    progress.finish(res["key"], int(res["env_steps"]))
    progress.write(describe(res))


def _ray_task_body(spec_dict: dict[str, Any], results: str, token: str,
                   reporter: Any) -> dict[str, Any]:
    """Runs on a Ray worker: train into ``results`` if this node sees the same filesystem
    (the driver's token file is visible), else into a temp dir shipped back as a tar.gz
    (forced with REPRODUCE_RAY_SHIP=1, for testing)."""
    import io
    import tarfile
    import tempfile

    key = spec_dict["domain"] + "/" + spec_dict["algo"] + "/seed" + str(spec_dict["seed"])

    def report(steps: int) -> None:
        reporter.report.remote(key, steps)

    if Path(token).is_file() and not os.environ.get("REPRODUCE_RAY_SHIP"):
        return run_one(spec_dict, results, report)
    with tempfile.TemporaryDirectory() as tmp:
        res = run_one(spec_dict, tmp, report)
        run_dir = RunSpec.from_dict(spec_dict).run_dir(tmp)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for path in sorted(run_dir.rglob("*")):
                if path.is_file() and path.name != DONE:
                    tar.add(path, arcname=str(path.relative_to(run_dir)))
        res["archive"] = buf.getvalue()
        done = run_dir / DONE
        res["done_marker"] = done.read_text() if done.is_file() else None
        res["log"] = str(RunSpec.from_dict(spec_dict).run_dir(results) / "log.txt")
        return res


def _unpack(res: dict[str, Any], spec: RunSpec, results: Path) -> None:
    """Driver side of a run shipped back from a node without the shared filesystem."""
    import io
    import shutil
    import tarfile

    from reproduce.runner import atomic_write_text

    archive = res.pop("archive", None)
    marker = res.pop("done_marker", None)
    if archive is None:
        return
    run_dir = spec.run_dir(results)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(run_dir, filter="data")
    if marker is not None:
        atomic_write_text(run_dir / DONE, marker)


def run_ray(specs: list[RunSpec], results: Path, workers: int | None, progress: Progress
            ) -> list[dict[str, Any]]:
    """The same runs as Ray tasks (num_cpus=1, a fresh worker process per run).

    ``ray.init(address=$RAY_ADDRESS)`` joins a cluster when RAY_ADDRESS is set (the repo is
    shipped as the job's working_dir; nodes need requirements.txt installed), else starts
    Ray locally with ``workers`` CPUs.
    """
    import uuid

    import ray

    address = os.environ.get("RAY_ADDRESS") or None
    env_vars = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "TF_CPP_MIN_LOG_LEVEL": "2"}
    if os.environ.get("REPRODUCE_RAY_SHIP"):
        env_vars["REPRODUCE_RAY_SHIP"] = "1"
    repo = Path(__file__).resolve().parent.parent
    runtime_env: dict[str, Any] = {"env_vars": env_vars}
    if address is None:
        env_vars["PYTHONPATH"] = os.pathsep.join(
            [str(repo), *filter(None, [os.environ.get("PYTHONPATH")])])
        ray.init(num_cpus=workers or os.cpu_count(), runtime_env=runtime_env,
                 log_to_driver=False, include_dashboard=False)
    else:
        runtime_env["working_dir"] = str(repo)
        runtime_env["excludes"] = [".venv", ".git", "results", "runs", "*.tfevents.*",
                                   "__pycache__", ".pytest_cache", ".ruff_cache"]
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
    token = results / f".sweep-token-{uuid.uuid4().hex}"
    token.write_text("visible\n")

    @ray.remote(num_cpus=0)
    class Reporter:
        def __init__(self) -> None:
            self.steps: dict[str, int] = {}

        def report(self, key: str, steps: int) -> None:
            self.steps[key] = steps

        def snapshot(self) -> dict[str, int]:
            return dict(self.steps)

    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    task = ray.remote(num_cpus=1, max_calls=1)(_ray_task_body)
    reporter = Reporter.remote()
    by_key = {s.key: s for s in specs}
    refs = {task.remote(s.to_dict(), str(results.resolve()), str(token.resolve()), reporter): s.key
            for s in specs}
    out: list[dict[str, Any]] = []
    try:
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_SECONDS)
            for ref in ready:
                key = refs[ref]
                try:
                    res = ray.get(ref)
                    _unpack(res, by_key[key], results)
                except Exception as exc:  # the task's worker died (OOM kill, node lost)
                    res = {"key": key, "status": "failed", "stopped": None, "env_steps": 0,
                           "seconds": 0.0, "error": f"Ray task failed: {exc!r}",
                           "log": str(by_key[key].run_dir(results) / "log.txt")}
                _record(res, progress, out)
            snap = ray.get(reporter.snapshot.remote())
            progress.counts["running"] = min(cpus, len(pending))
            for key, steps in snap.items():
                progress.set_steps(key, steps)
            progress.refresh()
    finally:
        token.unlink(missing_ok=True)
        ray.shutdown()
    return out


# ---------------------------------------------------------------------- main

def sweep(specs: list[RunSpec], results: Path, workers: int | None, backend: str,
          show_progress: bool = True, force: bool = False,
          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run what is not finished yet; return a summary (ran, skipped, mismatched, failed)."""
    results.mkdir(parents=True, exist_ok=True)
    todo, done, mismatched = plan(specs, results, force)
    log(f"{len(specs)} runs: {len(done)} already finished, {len(todo)} to run"
        + (f", {len(mismatched)} finished with another spec (skipped)" if mismatched else ""))
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
    n_workers = workers or os.cpu_count() or 1
    progress = Progress(todo, show_progress)
    t0 = time.perf_counter()
    try:
        if not todo:
            outcomes: list[dict[str, Any]] = []
        elif backend == "ray":
            outcomes = run_ray(todo, results, workers, progress)
        else:
            outcomes = run_local(todo, results, n_workers, progress)
    finally:
        progress.close()
    failed = [r for r in outcomes if r["status"] == "failed"]
    busy = [r for r in outcomes if r["status"] == "busy"]
    stopped = [r for r in outcomes if r["status"] == "interrupted"]
    summary = {"ran": len(outcomes) - len(failed) - len(busy) - len(stopped),
               "skipped": len(done), "busy": busy, "interrupted": stopped,
               "mismatched": len(mismatched), "failed": failed,
               "seconds": time.perf_counter() - t0, "outcomes": outcomes}
    log(f"sweep finished in {summary['seconds']:.1f} s: {summary['ran']} trained, "
        f"{len(done)} skipped (already done), {len(failed)} failed"
        + (f", {len(busy)} busy in another process" if busy else "")
        + (f", {len(stopped)} interrupted (checkpointed, resumable)" if stopped else ""))
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
                             args.seeds, parse_overrides(args.overrides))
    except SpecError as exc:
        print(f"reproduce.sweep: error: {exc}", file=sys.stderr)
        return 2
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
        return 0
    try:
        summary = sweep(specs, results, workers, args.backend, not args.no_progress,
                        args.force)
    except KeyboardInterrupt:
        print("reproduce.sweep: interrupted; the running runs checkpointed and are resumable: "
              "run the same command to continue (finished runs are skipped)", file=sys.stderr)
        return 130
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
