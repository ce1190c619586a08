"""The replay's checkpoint journal: chunks restore the ring exactly, in bounded chunk files."""

import numpy as np
import pytest

from qprop_tf.checkpoint import Checkpointer
from qprop_tf.replay import ReplayBuffer


def _fill(live: ReplayBuffer, rng: np.random.Generator, steps: int, obs: np.ndarray
          ) -> np.ndarray:
    """``steps`` random add_steps calls (paths open across calls); the next first obs."""
    od, ad = live.obs_dim, live.act_dim
    for _ in range(steps):
        k = int(rng.integers(1, 6))
        o = np.concatenate([obs[None], rng.standard_normal((k - 1, od)).astype(np.float32)])
        ends = rng.random() < 0.3
        last = rng.standard_normal((1, od)).astype(np.float32)
        live.add_steps(o, rng.standard_normal((k, ad)), rng.standard_normal(k), [k], last,
                       [ends], last_path_open=not ends)
        obs = last[0] if not ends else rng.standard_normal(od).astype(np.float32)
        if ends:
            live.close_open_path()
    return obs


def _assert_same(live: ReplayBuffer, restored: ReplayBuffer) -> None:
    for name in ("obs", "act", "rew", "done", "valid_rows"):
        np.testing.assert_array_equal(getattr(live, name).numpy(),
                                      getattr(restored, name).numpy())
    assert int(restored.n_valid) == live.size
    np.testing.assert_array_equal(live.sample_rows(8).numpy(), restored.sample_rows(8).numpy())


@pytest.mark.parametrize("max_rows", [None, 1, 7])
def test_replay_chunks_restore_the_ring_exactly(max_rows):
    """Open paths, wrap-around and overwritten chunks, whole or in spans of at most
    ``max_rows``: the restored buffer is identical."""
    rng = np.random.default_rng(0)
    cap, od, ad = 50, 3, 2
    live = ReplayBuffer(od, ad, cap, seed=1)
    live.start_journal()
    ckpt_chunks: list[tuple[int, dict]] = []
    obs = rng.standard_normal(od).astype(np.float32)
    for _ in range(6):
        obs = _fill(live, rng, 7, obs)
        while (span := live.take_journal(max_rows)) is not None:
            assert max_rows is None or span[1]["obs"].shape[0] <= max_rows
            ckpt_chunks.append(span)
        restored = ReplayBuffer(od, ad, cap, seed=99)
        restored.set_state(live.get_state(), ckpt_chunks)
        _assert_same(live, restored)
    assert live.rows_written > 2 * cap  # wrapped around (chunks overwritten)
    assert max_rows != 1 or len(ckpt_chunks) >= live.rows_written - cap


def test_checkpoint_writes_bounded_chunk_files_and_restores_the_ring(tmp_path):
    """With chunk_bytes worth 10 rows, each checkpoint's rows go to files of <= 10 rows; the
    newest checkpoint, loaded from disk, restores the ring exactly; stale chunks are deleted."""
    rng = np.random.default_rng(3)
    live = ReplayBuffer(3, 2, 60, seed=1)
    live.start_journal()
    ckpt = Checkpointer(tmp_path, 0, chunk_bytes=10 * live.row_bytes + 5)
    obs = rng.standard_normal(3).astype(np.float32)
    for it in range(5):
        obs = _fill(live, rng, 9, obs)
        ckpt.save(it, {"x": np.zeros(2)}, {}, replay=live)
    chunks = ckpt.load().meta["replay_chunks"]
    assert len(chunks) > 6 and all(c["rows"] <= 10 for c in chunks)
    files = sorted(p.name for p in (tmp_path / "checkpoint" / "replay").glob("chunk-*.npz"))
    assert len(files) >= len(chunks)  # the previous checkpoint's chunks are kept too
    restored = ReplayBuffer(3, 2, 60, seed=99)
    restored.set_state(live.get_state(), Checkpointer(tmp_path, 0).load().chunks)
    _assert_same(live, restored)


@pytest.mark.parametrize("bad", [0, -5])
def test_bad_chunk_sizes_are_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="chunk_bytes"):
        Checkpointer(tmp_path, 0, chunk_bytes=bad)
    live = ReplayBuffer(3, 2, 10)
    live.start_journal()
    with pytest.raises(ValueError, match="max_rows"):
        live.take_journal(bad)
