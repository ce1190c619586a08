"""Checkpoints, exact resume, the DONE marker, the per-run lock and stop signals.

Layout of a run directory's ``checkpoint/``::

    checkpoint/
      ckpt-000012/ state.npz  meta.json   # after 12 iterations (epochs); the last 2 are kept
      latest                              # "ckpt-000012", replaced atomically
      replay/chunk-000000123456.npz       # replay rows from absolute row 123456 on

``state.npz`` holds every array (network weights, optimiser slots, the replay's ring
bookkeeping, MuJoCo states); ``meta.json`` the scalars and RNG states, the number of
progress.csv rows, the replay chunks this checkpoint needs, and the sha256 of every file,
so a damaged checkpoint is detected on load and the previous one used instead (or, with no
valid one, the run starts over with a warning). A checkpoint is written into a temporary
directory, fsynced, then renamed into place; a crash while writing leaves the previous one
intact. The replay (over 1 GB for Humanoid) is saved incrementally: each checkpoint appends
one chunk file of the rows written since the previous one, gathered from the ring at save
time (:meth:`qprop_tf.replay.ReplayBuffer.take_journal`; nothing is held in memory between
checkpoints); chunks whose rows have all been overwritten in the ring are deleted.

A run is resumed by running the same command with the same ``--out``: progress.csv is cut
back to the checkpoint's rows (later rows are recomputed, identically; TensorBoard may then
hold two events for those steps, the later ones being the kept ones), every state is
restored and the loop continues. A run whose directory holds ``DONE`` is not run again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from qprop_tf.errors import ConfigMismatch, NonFiniteError, RunInterrupted, RunLocked

DONE = "DONE"
LOCK = "LOCK"
CHECKPOINT_DIR = "checkpoint"
KEEP = 2
IGNORED_CONFIG_KEYS = ("out", "progress_bar", "checkpoint_minutes")
"""Config keys that may differ between a run and its resumption (they change no result)."""
NUMERICS_ENV_VARS = ("TF_ENABLE_ONEDNN_OPTS", "TF_XLA_FLAGS", "OMP_NUM_THREADS")
"""Environment variables that change float round-off: recorded in each checkpoint, and a
resume under other values is warned about (it would not be bit-identical)."""


# ----------------------------------------------------------------------- files
def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file, fsync and rename (atomic)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def write_npz_durably(path: Path, arrays: dict[str, np.ndarray]) -> str:
    """np.savez straight to a temp file (no copy in memory), fsync, rename; its sha256."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    digest = file_sha256(tmp)
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    return digest


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            h.update(block)
    return h.hexdigest()


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_done(run_dir: str | Path) -> bool:
    return (Path(run_dir) / DONE).is_file()


def write_done(run_dir: str | Path, info: dict[str, Any]) -> None:
    """The DONE marker (JSON), written atomically; the last thing a finished run writes."""
    info = {"status": "done", **info, "host": socket.gethostname(),
            "finished": datetime.now(UTC).isoformat(timespec="seconds")}
    write_bytes_durably(Path(run_dir) / DONE,
                        (json.dumps(info, indent=2, default=str) + "\n").encode())


# ----------------------------------------------------------------------- state pieces
def variables_state(prefix: str, variables: list[Any]) -> dict[str, np.ndarray]:
    """{prefix/i: value} for a list of tf.Variables (model.variables, optimizer.variables)."""
    return {f"{prefix}/{i}": np.array(v.numpy()) for i, v in enumerate(variables)}


def assign_variables(prefix: str, variables: list[Any], arrays: dict[str, np.ndarray]) -> None:
    for i, v in enumerate(variables):
        value = arrays[f"{prefix}/{i}"]
        if tuple(value.shape) != tuple(v.shape):
            raise ValueError(f"checkpoint {prefix}/{i}: shape {value.shape} != {v.shape}")
        v.assign(value)


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return rng.bit_generator.state


def set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state


def env_state(env: Any, prefix: str, arrays: dict[str, np.ndarray],
              physics: bool = False) -> dict[str, Any]:
    """An env's RNG state (JSON) and, with ``physics``, the state it needs to continue an
    episode mid-way (into ``arrays``): MuJoCo's full integration state for MuJoCo envs,
    ``unwrapped.state`` for classic-control envs (Pendulum), plus the TimeLimit step count.
    ``meta["exact"]`` is False for an env whose mid-episode state cannot be saved."""
    meta: dict[str, Any] = {"np_random": rng_state(env.unwrapped.np_random)}
    if physics:
        u = env.unwrapped
        meta["exact"] = True
        if hasattr(u, "model") and hasattr(u, "data"):
            import mujoco

            spec = mujoco.mjtState.mjSTATE_INTEGRATION
            buf = np.empty(mujoco.mj_stateSize(u.model, spec), dtype=np.float64)
            mujoco.mj_getState(u.model, u.data, buf, spec)
            arrays[f"{prefix}/mj_state"] = buf
        elif isinstance(getattr(u, "state", None), np.ndarray):
            arrays[f"{prefix}/classic_state"] = np.array(u.state)
        else:
            meta["exact"] = False
        meta["elapsed_steps"] = _time_limit(env)._elapsed_steps
    return meta


