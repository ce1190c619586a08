"""A run directory's life: the DONE marker, the LOCK, the config check and stop signals.

A run directory holds ``config.json``, ``progress.csv`` and TensorBoard events
(:mod:`qprop_tf.logger`), ``checkpoint/`` while it is unfinished (:mod:`qprop_tf.checkpoint`),
``LOCK`` while a process runs it, and ``DONE`` (JSON, written atomically and last) once it
finished: a directory with DONE is not run again. ``reproduce/`` uses the same markers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from qprop_tf.checkpoint import write_bytes_durably
from qprop_tf.errors import ConfigMismatch, RunInterrupted, RunLocked

DONE = "DONE"
LOCK = "LOCK"
CONFIG = "config.json"


def is_done(run_dir: str | Path) -> bool:
    return (Path(run_dir) / DONE).is_file()


def write_done(run_dir: str | Path, info: dict[str, Any]) -> None:
    """The DONE marker (JSON), written atomically; the last thing a finished run writes."""
    info = {"status": "done", **info, "host": socket.gethostname(),
            "finished": datetime.now(UTC).isoformat(timespec="seconds")}
    write_bytes_durably(Path(run_dir) / DONE,
                        (json.dumps(info, indent=2, default=str) + "\n").encode())


def machines_so_far(run_dir: str | Path, current: dict[str, Any]) -> list[dict[str, Any]]:
    """Every machine a run has run on, oldest first: those its ``config.json`` recorded
    (a resumed run) and ``current`` (:func:`qprop_tf.runtime.machine`) if it is new."""
    path = Path(run_dir) / CONFIG
    seen: list[dict[str, Any]] = []
    if path.is_file():
        try:
            seen = list(json.loads(path.read_text()).get("machines", []))
        except (OSError, ValueError, AttributeError):
            seen = []
    return seen if current in seen else [*seen, current]


# ----------------------------------------------------------------------- resume checks
def check_config(run_dir: Path, cfg: Any) -> None:
    """Raise ConfigMismatch if ``run_dir/config.json`` holds another configuration than
    ``cfg`` (a :class:`~qprop_tf.config.Config`; what counts as another is its
    :meth:`~qprop_tf.config.Config.differences`)."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        return
    try:
        diffs = cfg.differences(json.loads(path.read_text())["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigMismatch(f"{path} is unreadable ({exc}); use another --out") from None
    if diffs:
        raise ConfigMismatch(
            f"{run_dir} holds a run with another configuration ({'; '.join(diffs)}); "
            f"use another --out, or delete that directory to start over")


# ----------------------------------------------------------------------- the run lock
_held: set[str] = set()


def proc_stat(pid: int | str) -> tuple[str, int] | None:
    """(state, process group) of ``pid`` from ``/proc/<pid>/stat``; None when it is gone, or
    there is no procfs. State "Z": a zombie, exited but not yet reaped by its parent."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[2])


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie does not, though it still answers ``kill(pid, 0)``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = proc_stat(pid)
    return stat is None or stat[0] != "Z"


def is_locked(run_dir: str | Path) -> bool:
    """Whether ``run_dir/LOCK`` is held right now: by a live process on this host, or by any
    process on another host (which this host cannot check). A stale lock is not held."""
    path = Path(run_dir) / LOCK
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return owner.get("host") != socket.gethostname() or _pid_alive(int(owner.get("pid", -1)))


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold ``run_dir/LOCK`` (created with O_EXCL; hostname and pid inside) while running.

    Re-entrant within a process. A lock whose pid is dead on this host is stale and taken
    over; a lock held by a live process (or by another host) raises :class:`RunLocked`.
    """
    path = Path(run_dir) / LOCK
    key = str(path.resolve())
    if key in _held:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"host": socket.gethostname(), "pid": os.getpid()}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = json.loads(path.read_text())
            except (OSError, ValueError):
                owner = None  # being written right now, or garbage: look again
                time.sleep(0.2)
                if path.exists():
                    with contextlib.suppress(OSError, ValueError):
                        owner = json.loads(path.read_text())
            if owner is not None and (owner.get("host") != me["host"]
                                      or _pid_alive(int(owner.get("pid", -1)))):
                raise RunLocked(f"{run_dir} is in use by pid {owner.get('pid')} on "
                                f"{owner.get('host')} (delete {path} if that process is "
                                f"gone)") from None
            path.unlink(missing_ok=True)  # stale: its process is dead
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
            f.flush()
            os.fsync(f.fileno())
        break
    else:
        raise RunLocked(f"could not take {path}")
    _held.add(key)
    try:
        yield
    finally:
        _held.discard(key)
        path.unlink(missing_ok=True)


# ----------------------------------------------------------------------- signals
class StopSignals:
    """SIGTERM/SIGINT set a flag; the loop checkpoints at the next boundary and stops.

    A second SIGINT raises KeyboardInterrupt at once. Handlers are only installed in the
    main thread (elsewhere the flag never sets).
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\nqprop-tf: got {signal.Signals(signum).name}; checkpointing at the end of "
              f"this iteration, then stopping", file=sys.stderr, flush=True)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGTERM, signal.SIGINT):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


def at_boundary(ckpt: Any, signals: Any, save: Callable[[], None], label: str) -> None:
    """At an iteration (epoch) boundary: checkpoint if one is due or a stop signal arrived,
    then raise :class:`RunInterrupted` if there was a signal."""
    if ckpt.due() or signals.signum is not None:
        save()
    if signals.signum is not None:
        raise RunInterrupted(
            signals.signum, f"stopped by signal after {label}; checkpointed in {ckpt.dir}: "
            "run the same command to resume")
