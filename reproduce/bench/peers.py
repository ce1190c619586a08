"""Peer speed benchmark: our TRPO against sb3-contrib's PyTorch TRPO, ``make bench-peers``.

``make bench-peers`` builds .venv-peers from requirements-peers.txt (torch, stable-baselines3,
sb3-contrib; never part of .venv or CI) and runs::

    .venv/bin/python -m reproduce.bench.peers --peer-python .venv-peers/bin/python

It measures the whole training loop's speed (env steps per second) on one machine under the
same load, interleaving the implementations round by round (ours, sb3, ..., ours, sb3, ...):

  ours   qprop_tf's TRPO (Hopper-v5, batches of 5000 steps, the default config: 100-50-25
         tanh Gaussian policy, linear feature baseline), in this process, one TF thread.
         Its seconds are the whole ``train()`` call: env and network construction, the
         first iteration's tf.function tracing, sampling, GAE, updates, logging.
  sb3    sb3_contrib.TRPO("MlpPolicy", n_steps=5000, batch_size=B) on Hopper-v5, policy net
         pi 100-50-25 tanh, sb3's default value net 64-64 tanh (fitted with 10 Adam epochs of
         minibatches of B per iteration; B=5000: 10 full-batch steps; B=128: sb3's default),
         in a subprocess of the peer interpreter (reproduce/bench/sb3_trpo_speed.py, which never
         imports TensorFlow), torch.set_num_threads(1). Its seconds are ``model.learn(N)``
         only; construction is reported separately.

Both sides run with OMP/MKL/OPENBLAS_NUM_THREADS=1 (set by ``main`` before NumPy loads; importing
this module changes no environment variable). The table, with each run, the medians and
the ratios ours/sb3, is printed and written to results/bench/peers.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ONE_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
SB3_SCRIPT = Path(__file__).with_name("sb3_trpo_speed.py")
OURS = "ours"

Row = dict[str, Any]
"""One run: round, impl, steps, construct_s (None: included in train_s), train_s,
steps_per_s, steps_per_s_after_first."""


def sb3_impl(batch_size: int) -> str:
    return f"sb3 bs{batch_size}"


def run_ours(env_id: str, steps: int, batch_size: int = 5000) -> Row:
    """Our whole TRPO training loop in this process, timed as
    :func:`reproduce.bench.speed.bench_loop` times it, but keeping the exact step count
    (batches are whole paths, >= batch_size)."""
    import pandas as pd

    from qprop_tf.config import load_config
    from qprop_tf.run import train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config("trpo", env_id, 0, {"batch_size": batch_size, "max_steps": steps,
                                               "progress_bar": False})
        t0 = time.perf_counter()
        out = train(cfg, Path(tmp) / "run", verbose=False)
        wall = time.perf_counter() - t0
        df = pd.read_csv(out / "progress.csv")
    done = int(df.env_steps.iloc[-1])
    rest = df.iloc[1:]
    return {"impl": OURS, "steps": done, "construct_s": None, "train_s": wall,
            "steps_per_s": done / wall,
            "steps_per_s_after_first": float(rest.batch_steps.sum() / rest.iteration_time.sum())}


def run_sb3(peer_python: str, env_id: str, steps: int, n_steps: int,
            batch_size: int) -> tuple[Row, dict[str, str]]:
    """sb3-contrib's TRPO in a subprocess of the peer interpreter; returns the row and the
    peer's package versions."""
    env = {**os.environ, **dict.fromkeys(ONE_THREAD_VARS, "1")}
    cmd = [peer_python, "-I", str(SB3_SCRIPT), "--env", env_id, "--steps", str(steps),
           "--n-steps", str(n_steps), "--batch-size", str(batch_size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    row = {"impl": sb3_impl(batch_size), "steps": int(out["steps"]),
           "construct_s": float(out["construct_s"]), "train_s": float(out["learn_s"]),
           "steps_per_s": float(out["steps_per_s"]),
           "steps_per_s_after_first": float(out["steps_per_s_after_first"])}
    return row, dict(out["versions"])


def summarise(rows: list[Row]) -> dict[str, dict[str, float]]:
    """Per implementation (in first-seen order): median steps/s over the runs, whole loop and
    after the first iteration, and the number of runs."""
    out: dict[str, dict[str, float]] = {}
    for impl in dict.fromkeys(r["impl"] for r in rows):
        mine = [r for r in rows if r["impl"] == impl]
        out[impl] = {"runs": len(mine),
                     "steps_per_s": statistics.median(r["steps_per_s"] for r in mine),
                     "steps_per_s_after_first": statistics.median(
                         r["steps_per_s_after_first"] for r in mine)}
    return out


def ratios(summary: dict[str, dict[str, float]], ours: str = OURS) -> dict[str, dict[str, float]]:
    """ours / peer, of the medians, for every peer in the summary."""
    base = summary[ours]
    return {impl: {k: base[k] / s[k] for k in ("steps_per_s", "steps_per_s_after_first")}
            for impl, s in summary.items() if impl != ours}


def _fmt_s(x: float | None) -> str:
    return "(in train s)" if x is None else f"{x:.2f}"


def render_markdown(meta: dict[str, Any], rows: list[Row]) -> str:
    summary = summarise(rows)
    rat = ratios(summary)
    v = meta["versions"]
    lines = [
        f"# Peer benchmark: our TRPO vs sb3-contrib TRPO, {meta['date']}", "",
        f"Command: `{meta['command']}`. CPU: {meta['cpu']}, {meta['cores']} cores; load average "
        f"{meta['load_before']:.2f} before, {meta['load_after']:.2f} after (other work may share "
        "the cores; the runs are interleaved so each round sees the same load).", "",
        f"Env {meta['env']}, batches of {meta['n_steps']} env steps, ~{meta['steps']:,} env steps "
        f"per run, rounds: {meta['rounds']}, each of {', '.join(summary)}. Every run "
        "single-threaded (OMP/MKL/OPENBLAS_NUM_THREADS=1; ours: one TF intra/inter-op thread; sb3: "
        "torch.set_num_threads(1)).", "",
        "- **ours**: qprop_tf TRPO, default config (Gaussian policy 100-50-25 tanh, linear "
        "feature baseline, CG 10, max KL 0.01). Seconds are the whole `train()` call "
        "(construction and the first iteration's tf.function tracing included).",
        "- **sb3 bsB**: `sb3_contrib.TRPO(\"MlpPolicy\", env, n_steps=5000, batch_size=B)`, "
        "policy net pi 100-50-25 tanh, sb3's default value net vf 64-64 tanh, fitted by 10 "
        "Adam epochs of minibatches of B each iteration (B=5000: 10 full-batch steps; "
        "B=128: sb3's default minibatching); other settings sb3's defaults (CG 15, "
        "target KL 0.01). Seconds are `model.learn(total_timesteps=N)` only; construction "
        "(env + model) is the separate column.",
        "- *after 1st it.*: steps/s over the iterations after the first (ours: the logged "
        "iteration times; sb3: from the second rollout's start to the end of `learn`).", "",
        f"Versions: ours python {v['python']}, tensorflow {v['tensorflow']}, keras {v['keras']}, "
        f"gymnasium {v['gymnasium']}, mujoco {v['mujoco']}, numpy {v['numpy']}; peer torch "
        f"{v['torch']}, stable-baselines3 {v['stable_baselines3']}, sb3-contrib "
        f"{v['sb3_contrib']}, gymnasium {v['peer_gymnasium']}, mujoco {v['peer_mujoco']}, "
        f"numpy {v['peer_numpy']}.", "",
        "| round | impl | env steps | construct s | train s | steps/s | steps/s after 1st it. |",
        "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['round']} | {r['impl']} | {r['steps']:,} | {_fmt_s(r['construct_s'])} "
                     f"| {r['train_s']:.2f} | {r['steps_per_s']:,.0f} | "
                     f"{r['steps_per_s_after_first']:,.0f} |")
    lines += ["", "| impl | runs | median steps/s | median after 1st it. "
                  "| ours/impl (steps/s) | ours/impl (after 1st it.) |",
              "|---|---|---|---|---|---|"]
    for impl, s in summary.items():
        r = rat.get(impl, {"steps_per_s": 1.0, "steps_per_s_after_first": 1.0})
        lines.append(f"| {impl} | {s['runs']:.0f} | {s['steps_per_s']:,.0f} | "
                     f"{s['steps_per_s_after_first']:,.0f} | {r['steps_per_s']:.2f} | "
                     f"{r['steps_per_s_after_first']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    # One BLAS/OpenMP thread on both sides, whatever the shell says, before NumPy loads.
    os.environ.update(dict.fromkeys(ONE_THREAD_VARS, "1"))
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-python", default=".venv-peers/bin/python",
                        help="interpreter with torch, stable-baselines3 and sb3-contrib")
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--steps", type=int, default=50000, help="env steps per run")
    parser.add_argument("--n-steps", type=int, default=5000, help="batch (rollout) size")
    parser.add_argument("--sb3-batch-sizes", default="5000,128",
                        help="comma-separated sb3 value-function minibatch sizes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="results/bench/peers.md")
    args = parser.parse_args(argv)
    if not Path(args.peer_python).exists():
        parser.error(f"{args.peer_python} not found; `make bench-peers` builds .venv-peers")
    sb3_batches = [int(b) for b in args.sb3_batch_sizes.split(",") if b]

    from qprop_tf.runtime import cpu_model, limit_threads, versions

    limit_threads(1)
    load_before = os.getloadavg()[0]
    rows: list[Row] = []
    peer_versions: dict[str, str] = {}
    for rnd in range(1, args.rounds + 1):
        jobs: list[tuple[str, int]] = [(OURS, 0), *((sb3_impl(b), b) for b in sb3_batches)]
        for impl, b in jobs:
            if impl == OURS:
                row = run_ours(args.env, args.steps, args.n_steps)
            else:
                row, peer_versions = run_sb3(args.peer_python, args.env, args.steps,
                                             args.n_steps, b)
            row["round"] = rnd
            rows.append(row)
            print(f"round {rnd} {impl}: {row['steps']:,} steps in {row['train_s']:.2f} s = "
                  f"{row['steps_per_s']:,.0f} steps/s (after 1st it. "
                  f"{row['steps_per_s_after_first']:,.0f})"
                  + ("" if row["construct_s"] is None
                     else f"; construction {row['construct_s']:.2f} s"), flush=True)

    ours_v = versions()
    vers = {"python": platform.python_version(), **ours_v,
            **{k: val for k, val in peer_versions.items()
               if k not in ("gymnasium", "mujoco", "numpy")},
            **{f"peer_{k}": peer_versions[k] for k in ("gymnasium", "mujoco", "numpy")}}
    cli = " ".join(sys.argv[1:] if argv is None else argv)
    meta = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "cpu": cpu_model(),
            "cores": os.cpu_count(), "load_before": load_before,
            "load_after": os.getloadavg()[0], "env": args.env, "n_steps": args.n_steps,
            "steps": args.steps, "rounds": args.rounds, "versions": vers,
            "command": f"make bench-peers  (python -m reproduce.bench.peers {cli})".strip()}
    table = render_markdown(meta, rows)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
