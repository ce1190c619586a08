"""Uniform replay of transitions, stored in TF variables and sampled in-graph.

Layout (each observation stored once)
-------------------------------------
The buffer is a ring of ``capacity`` *rows*. Paths are written one after another; after a
path's T steps one extra *sentinel* row holds the path's ``last_obs`` (the observation after
its last step), so a path of T steps takes T + 1 rows::

    row:   r     r+1   ...   r+T-1      r+T
    obs:   s_0   s_1   ...   s_{T-1}    s_T (= last_obs)
    act:   a_0   a_1   ...   a_{T-1}    0
    rew:   r_0   r_1   ...   r_{T-1}    0
    done:  0     0     ...   d          0         d = terminated or (truncated and switch)
    start: 1     1     ...   1          0         (NumPy-side flag, not a TF variable)

The next observation of row i is row (i + 1) % capacity. Transition (s, a, r, d, s') is
row i with s' read from row i + 1; sentinel rows are not transition starts, so a sample
never runs from one path's last observation into the next path's first one.

Which rows are sampleable
-------------------------
A row is sampleable iff it is a transition start and its successor row still holds the
data written after it. Rows are written in chronological order, so overwriting always
removes the *oldest* rows first, and every batch ends with a sentinel: the newest row is
never a start, and the successor of any surviving start was written after it and so also
survives (a path cut at its head by the wrap-around keeps its valid tail). The sampleable
rows are therefore exactly the start rows present, in chronological order. They are kept
in a second ring, ``valid_rows`` (int32, one entry per transition, ``head`` = oldest,
``n_valid`` entries): writing m rows drops the start rows being overwritten from the head
of that ring (they are its oldest entries) and appends the new start rows at its tail.
Sampling is ``valid_rows[(head + k) % capacity]`` with k ~ Uniform{0, ..., n_valid - 1},
i.e. uniform over the stored transitions, all in-graph.

Writing a few steps at a time
-----------------------------
:meth:`ReplayBuffer.add_steps` appends path *pieces* (DDPG adds K steps per call, and an
episode spans many calls). A piece that is still running ends with a *provisional*
sentinel holding the current observation, so the invariants above hold between calls; the
next call continues that path by rewriting the provisional row in place as a step row.

Memory: obs dominates, capacity * obs_dim * 4 bytes (1.39 GB for Humanoid, 348 dims, 1M
rows). ``capacity`` counts rows, so it holds capacity * T / (T + 1) transitions for paths of
T steps (999,000 for 1000-step paths in 1M rows). Writes are in-place strided-slice assigns
on the variable handles; the large variables are never read densely (only gathered), which
keeps TF from copying them.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import tensorflow as tf

from qprop_tf.sampler import Batch


def _assign_rows(var: tf.Variable, start: int, values: np.ndarray) -> None:
    """var[start:start + len(values)] = values, in place.

    Not ``var[a:b].assign(v)``: that first materialises ``var[a:b]`` as a tensor sharing
    var's buffer, so the assign sees a second reference and copies the whole variable
    (1.4 GB at Humanoid size) before writing. The raw op on the handle writes in place.
    """
    n = values.shape[0]
    rank = len(var.shape)
    # begin/end/strides as int64 arrays, not lists: the list conversion costs ~40 us a call,
    # which matters when DDPG writes a handful of rows per call.
    tf.raw_ops.ResourceStridedSliceAssign(
        ref=var.handle, begin=np.array([start] + [0] * (rank - 1), dtype=np.int64),
        end=np.array([start + n, *var.shape[1:]], dtype=np.int64),
        strides=np.ones(rank, dtype=np.int64),
        value=tf.convert_to_tensor(values, var.dtype))


class ReplayBuffer:
    """Ring buffer of whole paths as rows of TF variables; uniform in-graph sampling.

    ``capacity`` is the number of rows (transitions plus one sentinel row per path).
    """

    def __init__(self, obs_dim: int, act_dim: int, capacity: int = 1_000_000,
                 seed: int = 0) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2 rows")
        self.obs_dim = int(obs_dim)
        self.act_dim = int(act_dim)
        self.capacity = int(capacity)
        with tf.name_scope("replay"):
            self.obs = tf.Variable(tf.zeros([capacity, obs_dim], tf.float32), trainable=False,
                                   name="obs")
            self.act = tf.Variable(tf.zeros([capacity, act_dim], tf.float32), trainable=False,
                                   name="act")
            self.rew = tf.Variable(tf.zeros([capacity], tf.float32), trainable=False,
                                   name="rew")
            self.done = tf.Variable(tf.zeros([capacity], tf.float32), trainable=False,
                                    name="done")
            self.valid_rows = tf.Variable(tf.zeros([capacity], tf.int32), trainable=False,
                                          name="valid_rows")
            self.valid_head = tf.Variable(0, dtype=tf.int32, trainable=False,
                                          name="valid_head")
            self.n_valid = tf.Variable(0, dtype=tf.int32, trainable=False, name="n_valid")
        self._rng = tf.random.Generator.from_seed(seed)
        # NumPy-side bookkeeping (1 byte per row): which rows are transition starts.
        self._start = np.zeros(capacity, dtype=bool)
        self._ptr = 0  # next row to write
        self._rows_written = 0  # total rows ever written
        self._head = 0
        self._n_valid = 0
        self._open_obs: np.ndarray | None = None  # last obs of a path left open by add_steps
        # First absolute row written since the last checkpoint (see start_journal), or None
        # when nobody checkpoints this buffer.
        self._journal_from: int | None = None

    # ------------------------------------------------------------------ bookkeeping
    @property
    def size(self) -> int:
        """Number of sampleable transitions."""
        return self._n_valid

    @property
    def rows_written(self) -> int:
        """Rows ever written (absolute row r lives at ring position r % capacity)."""
        return self._rows_written

    @property
    def rows_filled(self) -> int:
        return min(self._rows_written, self.capacity)

    def __len__(self) -> int:
        return self._n_valid

    # ------------------------------------------------------------------ writing
    @staticmethod
    def batch_rows(batch: Batch, truncation_is_terminal: bool
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The rows a batch becomes: (obs, act, rew, done, start), one sentinel per path.

        done on a path's last step = path_terminated or (path_truncated and
        truncation_is_terminal); 0 elsewhere.
        """
        last_done = np.asarray(batch.path_terminated, dtype=bool)
        if truncation_is_terminal:
            last_done = last_done | np.asarray(batch.path_truncated, dtype=bool)
        return ReplayBuffer.path_rows(batch.obs, batch.act, batch.rew, batch.path_lengths,
                                      batch.last_obs, last_done)

    @staticmethod
    def path_rows(obs: np.ndarray, act: np.ndarray, rew: np.ndarray, path_lengths: np.ndarray,
                  last_obs: np.ndarray, last_done: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Rows (obs, act, rew, done, start) of consecutive paths, one sentinel after each.

        ``last_done[p]`` is the done flag of path p's last step (0 on every other step).
        """
        lengths = np.asarray(path_lengths, dtype=np.int64)
        n, p = int(lengths.sum()), int(lengths.shape[0])
        if n != obs.shape[0]:
            raise ValueError("path_lengths do not add up to the number of steps")
        m = n + p
        path_id = np.repeat(np.arange(p), lengths)
        step_rows = np.arange(n) + path_id  # each earlier path adds one sentinel row
        sentinel_rows = np.cumsum(lengths) + np.arange(p)
        obs_rows = np.empty((m, obs.shape[1]), dtype=np.float32)
        obs_rows[step_rows] = obs
        obs_rows[sentinel_rows] = last_obs
        act_rows = np.zeros((m, act.shape[1]), dtype=np.float32)
        act_rows[step_rows] = act
        rew_rows = np.zeros(m, dtype=np.float32)
        rew_rows[step_rows] = rew
        done = np.zeros(m, dtype=np.float32)
        done[sentinel_rows - 1] = np.asarray(last_done, dtype=bool).astype(np.float32)
        start = np.zeros(m, dtype=bool)
        start[step_rows] = True
        return obs_rows, act_rows, rew_rows, done, start

    def add_batch(self, batch: Batch, truncation_is_terminal: bool = False) -> None:
        """Append the batch's whole paths (and one ``last_obs`` sentinel row per path).

        The default (False) bootstraps at time-limit truncation; True treats it as terminal.
        A path left open by :meth:`add_steps` is closed first (see :meth:`close_open_path`).
        """
        if batch.n_steps == 0:
            return
        self.close_open_path()
        obs, act, rew, done, start = self.batch_rows(batch, truncation_is_terminal)
        self._write(obs, act, rew, done, start)

    def add_steps(self, obs: np.ndarray, act: np.ndarray, rew: np.ndarray,
                  path_lengths: np.ndarray | list[int], last_obs: np.ndarray,
                  last_done: np.ndarray | list[bool], last_path_open: bool = False) -> None:
        """Append a few consecutive env steps whose paths may start or end mid-call.

        For step-wise off-policy loops (DDPG), which add a chunk of K steps at a time. The
        steps are split into path pieces of ``path_lengths`` steps (each >= 1); piece p's
        last step has done flag ``last_done[p]`` and is followed by ``last_obs[p]``.

        Open paths: with ``last_path_open`` the last piece is still running. Its
        ``last_obs`` row (the current observation) is written as a *provisional* sentinel,
        so the stored data is valid between calls (the newest row is a sentinel and the
        piece's last transition reads the right s'). The next ``add_steps`` call must then
        start with the continuation of that path (its first obs equals the provisional
        row's obs; checked): it rewrites the provisional row in place as an ordinary step
        row, so an open path costs no extra rows. Call :meth:`close_open_path` to abandon
        it instead (the provisional row then stays as its sentinel).
        """
        lengths = np.asarray(path_lengths, dtype=np.int64)
        if lengths.size == 0:
            return
        if np.any(lengths < 1):
            raise ValueError("every path piece needs at least one step")
        last_done = np.asarray(last_done, dtype=bool)
        if last_path_open and last_done[-1]:
            raise ValueError("an open path cannot end with a done step")
        obs = np.asarray(obs, dtype=np.float32)
        rows = self.path_rows(obs, act, rew, lengths, last_obs, last_done)
        if self._open_obs is not None:
            if not np.array_equal(obs[0], self._open_obs):
                raise ValueError("add_steps after an open path must continue it (its first "
                                 "obs differs); call close_open_path() to start a new one")
            # Rewrite the provisional sentinel: it is the newest row and not a start.
            self._ptr = (self._ptr - 1) % self.capacity
            self._rows_written -= 1
        self._write(*rows)
        self._open_obs = rows[0][-1].copy() if last_path_open else None

    def close_open_path(self) -> None:
        """Abandon the path left open by :meth:`add_steps`: its provisional row stays as its
        sentinel (done 0 on its last step: bootstrapped, like a time-limit truncation)."""
        self._open_obs = None

    def _write(self, obs: np.ndarray, act: np.ndarray, rew: np.ndarray, done: np.ndarray,
               start: np.ndarray) -> None:
        cap = self.capacity
        m = obs.shape[0]
        if m > cap:  # only the newest ``capacity`` rows survive anyway
            skip = m - cap
            self._ptr = (self._ptr + skip) % cap
            self._rows_written += skip
            obs, act, rew, done, start = obs[skip:], act[skip:], rew[skip:], done[skip:], \
                start[skip:]
            m = cap
        if self._journal_from is not None:
            self._journal_from = min(self._journal_from, self._rows_written)
        rows = (self._ptr + np.arange(m)) % cap
        # Start rows about to be overwritten are the oldest entries of the valid ring.
        dropped = int(np.count_nonzero(self._start[rows]))
        self._head = (self._head + dropped) % cap
        self._n_valid -= dropped
        # Slice writes, split in two at the end of the ring.
        first = min(m, cap - self._ptr)
        for lo, a, b in ((self._ptr, 0, first), (0, first, m)):
            if b > a:
                for var, values in ((self.obs, obs), (self.act, act), (self.rew, rew),
                                    (self.done, done)):
                    _assign_rows(var, lo, values[a:b])
        self._start[rows] = start
        # Append the new start rows at the tail of the valid ring.
        new_valid = rows[start].astype(np.int32)
        k = new_valid.shape[0]
        tail = (self._head + self._n_valid) % cap
        first = min(k, cap - tail)
        if first:
            _assign_rows(self.valid_rows, tail, new_valid[:first])
        if k > first:
            _assign_rows(self.valid_rows, 0, new_valid[first:])
        self._n_valid += k
        self._ptr = (self._ptr + m) % cap
        self._rows_written += m
        self.valid_head.assign(self._head)
        self.n_valid.assign(self._n_valid)

    # ------------------------------------------------------------------ sampling (in-graph)
    def sample_rows(self, batch_size: int) -> tf.Tensor:
        """Row indices of ``batch_size`` transitions drawn uniformly with replacement.

        Usable inside a tf.function (also under XLA); the buffer must not be empty.
        """
        k = self._rng.uniform([batch_size], minval=0, maxval=self.n_valid, dtype=tf.int32)
        return tf.gather(self.valid_rows, (self.valid_head + k) % self.capacity)

    def gather(self, rows: tf.Tensor
               ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """(obs, act, rew, done, next_obs) of the transitions starting at ``rows``."""
        next_rows = (rows + 1) % self.capacity
        return (tf.gather(self.obs, rows), tf.gather(self.act, rows),
                tf.gather(self.rew, rows), tf.gather(self.done, rows),
                tf.gather(self.obs, next_rows))

    def sample(self, batch_size: int
               ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """A uniform minibatch (obs, act, rew, done, next_obs), in-graph."""
        return self.gather(self.sample_rows(batch_size))

    # ------------------------------------------------------------------ checkpointing
    def start_journal(self) -> None:
        """Track the rows written from now on, for :meth:`take_journal` (checkpoints)."""
        if self._journal_from is None:
            self._journal_from = self._rows_written

    @property
    def row_bytes(self) -> int:
        """Bytes of one row as :meth:`take_journal` returns it (float32 obs, act, rew, done
        and the bool start flag)."""
        return 4 * (self.obs_dim + self.act_dim + 2) + 1

    def take_journal(self, max_rows: int | None = None
                     ) -> tuple[int, dict[str, np.ndarray]] | None:
        """The rows written since the last call (or :meth:`start_journal`), as they are now.

        Returns (absolute row of the first, {"obs", "act", "rew", "done", "start"}) or None
        if nothing was written. Absolute row r lives at ring position r % capacity; rows
        already overwritten are left out. The rows are read back from the ring with a
        gather (no copy of the buffer, and no copy kept between checkpoints); an open
        path's provisional row rewritten since is read in its current form.

        With ``max_rows``, only the oldest ``max_rows`` of them; call again for the rest
        (until None). A checkpoint writes each span to its own chunk file, so the memory it
        needs is bounded by ``max_rows``, not by the rows written since the previous one.
        """
        if max_rows is not None and max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows}")
        if self._journal_from is None or self._journal_from >= self._rows_written:
            return None
        first = max(self._journal_from, self._rows_written - self.capacity)
        end = self._rows_written if max_rows is None else min(self._rows_written,
                                                              first + max_rows)
        pos = np.arange(first, end) % self.capacity
        idx = tf.constant(pos.astype(np.int64))
        rows = {name: tf.gather(var, idx).numpy() for name, var in
                (("obs", self.obs), ("act", self.act), ("rew", self.rew), ("done", self.done))}
        rows["start"] = self._start[pos].copy()
        self._journal_from = end
        return first, rows

    def get_state(self) -> dict[str, np.ndarray]:
        """The ring bookkeeping (not the rows): valid ring, start flags, pointers, open path,
        the sampling generator. Rows are saved incrementally (:meth:`take_journal`)."""
        state = {
            "valid_rows": self.valid_rows.numpy(),
            "start": self._start.copy(),
            "counters": np.array([self._ptr, self._rows_written, self._head, self._n_valid],
                                 dtype=np.int64),
            "rng": self._rng.state.numpy(),
        }
        if self._open_obs is not None:
            state["open_obs"] = self._open_obs.copy()
        return state

    def set_state(self, state: dict[str, np.ndarray],
                  chunks: Iterable[tuple[int, dict[str, np.ndarray]]]) -> None:
        """Restore :meth:`get_state` and the rows from ``chunks`` (absolute first row, rows),
        applied in order; rows outside the last ``capacity`` rows written are skipped."""
        self._ptr, self._rows_written, self._head, self._n_valid = (
            int(x) for x in state["counters"])
        self._start[:] = state["start"]
        self.valid_rows.assign(state["valid_rows"])
        self._rng.state.assign(state["rng"])
        self._open_obs = state["open_obs"].copy() if "open_obs" in state else None
        if self._journal_from is not None:
            self._journal_from = self._rows_written
        self.valid_head.assign(self._head)
        self.n_valid.assign(self._n_valid)
        total, cap = self._rows_written, self.capacity
        for first, rows in chunks:
            lo, hi = max(first, total - cap, 0), min(first + rows["obs"].shape[0], total)
            r = lo
            while r < hi:
                pos = r % cap
                n = min(hi - r, cap - pos)
                for name, var in (("obs", self.obs), ("act", self.act), ("rew", self.rew),
                                  ("done", self.done)):
                    _assign_rows(var, pos, rows[name][r - first:r - first + n])
                r += n
