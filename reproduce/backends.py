"""Where a sweep's runs execute: one local process per run, or one Ray task per run.

Both backends start a run only when a worker is free, and only while the sweep has not been
told to stop. :class:`SweepSignals` turns SIGTERM or SIGINT to the sweep into a stop
request: from then on no new run starts (a run process that was being started when the
signal came sees the request before it touches its run directory and reports "not
started"), and every running run is told to stop: it checkpoints at its next iteration
boundary and reports "interrupted" (``qprop_tf.rundir.StopSignals``). A second SIGINT aborts
at once.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_any
from pathlib import Path
from typing import Any

from qprop_tf.rundir import DONE
from reproduce.outcomes import Progress, last_env_steps, not_started, record
from reproduce.runner import run_one
from reproduce.spec import RunSpec

POLL_SECONDS = 3.0
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# Ray starts its workers at nice 15 (19 in older versions): on a loaded machine a run then
# waits for CPU behind everything else. Runs are the sweep's main work: normal priority.
RAY_WORKER_ENV = {"RAY_worker_niceness": "0"}


# ---------------------------------------------------------------------- stop signals

class SweepSignals:
    """SIGTERM/SIGINT to the sweep process: note the first, call the ``on_stop`` hooks.

    The hooks run inside the handler, before the interrupted code goes on: a backend that
    checks ``signum`` before it starts a run, and a run process that checks a hook's event
    before it trains, therefore never start a run after the signal. A second SIGINT raises
    KeyboardInterrupt (abort at once). Handlers are installed by :meth:`installed`, in the
    main thread only (elsewhere the sweep cannot be signalled and ``signum`` stays None).
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.on_stop: list[Callable[[], None]] = []

    def _handler(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        self.signum = signum
        for hook in self.on_stop:
            hook()

    @contextmanager
    def installed(self) -> Iterator[SweepSignals]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        old = {s: signal.signal(s, self._handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)


# ---------------------------------------------------------------------- local backend

class _PendingSignal:
    """In a run's process until training installs its own handlers: remember SIGTERM or
    SIGINT, and deliver it again from the first iteration report (training then
    checkpoints at the next boundary and stops)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, self._note)

    def _note(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum

    def redeliver(self, steps: int) -> None:
        if self.signum is not None:
            signum, self.signum = self.signum, None
            os.kill(os.getpid(), signum)


def _relay_stop(stop: Any, poll_seconds: float = 0.5) -> None:
    """SIGTERM this process once ``stop`` is set. It polls ``is_set`` rather than blocking in
    ``stop.wait()``: a multiprocessing Event's ``set()`` waits for every sleeping waiter to
    wake, so a run process that ended while its thread slept in ``wait()`` would hang the
    sweep's signal handler forever."""
    while not stop.is_set():
        time.sleep(poll_seconds)
    os.kill(os.getpid(), signal.SIGTERM)


def _run_process(spec_dict: dict[str, Any], results: str, stop: Any,
                 conn: Connection) -> None:
    """A run's process: start the run unless the sweep is stopping; send back its result.

    ``stop`` (a multiprocessing Event) is set by the sweep's signal handler; a thread turns
    it into SIGTERM to this process, which training handles by checkpointing.
    """
    pending = _PendingSignal()
    threading.Thread(target=_relay_stop, args=(stop,), daemon=True).start()
    if stop.is_set() or pending.signum is not None:
        res = not_started(RunSpec.from_dict(spec_dict), results)
    else:
        res = run_one(spec_dict, results, pending.redeliver)
    conn.send(res)
    conn.close()


def _ended_without_result(spec: RunSpec, results: Path, exitcode: int | None,
                          stopping: bool) -> dict[str, Any]:
    run_dir = spec.run_dir(results)
    status, why = (("interrupted", "its process ended on the sweep's stop signal")
                   if stopping else ("failed", "worker died"))
    return {"key": spec.key, "status": status, "stopped": None,
            "env_steps": last_env_steps(run_dir / "progress.csv"), "seconds": 0.0,
            "error": f"{why} (exit code {exitcode})", "log": str(run_dir / "log.txt")}


def run_local(specs: list[RunSpec], results: Path, workers: int, progress: Progress,
              stop: SweepSignals | None = None) -> list[dict[str, Any]]:
    """One fresh spawned process per run, at most ``workers`` at a time, started in order
    as workers free up; none after a stop signal (see :class:`SweepSignals`)."""
    stop = stop or SweepSignals()
    for var, value in ONE_THREAD_ENV.items():
        os.environ[var] = value
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ctx = multiprocessing.get_context("spawn")
    stop_event = ctx.Event()
    stop.on_stop.append(stop_event.set)
    queue = list(specs)
    running: dict[Connection, tuple[RunSpec, Any]] = {}
    out: list[dict[str, Any]] = []
    try:
        with stop.installed():
            while queue or running:
                while queue and len(running) < workers and stop.signum is None:
                    spec = queue.pop(0)
                    recv, send = ctx.Pipe(duplex=False)
                    proc = ctx.Process(target=_run_process, name=f"run {spec.key}",
                                       args=(spec.to_dict(), str(results), stop_event, send))
                    proc.start()
                    send.close()
                    running[recv] = (spec, proc)
                if stop.signum is not None:
                    for spec in queue:
                        record(not_started(spec, results), progress, out)
                    queue.clear()
                for conn in wait_any(list(running), timeout=POLL_SECONDS) if running else []:
                    assert isinstance(conn, Connection)
                    spec, proc = running.pop(conn)
                    try:
                        res = conn.recv()
                    except EOFError:  # the process died before it sent its result
                        proc.join()
                        res = _ended_without_result(spec, results, proc.exitcode,
                                                    stop.signum is not None)
                    conn.close()
                    proc.join()
                    record(res, progress, out)
                progress.counts["running"] = len(running)
                for spec, _ in running.values():
                    progress.set_steps(spec.key,
                                       last_env_steps(spec.run_dir(results) / "progress.csv"))
                progress.refresh()
    except KeyboardInterrupt:  # a second Ctrl-C: the runs abort at once too
        procs = [proc for _, proc in running.values()]
        for proc in procs:
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGINT)
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
        raise
    finally:
        stop.on_stop.remove(stop_event.set)
    return out


# ---------------------------------------------------------------------- Ray backend

def _ray_task_body(spec_dict: dict[str, Any], results: str, token: str,
                   reporter: Any) -> dict[str, Any]:
    """Runs on a Ray worker: train into ``results`` if this node sees the same filesystem
    (the driver's token file is visible), else into a temp dir shipped back as a tar.gz
    (forced with REPRODUCE_RAY_SHIP=1, for testing). Asks the driver's reporter before it
    starts and at every iteration whether the sweep is stopping."""
    import io
    import tarfile
    import tempfile

    import ray

    spec = RunSpec.from_dict(spec_dict)
    if not ray.get(reporter.may_start.remote(spec.key)):
        return not_started(spec, results)
    told = False

    def report(steps: int) -> None:
        nonlocal told
        if ray.get(reporter.report.remote(spec.key, steps)) and not told:
            told = True  # training's own handler checkpoints at the next boundary
            os.kill(os.getpid(), signal.SIGTERM)

    if Path(token).is_file() and not os.environ.get("REPRODUCE_RAY_SHIP"):
        return run_one(spec_dict, results, report)
    with tempfile.TemporaryDirectory() as tmp:
        res = run_one(spec_dict, tmp, report)
        run_dir = spec.run_dir(tmp)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for path in sorted(run_dir.rglob("*")):
                if path.is_file() and path.name != DONE:
                    tar.add(path, arcname=str(path.relative_to(run_dir)))
        res["archive"] = buf.getvalue()
        done = run_dir / DONE
        res["done_marker"] = done.read_text() if done.is_file() else None
        res["log"] = str(spec.run_dir(results) / "log.txt")
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


def _init_ray(workers: int | None) -> None:
    import ray

    address = os.environ.get("RAY_ADDRESS") or None
    env_vars = {**ONE_THREAD_ENV, **RAY_WORKER_ENV, "TF_CPP_MIN_LOG_LEVEL": "2"}
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


def run_ray(specs: list[RunSpec], results: Path, workers: int | None, progress: Progress,
            stop: SweepSignals | None = None) -> list[dict[str, Any]]:
    """The same runs as Ray tasks (num_cpus=1, a fresh worker process per run, at normal
    priority), submitted in order as CPUs free up: at most ``workers`` (default: the
    cluster's CPUs; pass --workers to let an autoscaling cluster grow) in flight.

    ``ray.init(address=$RAY_ADDRESS)`` joins a cluster when RAY_ADDRESS is set (the repo is
    shipped as the job's working_dir; nodes need requirements.txt installed), else starts
    Ray locally with ``workers`` CPUs.
    """
    import uuid

    import ray

    stop = stop or SweepSignals()
    _init_ray(workers)
    token = results / f".sweep-token-{uuid.uuid4().hex}"
    token.write_text("visible\n")

    @ray.remote(num_cpus=0)
    class Reporter:
        def __init__(self) -> None:
            self.steps: dict[str, int] = {}
            self.stopping = False

        def may_start(self, key: str) -> bool:
            return not self.stopping

        def report(self, key: str, steps: int) -> bool:
            self.steps[key] = steps
            return self.stopping

        def stop(self) -> None:
            self.stopping = True

        def snapshot(self) -> dict[str, int]:
            return dict(self.steps)

    reporter = Reporter.remote()

    def tell_tasks() -> None:  # from the signal handler: not Ray calls there, a thread
        threading.Thread(target=lambda: ray.get(reporter.stop.remote()), daemon=True).start()

    limit = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    task = ray.remote(num_cpus=1, max_calls=1)(_ray_task_body)
    queue = list(specs)
    refs: dict[Any, RunSpec] = {}
    out: list[dict[str, Any]] = []
    stop.on_stop.append(tell_tasks)
    try:
        with stop.installed():  # after ray.init, which installs a SIGTERM handler of its own
            while queue or refs:
                while queue and len(refs) < limit and stop.signum is None:
                    spec = queue.pop(0)
                    refs[task.remote(spec.to_dict(), str(results.resolve()),
                                     str(token.resolve()), reporter)] = spec
                if stop.signum is not None:
                    for spec in queue:
                        record(not_started(spec, results), progress, out)
                    queue.clear()
                if not refs:
                    continue
                ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=POLL_SECONDS)
                for ref in ready:
                    spec = refs.pop(ref)
                    try:
                        res = ray.get(ref)
                        _unpack(res, spec, results)
                    except Exception as exc:  # the task's worker died (OOM kill, node lost)
                        res = {"key": spec.key, "status": "failed", "stopped": None,
                               "env_steps": 0, "seconds": 0.0,
                               "error": f"Ray task failed: {exc!r}",
                               "log": str(spec.run_dir(results) / "log.txt")}
                    record(res, progress, out)
                snap = ray.get(reporter.snapshot.remote())
                progress.counts["running"] = len(refs)
                for key, steps in snap.items():
                    progress.set_steps(key, steps)
                progress.refresh()
    finally:
        stop.on_stop.remove(tell_tasks)
        token.unlink(missing_ok=True)
        ray.shutdown()
    return out
