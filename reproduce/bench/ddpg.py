"""The DDPG loop's speed: env steps/s for chunks of K env steps (``ddpg_chunk``).

    python -m reproduce.bench.ddpg --chunk 1 16 50

One JSON line per K: the whole loop's rate (acting, env.step, replay writes, the compiled
updates and the mirror sync; evaluation excluded), its parts per step, the compilation time,
the evaluation rate and the bare env.step rate. ``make bench`` runs it for K = 1, 16, 50.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import keras
import numpy as np

from qprop_tf.config import Config
from qprop_tf.ddpg import DDPGRunner
from qprop_tf.explore import EpisodeLog
from qprop_tf.runtime import limit_threads


def bench_ddpg(env_id: str = "Hopper-v5", steps: int = 10_000, chunk: int = 16,
               eval_steps: int = 5000, jit_compile: bool = True, seed: int = 0
               ) -> dict[str, Any]:
    """Env steps/s of the whole DDPG loop (1 critic + 1 actor update per step), one TF thread.

    Fills the replay to ``min_replay`` (1000) first, runs one chunk to trace/compile, then
    times ``steps`` env steps in chunks of ``chunk``: acting (NumPy actor + OU), env.step,
    replay writes, the compiled updates and the mirror sync. Evaluation is timed separately
    (``eval_steps`` noise-free steps). Also reports the bare env.step rate with a fixed action.
    """
    limit_threads(1)
    cfg = Config(algo="ddpg", env=env_id, seed=seed, ddpg_chunk=chunk,
                 critic_xla=str(jit_compile).lower(), progress_bar=False).validate()
    keras.utils.set_random_seed(seed)
    runner = DDPGRunner(cfg)
    agent = runner.agent
    log = EpisodeLog()
    runner.explorer.collect(cfg.min_replay, log)  # no update is owed before min_replay
    t0 = time.perf_counter()
    runner.step_chunk(chunk, log)  # tracing + compilation
    compile_s = time.perf_counter() - t0
    writes0, write_t0 = runner.explorer.writes, runner.explorer.write_time
    sample_s = update_s = 0.0
    updates = 0
    done = 0
    while done < steps:
        k = min(chunk, steps - done)
        stats, ts, tu = runner.step_chunk(k, log)
        sample_s += ts
        update_s += tu
        updates += stats["updates"]
        done += k
    writes = runner.explorer.writes - writes0
    write_s = runner.explorer.write_time - write_t0
    t0 = time.perf_counter()
    eval_returns, eval_lengths = runner.evaluate(eval_steps)
    eval_s = time.perf_counter() - t0
    # bare env.step with a fixed action, the ceiling of any loop
    env = runner.env
    env.reset()
    action = np.zeros(runner.act_dim)
    t0 = time.perf_counter()
    for _ in range(2000):
        _, _, term, trunc, _ = env.step(action)
        if term or trunc:
            env.reset()
    raw = 2000 / (time.perf_counter() - t0)
    runner.close()
    total = sample_s + update_s
    return {
        "env_id": env_id, "chunk": chunk, "steps": steps, "updates": updates,
        "jit_compile": jit_compile,
        "env_steps_per_s": steps / total,
        "us_per_step_acting_and_env": 1e6 * (sample_s - write_s) / steps,
        "us_per_replay_write": 1e6 * write_s / max(writes, 1),
        "us_per_update_call": 1e6 * update_s / max(writes, 1),
        "us_per_update": 1e6 * update_s / max(updates, 1),
        "compile_s": compile_s,
        "eval_steps_per_s": float(eval_lengths.sum()) / eval_s,
        "eval_s": eval_s,
        "raw_env_steps_per_s": raw,
        "replay_size": agent.replay.size,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="DDPG loop speed (env steps/s)")
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, nargs="+", default=[1, 16, 50])
    parser.add_argument("--no-xla", action="store_true")
    args = parser.parse_args(argv)
    for k in args.chunk:
        print(json.dumps(bench_ddpg(args.env, args.steps, k, jit_compile=not args.no_xla)),
              flush=True)


if __name__ == "__main__":
    main()