def set_env_state(env: Any, prefix: str, meta: dict[str, Any],
                  arrays: dict[str, np.ndarray]) -> bool:
    """Inverse of :func:`env_state`; False if the env's episode could not be restored."""
    set_rng_state(env.unwrapped.np_random, meta["np_random"])
    if "exact" not in meta:
        return True
    u = env.unwrapped
    if f"{prefix}/mj_state" in arrays:
        import mujoco

        mujoco.mj_setState(u.model, u.data, arrays[f"{prefix}/mj_state"],
                           mujoco.mjtState.mjSTATE_INTEGRATION)
    elif f"{prefix}/classic_state" in arrays:
        u.state = np.array(arrays[f"{prefix}/classic_state"])
    else:
        return False
    _time_limit(env)._elapsed_steps = meta["elapsed_steps"]
    return True


def _time_limit(env: Any) -> Any:
    import gymnasium as gym

    w = env
    while not isinstance(w, gym.wrappers.TimeLimit):
        w = w.env
    return w


def check_state_finite(arrays: dict[str, np.ndarray]) -> None:
    """Refuse to checkpoint a state holding NaN/inf weights (raises NonFiniteError)."""
    bad = [k for k, a in arrays.items()
           if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a))]
    if bad:
        raise NonFiniteError(f"non-finite values in {', '.join(bad[:5])}; not checkpointed")


