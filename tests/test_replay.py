"""ReplayBuffer: next-obs recovery, path boundaries, wrap-around, coverage, terminal flags."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from qprop_tf.replay import ReplayBuffer
from qprop_tf.sampler import Batch

OBS_DIM, ACT_DIM = 3, 2


def fake_batch(first_pid: int, lengths: list[int], terminated: list[bool] | None = None
               ) -> Batch:
    """Paths whose obs are (path id, t, 7), act (path id, t), rew 1000*pid + t."""
    lengths_a = np.asarray(lengths, dtype=np.int64)
    p, n = len(lengths), int(lengths_a.sum())
    pid = np.repeat(np.arange(first_pid, first_pid + p), lengths_a)
    t = np.concatenate([np.arange(m) for m in lengths])
    term = np.zeros(p, bool) if terminated is None else np.asarray(terminated, bool)
    ends = np.cumsum(lengths_a) - 1
    step_term = np.zeros(n, bool)
    step_trunc = np.zeros(n, bool)
    step_term[ends] = term
    step_trunc[ends] = ~term
    last_pid = np.arange(first_pid, first_pid + p)
    return Batch(
        obs=np.stack([pid, t, np.full(n, 7)], axis=1).astype(np.float32),
        act=np.stack([pid, t], axis=1).astype(np.float32),
        rew=(1000.0 * pid + t).astype(np.float64),
        terminated=step_term, truncated=step_trunc,
        logp=np.zeros(n), mean=np.zeros((n, ACT_DIM), np.float32), t=t.astype(np.int64),
        path_lengths=lengths_a,
        last_obs=np.stack([last_pid, lengths_a, np.full(p, 7)], axis=1).astype(np.float32),
        path_terminated=term, path_truncated=~term, episode_returns=np.zeros(p))


class Reference:
    """Chronological list of rows (pid, t, is_start); the newest ``capacity`` survive."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.rows: list[tuple[int, int, bool]] = []

    def add(self, first_pid: int, lengths: list[int]) -> None:
        for k, m in enumerate(lengths):
            pid = first_pid + k
            self.rows += [(pid, t, True) for t in range(m)] + [(pid, m, False)]
        self.rows = self.rows[-self.capacity:]

    def transitions(self) -> set[tuple[int, int]]:
        return {(pid, t) for pid, t, start in self.rows if start}


def make_sampler(replay: ReplayBuffer, batch_size: int = 512, jit: bool = False):
    @tf.function(jit_compile=jit)
    def sample():
        rows = replay.sample_rows(batch_size)
        return (rows, *replay.gather(rows))

    return sample


def draw(sample, n_draws: int) -> tuple[np.ndarray, ...]:
    outs = [sample() for _ in range(n_draws)]
    return tuple(np.concatenate([o[i].numpy() for o in outs]) for i in range(6))


def check_samples(replay: ReplayBuffer, ref: Reference, n_draws: int = 20, sample=None
                  ) -> tuple[np.ndarray, ...]:
    rows, obs, act, rew, done, nxt = draw(sample or make_sampler(replay), n_draws)
    pid, t = obs[:, 0].astype(int), obs[:, 1].astype(int)
    # the successor is the true next observation of the same path: never crosses a path end
    np.testing.assert_array_equal(nxt[:, 0], obs[:, 0])
    np.testing.assert_array_equal(nxt[:, 1], obs[:, 1] + 1)
    np.testing.assert_array_equal(nxt[:, 2], 7)
    np.testing.assert_array_equal(act, obs[:, :2])
    np.testing.assert_array_equal(rew, 1000.0 * pid + t)
    expected = ref.transitions()
    sampled = set(zip(pid.tolist(), t.tolist(), strict=True))
    assert sampled == expected  # only stored transitions, and every one of them is drawn
    assert replay.size == len(expected)
    # every sampleable row index is hit
    assert set(rows.tolist()) == set(np.flatnonzero(replay._start).tolist())
    return rows, obs, act, rew, done, nxt


def test_next_obs_and_path_boundaries_without_wraparound():
    replay = ReplayBuffer(OBS_DIM, ACT_DIM, capacity=1000, seed=1)
    ref = Reference(1000)
    for first, lengths in ((0, [5, 1, 9]), (3, [2, 7]), (5, [4, 4, 4, 1])):
        replay.add_batch(fake_batch(first, lengths))
        ref.add(first, lengths)
        check_samples(replay, ref)
    assert replay.rows_filled == len(ref.rows)


@pytest.mark.parametrize("jit", [False, True])
def test_wraparound_keeps_only_valid_transitions(jit):
    capacity = 37
    replay = ReplayBuffer(OBS_DIM, ACT_DIM, capacity=capacity, seed=2)
    ref = Reference(capacity)
    rng = np.random.default_rng(0)
    sample = make_sampler(replay, jit=jit)  # one trace/compile for the whole test
    pid = 0
    # many batches of random lengths: the write pointer lands everywhere, paths get cut
    # at the ring's end and at the oldest end; the last batch alone exceeds the capacity
    schedule = [list(rng.integers(1, 10, size=rng.integers(1, 4))) for _ in range(25)]
    schedule.append([15, 20, 11])
    for lengths in schedule:
        lengths = [int(m) for m in lengths]
        replay.add_batch(fake_batch(pid, lengths))
        ref.add(pid, lengths)
        pid += len(lengths)
        check_samples(replay, ref, n_draws=4, sample=sample)


def test_sampling_is_uniform_over_transitions():
    replay = ReplayBuffer(OBS_DIM, ACT_DIM, capacity=50, seed=3)
    for first in range(0, 40, 4):
        replay.add_batch(fake_batch(first, [3, 8, 1, 5]))
    rows = draw(make_sampler(replay, batch_size=1000), 40)[0]
    counts = np.bincount(rows, minlength=50)[replay._start]
    expected = rows.size / replay.size
    # chi-square-ish bound: every count within 5 sigma of the uniform expectation
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))


@pytest.mark.parametrize("truncation_is_terminal", [False, True])
def test_terminal_flags_follow_truncation_switch(truncation_is_terminal):
    lengths = [3, 4, 2, 5]
    terminated = [True, False, True, False]  # the others were truncated by the time limit
    replay = ReplayBuffer(OBS_DIM, ACT_DIM, capacity=100, seed=4)
    replay.add_batch(fake_batch(0, lengths, terminated), truncation_is_terminal)
    ref = Reference(100)
    ref.add(0, lengths)
    _, obs, _, _, done, _ = check_samples(replay, ref)
    pid, t = obs[:, 0].astype(int), obs[:, 1].astype(int)
    is_last = t == np.asarray(lengths)[pid] - 1
    ends_done = np.asarray(terminated) | truncation_is_terminal
    expected = (is_last & ends_done[pid]).astype(np.float32)
    np.testing.assert_array_equal(done, expected)
    assert done.sum() > 0


def test_batch_rows_layout():
    obs, act, rew, done, start = ReplayBuffer.batch_rows(fake_batch(0, [2, 1], [False, True]),
                                                         truncation_is_terminal=False)
    np.testing.assert_array_equal(obs[:, :2], [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1]])
    np.testing.assert_array_equal(start, [True, True, False, True, False])
    np.testing.assert_array_equal(done, [0, 0, 0, 1, 0])
    np.testing.assert_array_equal(rew, [0, 1, 0, 1000, 0])
    np.testing.assert_array_equal(act[start], [[0, 0], [0, 1], [1, 0]])
