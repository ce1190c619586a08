"""One run of a sweep, in its own process: train, stop early if asked, write DONE last.

A run directory (``results/<profile>/runs/<Domain>/<algo>/seed<k>/``) holds what
``qprop_tf.run.train`` writes (config.json, progress.csv, TensorBoard events) plus:

- ``spec.json``: the sweep's resolved spec of this run (profile, budget, early-stop rule);
- ``log.txt``: the run's stdout and stderr (Python and TF's C++ logs alike);
- ``DONE``: JSON, written atomically and last (by ``qprop_tf.run.train``, with this
  runner's fields added), once the run finished its budget or stopped early by rule. A
  directory without DONE is unfinished: a new sweep resumes it from its last checkpoint
  (``checkpoint/``, see ``qprop_tf.checkpoint``), appending to its log;
- ``LOCK``: held (hostname and pid) while a process runs the run, so two sweeps over the same
  results never run it twice; a lock left by a dead process on this host is taken over.

DONE, LOCK and the lock itself are ``qprop_tf.rundir``'s, shared with ``python -m qprop_tf``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from qprop_tf.checkpoint import write_bytes_durably
from qprop_tf.errors import RunInterrupted, RunLocked, StopRun
from qprop_tf.progress import COLUMNS as C
from qprop_tf.rundir import DONE, is_done, run_lock
from reproduce.spec import EarlyStop, RunSpec

SPEC = "spec.json"
LOG = "log.txt"
PREVIOUS_LOG = "log.previous.txt"


class StopTraining(StopRun):
    """Raised from ``on_iteration`` to end a run early; ``train`` then finishes the run."""


class EarlyStopCallback:
    """``on_iteration`` hook: record the first crossing, stop ``margin`` past it.

    The crossing is the first row whose ``metric`` exceeds ``threshold`` (the paper's
    definition, no smoothing). The run stops at the first row with
    ``env_steps >= (1 + margin) * crossing_steps`` and at least ``min_iterations`` iterations
    after the crossing. ``report(env_steps)`` is called on every row (progress reporting).
    """

    def __init__(self, rule: EarlyStop | None, report: Callable[[int], None] | None = None):
        self.rule = rule
        self.report = report
        self.crossed_steps: int | None = None
        self.crossed_iteration: int | None = None
        self.last_steps = 0
        self.stopped = False

    def __call__(self, iteration: int, row: dict[str, Any], policy: Any = None) -> None:
        self.last_steps = int(row[C.env_steps])
        if self.report is not None:
            self.report(self.last_steps)
        if self.rule is None:
            return
        value = row.get(self.rule.metric)
        if self.crossed_steps is None and value is not None and float(value) > self.rule.threshold:
            self.crossed_steps, self.crossed_iteration = self.last_steps, iteration
        if self.crossed_steps is None:
            return
        if (self.last_steps >= (1 + self.rule.margin) * self.crossed_steps
                and iteration - self.crossed_iteration >= self.rule.min_iterations):
            self.stopped = True
            raise StopTraining(f"crossed {self.rule.threshold:g} at {self.crossed_steps} steps")


def atomic_write_text(path: Path, text: str) -> None:
    write_bytes_durably(path, text.encode())


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def reset_run_dir(run_dir: Path) -> None:
    """Empty an unfinished run directory (keeping its last log) so the run starts afresh
    (``--force`` on a finished run)."""
    if not run_dir.exists() or all(p.name == PREVIOUS_LOG for p in run_dir.iterdir()):
        return
    log = run_dir / LOG
    saved = log.read_bytes() if log.is_file() else None
    shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    if saved is not None:
        (run_dir / PREVIOUS_LOG).write_bytes(saved)


@contextlib.contextmanager
def redirect_output(path: Path) -> Iterator[None]:
    """Send fds 1 and 2 (so Python, TF C++ and MuJoCo output alike) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a", buffering=1) as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        # sys.stdout/err may not be fds 1/2 (e.g. under pytest's capture): swap them too.
        try:
            with contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def one_thread_env() -> None:
    """Before TF loads: one BLAS/OpenMP thread and quiet TF (set also by the sweep)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run_one(spec_dict: dict[str, Any], results: str,
            report: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train (or resume) one run in its directory under ``results``, holding its LOCK; never
    raises for a training error.

    Returns a summary: ``status`` ("done", "failed", "interrupted" (by a signal: checkpointed
    and resumable), or "busy" when another live process
    holds the run's lock), ``stopped`` ("budget", "early", or "already" when the run was
    found finished), ``env_steps``, ``seconds``, ``error`` and ``log``.
    """
    spec = RunSpec.from_dict(spec_dict)
    run_dir = spec.run_dir(results)
    one_thread_env()
    try:
        with run_lock(run_dir):
            if is_done(run_dir):  # finished by another sweep since this one planned
                marker = read_json(run_dir / DONE) or {}
                return {"key": spec.key, "status": "done", "stopped": "already",
                        "env_steps": int(marker.get("env_steps", 0)), "seconds": 0.0,
                        "error": None, "log": str(run_dir / LOG)}
            return _run_locked(spec, run_dir, report)
    except RunLocked as exc:
        return {"key": spec.key, "status": "busy", "stopped": None, "env_steps": 0,
                "seconds": 0.0, "error": str(exc), "log": str(run_dir / LOG)}


