"""Speed benchmarks on this machine, one process, one TF thread: ``make bench``
(``python -m reproduce.bench.speed``).

For each env it measures, in one run so the ratios are comparable:
  raw      env.step with precomputed actions (the ceiling for any sampler)
  sampler  our whole-path sampler with the NumPy policy mirror
  trpo     the whole TRPO-GAE training loop (sampling, baseline, GAE, update, logging),
           batch 5000, with and without the first (tf.function tracing) iteration
and prints a table with the loop's rate as a fraction of raw. Results are written to
results/bench/<host-date>.json and .md with the command that produced them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from qprop_tf.runtime import cpu_model, limit_threads


def bench_raw_env(env_id: str, steps: int) -> float:
    from qprop_tf.envs import make_env

    env = make_env(env_id, 0)
    env.reset()
    actions = np.random.default_rng(0).uniform(
        env.action_space.low, env.action_space.high, (steps, env.action_space.shape[0]))
    t0 = time.perf_counter()
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - t0)


def bench_sampler(env_id: str, steps: int, n_envs: int = 1) -> float:
    from qprop_tf.envs import make_envs
    from qprop_tf.policy import GaussianMLPPolicy, NumpyPolicy
    from qprop_tf.sampler import Sampler

    envs = make_envs(env_id, n_envs, 0)
    policy = GaussianMLPPolicy(envs[0].observation_space.shape[0],
                               envs[0].action_space.shape[0])
    sampler = Sampler(envs, NumpyPolicy(policy), 5000, np.random.default_rng(0))
    done = 0
    t0 = time.perf_counter()
    while done < steps:
        done += sampler.sample().n_steps
    return done / (time.perf_counter() - t0)


def bench_loop(algo: str, env_id: str, steps: int, prefix: str) -> dict[str, float]:
    """Whole training loop: env steps/s over the run (start-up and tracing included) and
    over the iterations after the first (steady state)."""
    import pandas as pd

    from qprop_tf.config import load_config
    from qprop_tf.run import train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(algo, env_id, 0, {"batch_size": 5000, "max_steps": steps,
                                             "progress_bar": False})
        t0 = time.perf_counter()
        out = train(cfg, Path(tmp) / "run", verbose=False)
        wall = time.perf_counter() - t0
        df = pd.read_csv(out / "progress.csv")
    rest = df.iloc[1:]
    return {prefix: float(df.env_steps.iloc[-1] / wall),
            f"{prefix}_after_first": float(rest.batch_steps.sum() / rest.iteration_time.sum()),
            f"{prefix}_sample_share": float(rest.sample_time.sum() / rest.iteration_time.sum())}


def bench_trpo_loop(env_id: str, steps: int) -> dict[str, float]:
    return bench_loop("trpo", env_id, steps, "trpo_loop")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", default="Hopper-v5,HalfCheetah-v5")
    parser.add_argument("--raw-steps", type=int, default=30000)
    parser.add_argument("--loop-steps", type=int, default=100000)
    parser.add_argument("--qprop-steps", type=int, default=60000)
    parser.add_argument("--ddpg-steps", type=int, default=20000)
    parser.add_argument("--out", default="results/bench")
    args = parser.parse_args(argv)
    limit_threads(1)

    rows = []
    for env_id in args.envs.split(","):
        raw = bench_raw_env(env_id, args.raw_steps)
        sampler = bench_sampler(env_id, args.raw_steps)
        loop = bench_trpo_loop(env_id, args.loop_steps)
        row = {"env": env_id, "raw_env_step": raw, "sampler": sampler, **loop}
        row["sampler_vs_raw"] = sampler / raw
        row["trpo_loop_vs_raw"] = loop["trpo_loop"] / raw
        row["trpo_loop_after_first_vs_raw"] = loop["trpo_loop_after_first"] / raw
        rows.append(row)
        print(f"{env_id}: raw {raw:,.0f}/s | sampler {sampler:,.0f}/s ({row['sampler_vs_raw']:.0%})"
              f" | TRPO loop {loop['trpo_loop']:,.0f}/s ({row['trpo_loop_vs_raw']:.0%}),"
              f" after first iteration {loop['trpo_loop_after_first']:,.0f}/s"
              f" ({row['trpo_loop_after_first_vs_raw']:.0%})", flush=True)

    from reproduce.bench.critic import bench_critic

    critic_rows = []
    for jit in (True, False):
        c = bench_critic(obs_dim=11, act_dim=3, n_updates=5000, jit_compile=jit)
        critic_rows.append(c)
        print(f"critic (Hopper dims, XLA {'on' if jit else 'off'}): "
              f"{c['updates_per_s_median']:,.0f} minibatch updates/s (median of 3 x 5000)",
              flush=True)
    qprop = bench_loop("qprop-c", "Hopper-v5", args.qprop_steps, "qprop_loop")
    print(f"TR-c-Q-Prop loop, Hopper-v5, 1 critic update per env step: "
          f"{qprop['qprop_loop']:,.0f} env steps/s, after first iteration "
          f"{qprop['qprop_loop_after_first']:,.0f}/s", flush=True)

    from reproduce.bench.ddpg import bench_ddpg

    ddpg_rows = []
    for chunk in (1, 16, 50):
        d = bench_ddpg("Hopper-v5", steps=args.ddpg_steps, chunk=chunk, eval_steps=2000)
        ddpg_rows.append(d)
        print(f"DDPG loop, Hopper-v5, chunk K={chunk}, 1 critic + 1 actor update per step: "
              f"{d['env_steps_per_s']:,.0f} env steps/s (evaluation excluded)", flush=True)

    meta = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "cpu": cpu_model(),
            "cores": os.cpu_count(), "tf_threads": 1,
            "command": "make bench  (python -m reproduce.bench.speed "
            + " ".join(sys.argv[1:] if argv is None else argv) + ")"}
    from qprop_tf.runtime import versions

    meta["versions"] = versions()
    lines = [f"# Benchmark, {meta['date']}", "",
             f"Command: `{meta['command'].strip()}`. CPU: {meta['cpu']}, {meta['cores']} cores;"
             " one process, one TF thread. Rates are env steps per second.", "",
             "| env | raw env.step | sampler | sampler/raw | TRPO loop | loop/raw "
             "| loop after 1st it. | after 1st/raw |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['env']} | {r['raw_env_step']:,.0f} | {r['sampler']:,.0f} | "
            f"{r['sampler_vs_raw']:.0%} | {r['trpo_loop']:,.0f} | {r['trpo_loop_vs_raw']:.0%} | "
            f"{r['trpo_loop_after_first']:,.0f} | {r['trpo_loop_after_first_vs_raw']:.0%} |")
    lines += ["", "| what | rate |", "|---|---|"]
    for c in critic_rows:
        lines.append(f"| critic minibatch updates/s, Hopper dims, batch 64, XLA "
                     f"{'on' if c['jit_compile'] else 'off'} | {c['updates_per_s_median']:,.0f} |")
    lines.append(f"| TR-c-Q-Prop loop on Hopper-v5, batch 5000, 1 critic update per step "
                 f"(env steps/s, whole run / after 1st it.) | {qprop['qprop_loop']:,.0f} / "
                 f"{qprop['qprop_loop_after_first']:,.0f} |")
    for d in ddpg_rows:
        lines.append(f"| DDPG loop on Hopper-v5, chunk K={d['chunk']}, 1 critic + 1 actor update "
                     f"per step (env steps/s, evaluation excluded) | {d['env_steps_per_s']:,.0f} |")
    table = "\n".join(lines) + "\n"
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{platform.node()}-{meta['date'][:10]}"
    (out / f"{stem}.json").write_text(json.dumps(
        {"meta": meta, "rows": rows, "critic": critic_rows, "qprop_loop": qprop,
         "ddpg": ddpg_rows}, indent=2)
        + "\n")
    (out / f"{stem}.md").write_text(table)
    (out / "latest.md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