# ----------------------------------------------------------------------- checkpoints
@dataclasses.dataclass
class Loaded:
    """A checkpoint read back: arrays, meta, the (verified) replay chunk files, its name."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    chunk_files: list[tuple[int, Path]]
    name: str

    @property
    def chunks(self) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """(first absolute row, rows) of each replay chunk, loaded one at a time."""
        for first, path in self.chunk_files:
            with np.load(path) as z:
                yield first, {k: z[k] for k in z.files}


class Checkpointer:
    """Writes and reads ``<run_dir>/checkpoint``; ``due()`` says when the next one is owed."""

    def __init__(self, run_dir: str | Path, minutes: float, log: Any = print) -> None:
        self.dir = Path(run_dir) / CHECKPOINT_DIR
        self.minutes = float(minutes)
        self.log = log
        self.last_save = time.monotonic()
        self.chunks: list[dict[str, Any]] = []  # replay chunks of the last checkpoint
        self.save_seconds = 0.0
        self.saves = 0

    def due(self) -> bool:
        return time.monotonic() - self.last_save >= 60.0 * self.minutes

    # ------------------------------------------------------------------ saving
    def save(self, iteration: int, arrays: dict[str, np.ndarray], meta: dict[str, Any],
             replay: Any = None) -> Path:
        """Write checkpoint ``ckpt-<iteration>`` (iteration = iterations done so far)."""
        t0 = time.perf_counter()
        check_state_finite(arrays)
        self.dir.mkdir(parents=True, exist_ok=True)
        chunks = list(self.chunks)
        if replay is not None:
            span = replay.take_journal()
            if span is not None:
                first, rows = span
                replay_dir = self.dir / "replay"
                replay_dir.mkdir(exist_ok=True)
                name = f"chunk-{first:012d}.npz"
                digest = write_npz_durably(replay_dir / name, rows)
                chunks.append({"name": name, "first": first, "rows": int(rows["obs"].shape[0]),
                               "sha256": digest})
            total, cap = replay._rows_written, replay.capacity
            chunks = [c for c in chunks if c["first"] + c["rows"] > total - cap]
        name = f"ckpt-{iteration:06d}"
        data = npz_bytes(arrays)
        meta = {**meta, "iteration": iteration, "sha256": sha256(data), "replay_chunks": chunks,
                "env_vars": {k: os.environ.get(k) for k in NUMERICS_ENV_VARS},
                "saved": datetime.now(UTC).isoformat(timespec="seconds")}
        tmp = self.dir / f".tmp-{name}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        write_bytes_durably(tmp / "state.npz", data)
        write_bytes_durably(tmp / "meta.json", json.dumps(meta, indent=1).encode())
        final = self.dir / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(self.dir)
        write_bytes_durably(self.dir / "latest", name.encode())
        self.chunks = chunks
        self._prune()
        self.last_save = time.monotonic()
        self.save_seconds += time.perf_counter() - t0
        self.saves += 1
        return final

    def _checkpoints(self) -> list[Path]:
        """Checkpoint directories, newest first."""
        if not self.dir.is_dir():
            return []
        return sorted((p for p in self.dir.glob("ckpt-*") if p.is_dir()), reverse=True)

    def _prune(self) -> None:
        keep = self._checkpoints()[:KEEP]
        for old in self._checkpoints()[KEEP:]:
            shutil.rmtree(old, ignore_errors=True)
        needed: set[str] = set()
        for ckpt in keep:
            with contextlib.suppress(OSError, ValueError):
                meta = json.loads((ckpt / "meta.json").read_text())
                needed.update(c["name"] for c in meta["replay_chunks"])
        for chunk in (self.dir / "replay").glob("chunk-*.npz"):
            if chunk.name not in needed:
                chunk.unlink(missing_ok=True)

    # ------------------------------------------------------------------ loading
    def load(self) -> Loaded | None:
        """The newest valid checkpoint (the ``latest`` one first); None if there is none.

        A damaged checkpoint (bad checksum, missing or unreadable file) is reported and the
        previous one tried.
        """
        candidates = self._checkpoints()
        latest = self.dir / "latest"
        with contextlib.suppress(OSError):
            pointed = self.dir / latest.read_text().strip()
            if pointed in candidates:
                candidates.remove(pointed)
                candidates.insert(0, pointed)
        for ckpt in candidates:
            try:
                loaded = self._read(ckpt)
            except (OSError, ValueError, KeyError) as exc:
                self.log(f"warning: checkpoint {ckpt} is damaged ({exc}); trying an older one")
                continue
            self.chunks = loaded.meta["replay_chunks"]
            now = {k: os.environ.get(k) for k in NUMERICS_ENV_VARS}
            if loaded.meta.get("env_vars", now) != now:
                self.log(f"warning: resuming with other numerics settings "
                         f"({loaded.meta['env_vars']} then, {now} now): the rest of the run "
                         f"will not be bit-identical to an uninterrupted one")
            for newer in self._checkpoints():  # damaged ones after it: they get rewritten
                if newer.name > ckpt.name:
                    shutil.rmtree(newer, ignore_errors=True)
            return loaded
        if candidates:
            self.log(f"warning: no valid checkpoint in {self.dir}; starting the run over")
            self.remove()
        return None

    def _read(self, ckpt: Path) -> Loaded:
        meta = json.loads((ckpt / "meta.json").read_text())
        data = (ckpt / "state.npz").read_bytes()
        if sha256(data) != meta["sha256"]:
            raise ValueError("state.npz checksum mismatch")
        with np.load(io.BytesIO(data)) as z:
            arrays = {k: z[k] for k in z.files}
        chunks = []
        for c in meta["replay_chunks"]:
            path = self.dir / "replay" / c["name"]
            if file_sha256(path) != c["sha256"]:
                raise ValueError(f"replay {c['name']} checksum mismatch")
            chunks.append((int(c["first"]), path))
        return Loaded(arrays, meta, chunks, ckpt.name)

    def remove(self) -> None:
        """Delete all checkpoints (after DONE: a finished run needs none)."""
        shutil.rmtree(self.dir, ignore_errors=True)


# ----------------------------------------------------------------------- resume checks
def check_config(run_dir: Path, new: dict[str, Any]) -> None:
    """Raise ConfigMismatch if run_dir/config.json holds another configuration."""
    path = run_dir / "config.json"
    if not path.is_file():
        return
    from qprop_tf.config import Config

    try:
        old = json.loads(path.read_text())["config"]
        old_full = Config().to_dict()
        old_full.update(old)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigMismatch(f"{path} is unreadable ({exc}); use another --out") from None
    diffs = []
    for key in sorted(set(old_full) | set(new)):
        if key in IGNORED_CONFIG_KEYS:
            continue
        a, b = old_full.get(key), new.get(key)
        if isinstance(a, list | tuple) and isinstance(b, list | tuple):
            a, b = list(a), list(b)
        if a != b:
            diffs.append(f"{key}: {a!r} -> {b!r}")
    if diffs:
        raise ConfigMismatch(
            f"{run_dir} holds a run with another configuration ({'; '.join(diffs)}); "
            f"use another --out, or delete that directory to start over")


# ----------------------------------------------------------------------- the run lock
_held: set[str] = set()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
