"""Checkpoint files: durable writes, the checkpoint directory, exact resume of the state.

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
checkpoints), in files of at most :data:`CHUNK_BYTES`; chunks whose rows have all been
overwritten in the ring are deleted.

What goes into ``state.npz`` and ``meta.json`` is what the algorithm hands over (each
component declares its own state: :mod:`qprop_tf.state`); the run shell
(:mod:`qprop_tf.run`) adds its counters. The run directory's life around the checkpoints
(DONE, LOCK, the config check, stop signals) is :mod:`qprop_tf.rundir`.

A run is resumed by running the same command with the same ``--out``: progress.csv is cut
back to the checkpoint's rows (later rows are recomputed, identically; TensorBoard may then
hold two events for those steps, the later ones being the kept ones), every state is
restored and the loop continues.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from qprop_tf.errors import NonFiniteError

CHECKPOINT_DIR = "checkpoint"
LATEST = "latest"
"""The file in ``checkpoint/`` naming the newest complete checkpoint."""
REPLAY_DIR = "replay"
"""The subdirectory of ``checkpoint/`` holding the replay's chunk files."""
KEEP = 2
CHUNK_BYTES = 64 * 2**20
"""At most this many bytes of replay rows per chunk file. A checkpoint gathers and writes one
chunk at a time, so it needs about twice this on top of the run's memory (the gathered rows
and their NumPy copy), however many rows were written since the previous checkpoint: without
the bound, 450k Humanoid rows (0.6 GB, about a run's first 5 minutes) took 1.26 GB more to
save and 1.8 GB to restore; with it, 0.15 and 0.19 GB (``python -m
reproduce.bench.checkpoint_memory``). Resuming reads one chunk at a time too."""
NUMERICS_ENV_VARS = ("TF_ENABLE_ONEDNN_OPTS", "TF_XLA_FLAGS", "OMP_NUM_THREADS",
                     "OPENBLAS_CORETYPE")
"""Environment variables that change float round-off: recorded in each checkpoint, and a
resume under other values is warned about (it would not be bit-identical)."""


# ----------------------------------------------------------------------- files
def fsync_dir(path: Path) -> None:
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
    fsync_dir(path.parent)


def write_npz_durably(path: Path, arrays: dict[str, np.ndarray]) -> str:
    """np.savez straight to a temp file (no copy in memory), fsync, rename; its sha256."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    digest = file_sha256(tmp)
    os.replace(tmp, path)
    fsync_dir(path.parent)
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

    def __init__(self, run_dir: str | Path, minutes: float, log: Any = print,
                 chunk_bytes: int | None = CHUNK_BYTES) -> None:
        if chunk_bytes is not None and chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be positive or None, got {chunk_bytes}")
        self.dir = Path(run_dir) / CHECKPOINT_DIR
        self.chunk_bytes = chunk_bytes  # None: one chunk file per checkpoint, however large
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
            max_rows = (None if self.chunk_bytes is None
                        else max(1, self.chunk_bytes // replay.row_bytes))
            while (span := replay.take_journal(max_rows)) is not None:
                first, rows = span
                replay_dir = self.dir / REPLAY_DIR
                replay_dir.mkdir(exist_ok=True)
                name = f"chunk-{first:012d}.npz"
                digest = write_npz_durably(replay_dir / name, rows)
                chunks.append({"name": name, "first": first, "rows": int(rows["obs"].shape[0]),
                               "sha256": digest})
                del rows, span  # free this chunk's rows before gathering the next
            total, cap = replay.rows_written, replay.capacity
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
        fsync_dir(self.dir)
        write_bytes_durably(self.dir / LATEST, name.encode())
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
        for chunk in (self.dir / REPLAY_DIR).glob("chunk-*.npz"):
            if chunk.name not in needed:
                chunk.unlink(missing_ok=True)

    # ------------------------------------------------------------------ loading
    def load(self) -> Loaded | None:
        """The newest valid checkpoint (the ``latest`` one first); None if there is none.

        A damaged checkpoint (bad checksum, missing or unreadable file) is reported and the
        previous one tried.
        """
        candidates = self._checkpoints()
        latest = self.dir / LATEST
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
            path = self.dir / REPLAY_DIR / c["name"]
            if file_sha256(path) != c["sha256"]:
                raise ValueError(f"replay {c['name']} checksum mismatch")
            chunks.append((int(c["first"]), path))
        return Loaded(arrays, meta, chunks, ckpt.name)

    def remove(self) -> None:
        """Delete all checkpoints (after DONE: a finished run needs none)."""
        shutil.rmtree(self.dir, ignore_errors=True)
