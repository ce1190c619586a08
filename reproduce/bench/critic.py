"""Benchmarks: critic minibatch updates per second, and replay memory at Humanoid size.

Run ``python -m reproduce.bench.critic``. TF is limited to one intra-op and one inter-op
thread (as in training runs) before any op executes.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

import numpy as np

from qprop_tf.runtime import limit_threads


def _peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def random_batch(rng: np.random.Generator, obs_dim: int, act_dim: int, n_paths: int,
                 path_length: int) -> Any:
    """A :class:`~qprop_tf.sampler.Batch` of random whole paths (time-limit truncated)."""
    from qprop_tf.sampler import Batch

    n = n_paths * path_length
    ends = np.arange(1, n_paths + 1) * path_length - 1
    trunc = np.zeros(n, bool)
    trunc[ends] = True
    return Batch(
        obs=rng.standard_normal((n, obs_dim), dtype=np.float32),
        act=rng.standard_normal((n, act_dim), dtype=np.float32),
        rew=rng.standard_normal(n), terminated=np.zeros(n, bool), truncated=trunc,
        logp=np.zeros(n), mean=np.zeros((n, act_dim), np.float32),
        t=np.tile(np.arange(path_length), n_paths), path_lengths=np.full(n_paths, path_length),
        last_obs=rng.standard_normal((n_paths, obs_dim), dtype=np.float32),
        path_terminated=np.zeros(n_paths, bool), path_truncated=np.ones(n_paths, bool),
        episode_returns=np.zeros(n_paths))


def bench_critic(obs_dim: int = 11, act_dim: int = 3, n_updates: int = 5000,
                 jit_compile: bool = True, repeats: int = 3, replay_steps: int = 20_000
                 ) -> dict[str, float]:
    """Critic minibatch updates per second (batch 64, 100-100 critic, 100-50-25 policy).

    One warm-up ``fit`` call (tracing + compilation), then ``repeats`` timed calls of
    ``n_updates`` updates each, each call with a different n_updates to show no recompile;
    reports the best and the median rate.
    """
    limit_threads(1)
    from qprop_tf.critic import Critic
    from qprop_tf.policy import GaussianMLPPolicy
    from qprop_tf.replay import ReplayBuffer

    rng = np.random.default_rng(0)
    replay = ReplayBuffer(obs_dim, act_dim, capacity=max(2 * replay_steps, 10_000))
    replay.add_batch(random_batch(rng, obs_dim, act_dim, replay_steps // 1000, 1000))
    policy = GaussianMLPPolicy(obs_dim, act_dim)
    critic = Critic(obs_dim, act_dim, jit_compile=jit_compile, seed=0)
    t0 = time.perf_counter()
    critic.fit(replay, policy, 10)
    warmup_s = time.perf_counter() - t0
    rates = []
    for k in range(repeats):
        n = n_updates + k  # a new n_updates must not recompile
        t0 = time.perf_counter()
        critic.fit(replay, policy, n)
        rates.append(n / (time.perf_counter() - t0))
    return {"obs_dim": obs_dim, "act_dim": act_dim, "n_updates": n_updates,
            "jit_compile": jit_compile, "warmup_s": warmup_s,
            "updates_per_s_best": max(rates), "updates_per_s_median": float(np.median(rates)),
            "tracing_count": critic.fit_function(replay, policy).experimental_get_tracing_count()}


def bench_replay_memory(obs_dim: int = 348, act_dim: int = 17, capacity: int = 1_000_000,
                        chunk_paths: int = 5, path_length: int = 1000,
                        fit_updates: int = 2000, jit_compile: bool = True
                        ) -> dict[str, float]:
    """Peak RSS with a full Humanoid-size replay (random data added via ``add_batch``).

    Fills ``capacity`` rows plus one more chunk (so the ring wraps), then runs a critic
    ``fit`` on it (in-graph sampling from the full buffer) and reports the process's peak
    RSS (resource.getrusage) and current RSS.
    """
    limit_threads(1)
    from qprop_tf.critic import Critic
    from qprop_tf.policy import GaussianMLPPolicy
    from qprop_tf.replay import ReplayBuffer

    rss_before = _current_rss_mb()
    peak_before = _peak_rss_mb()
    rng = np.random.default_rng(0)
    replay = ReplayBuffer(obs_dim, act_dim, capacity=capacity)
    rss_alloc = _current_rss_mb()
    t0 = time.perf_counter()
    rows_per_chunk = chunk_paths * (path_length + 1)
    n_chunks = -(-capacity // rows_per_chunk) + 1
    for _ in range(n_chunks):
        replay.add_batch(random_batch(rng, obs_dim, act_dim, chunk_paths, path_length))
    fill_s = time.perf_counter() - t0
    rss_full = _current_rss_mb()
    policy = GaussianMLPPolicy(obs_dim, act_dim)
    critic = Critic(obs_dim, act_dim, seed=0, jit_compile=jit_compile)
    rss_models = _current_rss_mb()
    t0 = time.perf_counter()
    stats = critic.fit(replay, policy, fit_updates)
    fit_s = time.perf_counter() - t0
    replay.add_batch(random_batch(rng, obs_dim, act_dim, 5, path_length))  # write after read
    t0 = time.perf_counter()
    stats = critic.fit(replay, policy, fit_updates)
    rate = fit_updates / (time.perf_counter() - t0)
    obs_gb = capacity * obs_dim * 4 / 1e9
    return {"obs_dim": obs_dim, "act_dim": act_dim, "jit_compile": jit_compile,
            "capacity_rows": capacity,
            "transitions": replay.size, "obs_storage_gb": obs_gb,
            "rss_before_mb": rss_before, "peak_rss_before_mb": peak_before,
            "rss_after_alloc_mb": rss_alloc, "rss_full_mb": rss_full, "rss_models_mb": rss_models,
            "rss_end_mb": _current_rss_mb(), "peak_rss_mb": _peak_rss_mb(),
            "fill_s": fill_s, "first_fit_s": fit_s, "fit_loss": stats["loss"],
            "full_buffer_updates_per_s": rate}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-updates", type=int, default=5000)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args(argv)
    limit_threads(1)
    for jit in (True, False):
        print(json.dumps(bench_critic(n_updates=args.n_updates, jit_compile=jit)), flush=True)
    if not args.skip_memory:
        print(json.dumps(bench_replay_memory()), flush=True)


if __name__ == "__main__":
    main()
