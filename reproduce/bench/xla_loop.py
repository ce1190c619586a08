"""Benchmark: the whole training loop with the critic XLA-compiled against not, and peak RSS.

``python -m reproduce.bench.xla_loop [--env Humanoid] [--algo qprop-c] [--steps 60000]
[--rounds 2]`` trains the same (env, algo, seed 0) run with ``critic_xla=true`` and
``critic_xla=false``: each round starts both processes at once, so that both see the same load
on a shared machine (this one is noisy: only ratios within a round mean anything), each with
the table's hyperparameters
(``reproduce/configs/hyperparams.toml``). For every run it reads the run's own
``progress.csv``: the loop's env steps per second over the iterations after the critic has
started (the first iterations trace graphs and fill the replay up to ``min_replay``), and the
process's peak RSS (``os.wait4``'s ``ru_maxrss``). It prints one JSON line per run and a
summary with the median speed-up, and writes ``results/bench/xla_loop_<env>.md``.

A short run's replay holds only ``steps`` transitions; the peak RSS of a full 1M-transition
replay at Humanoid size is :func:`reproduce.bench.critic.bench_replay_memory`'s job.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from qprop_tf.runtime import cpu_model
from reproduce.spec import REPO_ROOT, merged_overrides


def start(env: str, algo: str, steps: int, xla: bool, out: Path) -> tuple[subprocess.Popen,
                                                                        list[str]]:
    """Start one training process."""
    sets = {**merged_overrides(env, algo), "critic_xla": "true" if xla else "false"}
    cmd = [sys.executable, "-m", "qprop_tf", "train", "--algo", algo, "--env", env,
           "--seed", "0", "--max-steps", str(steps), "--out", str(out), "--no-progress"]
    for key, value in sets.items():
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = str(value).lower()
        cmd += ["--set", f"{key}={value}"]
    log = open(out.with_suffix(".log"), "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log), cmd


def finish(proc: subprocess.Popen, cmd: list[str], env: str, algo: str, xla: bool,
           out: Path) -> dict[str, Any]:
    """Wait for one training process; its loop rate after the critic starts, its peak RSS."""
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        err = out.with_suffix(".log").read_text()[-2000:]
        raise RuntimeError(f"training failed ({' '.join(cmd)}):\n{err}")
    df = pd.read_csv(out / "progress.csv")
    started = df[df["critic_updates"].fillna(0) > 0]
    later = started.iloc[1:] if len(started) > 2 else df.iloc[2:]
    if later.empty:
        raise RuntimeError(f"{out}: too short, no iteration after the critic started")
    steps_per_s = float(later["batch_steps"].sum() / later["iteration_time"].sum())
    # the same iterations per CPU-second of the process (cumulative cpu_time): what a run
    # costs the campaign, whatever else shares the cores
    before = df.loc[later.index[0] - 1, "cpu_time"] if later.index[0] > 0 else 0.0
    cpu_rate = float(later["batch_steps"].sum() / (later["cpu_time"].iloc[-1] - before))
    return {"env": env, "algo": algo, "critic_xla": xla, "steps": int(df["env_steps"].iloc[-1]),
            "iterations_timed": len(later), "loop_steps_per_s": steps_per_s,
            "steps_per_cpu_s": cpu_rate,
            "critic_time_share": float(later["critic_time"].sum()
                                       / later["iteration_time"].sum()),
            "peak_rss_mb": usage.ru_maxrss / 1024.0,
            "progress_max_rss_mb": float(df["max_rss_mb"].max())}


def _commit() -> str:
    out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "?"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Humanoid")
    parser.add_argument("--algo", default="qprop-c")
    parser.add_argument("--steps", type=int, default=60000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "bench")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.steps < 1:
        parser.error("--rounds and --steps must be >= 1")
    rows = []
    with tempfile.TemporaryDirectory(prefix="xla_loop_") as tmp:
        for r in range(args.rounds):
            outs = {xla: Path(tmp) / f"r{r}_{'xla' if xla else 'noxla'}" for xla in (True, False)}
            procs = {xla: start(args.env, args.algo, args.steps, xla, out)
                     for xla, out in outs.items()}
            for xla, (proc, cmd) in procs.items():
                row = finish(proc, cmd, args.env, args.algo, xla, outs[xla])
                print(json.dumps(row), flush=True)
                rows.append(row)
    on = [x["loop_steps_per_s"] for x in rows if x["critic_xla"]]
    off = [x["loop_steps_per_s"] for x in rows if not x["critic_xla"]]
    ratios = [a / b for a, b in zip(on, off, strict=True)]
    cpu_ratios = [a["steps_per_cpu_s"] / b["steps_per_cpu_s"] for a, b in zip(
        [x for x in rows if x["critic_xla"]], [x for x in rows if not x["critic_xla"]],
        strict=True)]
    summary = {"speedup_median": statistics.median(ratios), "speedups": ratios,
               "cpu_speedup_median": statistics.median(cpu_ratios), "cpu_speedups": cpu_ratios,
               "rss_on_mb": max(x["peak_rss_mb"] for x in rows if x["critic_xla"]),
               "rss_off_mb": max(x["peak_rss_mb"] for x in rows if not x["critic_xla"])}
    print(json.dumps(summary), flush=True)
    command = "python -m reproduce.bench.xla_loop " + " ".join(argv or sys.argv[1:])
    lines = [f"# Whole loop, critic XLA on vs off: {args.env} {args.algo}", "",
             f"Command: `{command.strip()}`, {args.steps} env steps a run, seed 0, "
             f"{args.rounds} rounds, each running both at once; one TF thread each; "
             f"commit {_commit()}; CPU: {cpu_model()}.", "",
             "Loop steps/s: env steps per wall second of the iterations after the critic "
             "started; per CPU-second: the same iterations per second of the process's own "
             "CPU time (the campaign's cost, whatever shares the cores).", "",
             "| round | critic_xla | loop steps/s | steps per CPU-second | critic share of time "
             "| peak RSS (MB) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {i // 2} | {x['critic_xla']} | {x['loop_steps_per_s']:,.0f} | "
              f"{x['steps_per_cpu_s']:,.0f} | "
              f"{x['critic_time_share']:.0%} | {x['peak_rss_mb']:,.0f} |"
              for i, x in enumerate(rows)]
    lines += ["", f"Speed-up with XLA, per round: {', '.join(f'{s:.2f}' for s in ratios)}; "
              f"median {summary['speedup_median']:.2f}. Per CPU-second: "
              f"{', '.join(f'{s:.2f}' for s in cpu_ratios)}; median "
              f"{summary['cpu_speedup_median']:.2f}."]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"xla_loop_{args.env}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
