"""Learning parity with sb3-contrib's TRPO, and the ablation chain between them (issue 11).

    python -m reproduce.parity [--results results] [--domains Hopper,Walker]
        [--rows released,mlp] [--seeds N] [--steps N] [--workers 2]
        [--peer-python .venv-peers/bin/python] [--no-sb3] [--report-only] [--dry-run]

reproduce/configs/parity.toml holds the chain: row k runs ``python -m qprop_tf train`` with
base.set and the ``set`` tables of chain rows 1..k merged in order, so each row adds one
change to the row above, from ours as released to sb3-contrib's settings. sb3 runs
reproduce/sb3_trpo.py under the peer interpreter (``make parity`` builds .venv-peers).
``--rows`` keeps only those rows of each domain's list (a row keeps every change above it).

Runs land in ``<results>/parity/<Domain>/<row>/seed<k>/`` (sb3: ``<Domain>/sb3/seed<k>/``),
their output appended to ``log.txt``. Runs with DONE are skipped, so calling again runs only
what is missing (ours resume from their last checkpoint, sb3 starts over). ``--workers`` runs
go at once, seed-major (every row's seed 0, then seed 1, ...). A failed run is reported with
the end of its log and the others go on; the exit code is then 1. The report,
``<results>/parity.md`` and ``<results>/figures/parity_<Domain>.png/.svg``, is written at the
end from the finished runs (also with ``--report-only``); unfinished runs are listed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime
from pathlib import Path

from qprop_tf.rundir import DONE
from reproduce.parity_chain import SB3, ParityError, Run, load_config, plan_runs, select
from reproduce.parity_report import write_report
from reproduce.runner import LOG
from reproduce.spec import REPO_ROOT

DEFAULT_PEER_PYTHON = ".venv-peers/bin/python"
CHILD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
             "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}


# ---------------------------------------------------------------------- running

def execute(run: Run) -> int:
    """One run as a subprocess, its stdout and stderr appended to ``<run dir>/log.txt``."""
    try:
        run.out.mkdir(parents=True, exist_ok=True)
        with open(run.out / LOG, "a") as log:
            log.write(f"\n=== {datetime.now().isoformat(timespec='seconds')} "
                      f"{shlex.join(run.cmd)}\n")
            log.flush()
            return subprocess.run(run.cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                                  env={**os.environ, **CHILD_ENV}, check=False).returncode
    except OSError as exc:  # the run directory is not writable, or the command cannot start
        with contextlib.suppress(OSError), open(run.out / LOG, "a") as log:
            log.write(f"reproduce.parity: {exc}\n")
        return 127


def log_tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace") if path.is_file() else "(no log)"
    return "\n".join("        " + line for line in text.rstrip().splitlines()[-lines:])


def run_all(runs: list[Run], workers: int, show_progress: bool = True) -> list[Run]:
    """Run ``runs`` in their order, ``workers`` at a time; return the failed ones."""
    from tqdm import tqdm

    failed: list[Run] = []
    bar = tqdm(total=len(runs), unit="run", desc="parity", dynamic_ncols=True,
               disable=not show_progress)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(execute, run): run for run in runs}
        try:
            for fut in as_completed(futures):
                run, code = futures[fut], fut.result()
                if code == 0:
                    bar.write(f"done    {run.name}")
                else:
                    failed.append(run)
                    bar.write(f"FAILED  {run.name} (exit {code}); the end of "
                              f"{run.out / LOG}:\n{log_tail(run.out / LOG)}")
                bar.update()
                bar.set_postfix(failed=len(failed))
        except KeyboardInterrupt:  # the children got the Ctrl-C too; wait for them
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            bar.close()
    return failed


# ---------------------------------------------------------------------- main

def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m reproduce.parity", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results", help="results directory")
    p.add_argument("--domains", default=None, help="comma list (default: every [domains.*])")
    p.add_argument("--rows", default=None, help="comma list of chain rows (default: all)")
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default: config)")
    p.add_argument("--steps", type=lambda s: int(float(s)), default=None,
                   help="env steps per run (default: config)")
    p.add_argument("--workers", type=int, default=2, help="runs at once")
    p.add_argument("--peer-python", default=str(REPO_ROOT / DEFAULT_PEER_PYTHON),
                   help=f"interpreter with sb3-contrib (default {DEFAULT_PEER_PYTHON})")
    p.add_argument("--no-sb3", action="store_true", help="do not run sb3 (still reported)")
    p.add_argument("--report-only", action="store_true", help="write the report, run nothing")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    cfg = load_config()
    steps = int(cfg["steps"]) if args.steps is None else args.steps
    seeds = int(cfg["seeds"]) if args.seeds is None else args.seeds
    results = Path(args.results)
    try:
        selection = select(cfg, _csv(args.domains), _csv(args.rows))
        if seeds < 1 or steps < 1:
            raise ParityError(f"--seeds and --steps must be >= 1, got {seeds} and {steps}")
        peer = Path(args.peer_python).absolute()  # not resolve(): a venv's python is a link
        runs = plan_runs(cfg, selection, results, seeds, steps, peer)
        todo = [r for r in runs if not (r.out / DONE).is_file()
                and not (args.no_sb3 and r.row == SB3)]
        if (not args.report_only and not args.dry_run and any(r.row == SB3 for r in todo)
                and not (peer.is_file() and os.access(peer, os.X_OK))):
            raise ParityError(f"no peer interpreter at {peer}: `make parity` builds .venv-peers "
                              "(torch, sb3-contrib; requirements-peers.txt), or use --no-sb3")
    except ParityError as exc:
        print(f"reproduce.parity: error: {exc}", file=sys.stderr)
        return 2
    finished = sum((r.out / DONE).is_file() for r in runs)
    print(f"{len(runs)} runs: {finished} finished, {len(todo)} to run"
          + (", sb3 not run (--no-sb3)" if args.no_sb3 else ""))
    if args.dry_run:
        for run in todo:
            print(shlex.join(run.cmd))
        return 0
    failed: list[Run] = []
    if not args.report_only and todo:
        try:
            failed = run_all(todo, max(1, args.workers), not args.no_progress)
        except KeyboardInterrupt:
            print("reproduce.parity: interrupted; run the same command to continue (finished "
                  "runs are skipped, ours resume from their checkpoint)", file=sys.stderr)
            return 130
    command = shlex.join(["python", "-m", "reproduce.parity", *argv])
    print(f"wrote {write_report(cfg, runs, results, steps, seeds, command)}")
    if failed:
        print(f"reproduce.parity: {len(failed)} run(s) failed: "
              f"{', '.join(r.name for r in failed)} (logs: <run dir>/{LOG})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