def _run_locked(spec: RunSpec, run_dir: Path, report: Callable[[int], None] | None
                ) -> dict[str, Any]:
    atomic_write_text(run_dir / SPEC, json.dumps(spec.to_dict(), indent=2) + "\n")
    log = run_dir / LOG
    result: dict[str, Any] = {"key": spec.key, "status": "failed", "stopped": None,
                              "env_steps": 0, "seconds": 0.0, "error": None, "log": str(log)}
    callback = EarlyStopCallback(spec.early_stop, report)
    t0 = time.perf_counter()
    with redirect_output(log):
        print(f"[reproduce] {spec.key} on {socket.gethostname()} pid {os.getpid()} "
              f"nice {os.nice(0)}: "
              f"profile {spec.profile}, budget {spec.budget_episodes:g} episodes "
              f"({spec.max_steps} env steps)", flush=True)
        try:
            from qprop_tf.config import load_config
            from qprop_tf.runtime import limit_threads

            limit_threads(int(spec.overrides.get("tf_threads", 1)))
            from qprop_tf.run import train

            cfg = load_config(spec.base_algo, spec.domain, spec.seed, dict(spec.overrides))

            def done_info() -> dict[str, Any]:
                return {"max_steps": spec.max_steps, "budget_episodes": spec.budget_episodes,
                        "crossed_at_env_steps": callback.crossed_steps,
                        "early_stop": None if spec.early_stop is None
                        else spec.early_stop.describe(),
                        "seconds": round(time.perf_counter() - t0, 3)}

            # train() writes DONE last, with done_info's fields.
            train(cfg, run_dir, on_iteration=callback, verbose=True, done_info=done_info)
            result["stopped"] = "early" if callback.stopped else "budget"
            if callback.stopped:
                print("[reproduce] early stop", flush=True)
            result["status"] = "done"
        except RunInterrupted as exc:  # a signal: checkpointed, resumable, not a failure
            result["status"] = "interrupted"
            result["error"] = str(exc)
        except BaseException as exc:  # noqa: BLE001 (reported, the sweep goes on)
            traceback.print_exc()
            result["error"] = f"{type(exc).__name__}: {exc}".strip()
            if isinstance(exc, KeyboardInterrupt):
                raise
        finally:
            result["seconds"] = time.perf_counter() - t0
            result["env_steps"] = callback.last_steps
            print(f"[reproduce] {result['status']} after {result['seconds']:.1f} s, "
                  f"{callback.last_steps} env steps", flush=True)
    return result
