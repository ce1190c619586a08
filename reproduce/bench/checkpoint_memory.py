"""Benchmark: the memory a checkpoint and a resume take on top of a Humanoid-size run.

``python -m reproduce.bench.checkpoint_memory [--rows-since 450000] [--rounds 2]`` builds a
full Humanoid-size replay (1M rows of 348 + 17 floats), writes ``--rows-since`` more rows
since the last checkpoint (a Humanoid TR-c-Q-Prop run writes about 450k in the first
checkpoint's 5 minutes at 1,500 env steps per CPU-second), then saves a checkpoint and
restores the ring from it into a fresh buffer, twice per round, each in its own process:

  bounded    chunk files of at most ``qprop_tf.checkpoint.CHUNK_BYTES`` (the default);
  unbounded  one chunk file of all the rows since the last checkpoint (the code before).

For each it reads the process's peak RSS over the save alone and over the restore alone
(Linux's ``VmHWM``, reset through ``/proc/self/clear_refs`` just before), and reports it
above the RSS just before: the extra memory the checkpoint costs a run. Memory does not
depend on the load, so unlike speed these figures compare across runs. It prints one JSON
line per process and writes ``results/bench/checkpoint_memory_Humanoid.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from qprop_tf.runtime import cpu_model, git_commit, limit_threads

REPO_ROOT = Path(__file__).resolve().parents[2]
OBS_DIM, ACT_DIM, CAPACITY = 348, 17, 1_000_000  # Humanoid-v5, the authors' replay size
VARIANTS = ("bounded", "unbounded")


def _status_mb(key: str) -> float:
    """``VmRSS`` or ``VmHWM`` of this process, in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"{key} is not in /proc/self/status (Linux only)")


def _reset_peak() -> None:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _fill(replay: Any, rng: np.random.Generator, rows: int) -> None:
    """Append about ``rows`` rows of random 1000-step paths, 5 paths a call."""
    from reproduce.bench.critic import random_batch

    per_call = 5 * 1001
    for _ in range(-(-rows // per_call)):
        replay.add_batch(random_batch(rng, OBS_DIM, ACT_DIM, 5, 1000))


def measure(variant: str, rows_since: int) -> dict[str, Any]:
    """One process's save and restore (see the module docstring)."""
    limit_threads(1)
    from qprop_tf.checkpoint import CHUNK_BYTES, Checkpointer
    from qprop_tf.replay import ReplayBuffer

    rng = np.random.default_rng(0)
    replay = ReplayBuffer(OBS_DIM, ACT_DIM, CAPACITY)
    _fill(replay, rng, CAPACITY)
    replay.start_journal()
    written = replay.rows_written
    _fill(replay, rng, rows_since)
    journal_rows = replay.rows_written - written
    chunk_bytes = CHUNK_BYTES if variant == "bounded" else None
    with tempfile.TemporaryDirectory(prefix="ckpt_mem_") as tmp:
        ckpt = Checkpointer(tmp, 5.0, log=lambda *_: None, chunk_bytes=chunk_bytes)
        rss_before = _status_mb("VmRSS")
        _reset_peak()
        t0 = time.perf_counter()
        ckpt.save(1, {"x": np.zeros(3)}, {}, replay=replay)
        save_s = time.perf_counter() - t0
        save_peak = _status_mb("VmHWM")
        state = replay.get_state()
        loaded = Checkpointer(tmp, 5.0, log=lambda *_: None).load()
        n_chunks = len(loaded.chunk_files)
        fresh = ReplayBuffer(OBS_DIM, ACT_DIM, CAPACITY)
        rss_before_restore = _status_mb("VmRSS")
        _reset_peak()
        t0 = time.perf_counter()
        fresh.set_state(state, loaded.chunks)
        restore_s = time.perf_counter() - t0
        restore_peak = _status_mb("VmHWM")
    return {"variant": variant, "chunk_bytes": chunk_bytes, "rows_since": journal_rows,
            "chunk_files": n_chunks, "rss_before_save_mb": rss_before,
            "save_peak_mb": save_peak, "save_extra_mb": save_peak - rss_before,
            "save_s": save_s, "rss_before_restore_mb": rss_before_restore,
            "restore_peak_mb": restore_peak,
            "restore_extra_mb": restore_peak - rss_before_restore, "restore_s": restore_s}


def _child(variant: str, rows_since: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "reproduce.bench.checkpoint_memory", "--child", variant,
           "--rows-since", str(rows_since)]
    out = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(rows: list[dict[str, Any]], command: str) -> str:
    """The Markdown report: one line per process, and the ratio of the extra memory."""
    commit = git_commit()
    commit = commit[:7] + ("-dirty" if commit.endswith("-dirty") else "")
    lines = ["# Memory of a checkpoint and a resume: Humanoid-size replay", "",
             f"Command: `{command}`; commit {commit}; CPU: {cpu_model()}. A full "
             f"replay of {CAPACITY:,} rows ({OBS_DIM} + {ACT_DIM} floats), plus "
             f"{rows[0]['rows_since']:,} rows since the last checkpoint; each line is its "
             "own process. Extra: the peak RSS (VmHWM, reset just before) over the save "
             "alone, or the restore alone, minus the RSS just before it.", "",
             "| variant | chunk files | RSS before save (MB) | save: extra MB | save s | "
             "restore: extra MB | restore s |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['variant']} | {r['chunk_files']} | {r['rss_before_save_mb']:,.0f} | "
              f"{r['save_extra_mb']:,.0f} | {r['save_s']:.1f} | {r['restore_extra_mb']:,.0f} | "
              f"{r['restore_s']:.1f} |" for r in rows]
    med = {v: float(np.median([r["save_extra_mb"] for r in rows if r["variant"] == v]))
           for v in VARIANTS}
    res = {v: float(np.median([r["restore_extra_mb"] for r in rows if r["variant"] == v]))
           for v in VARIANTS}
    lines += ["", f"Median extra memory of a save: bounded {med['bounded']:,.0f} MB, unbounded "
              f"{med['unbounded']:,.0f} MB; of a restore: bounded {res['bounded']:,.0f} MB, "
              f"unbounded {res['unbounded']:,.0f} MB."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows-since", type=int, default=450_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "bench")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rows_since < 1 or args.rounds < 1:
        parser.error("--rows-since and --rounds must be >= 1")
    if args.child:
        print(json.dumps(measure(args.child, args.rows_since)), flush=True)
        return
    rows = []
    for _ in range(args.rounds):
        for variant in VARIANTS:
            rows.append(_child(variant, args.rows_since))
            print(json.dumps(rows[-1]), flush=True)
    command = "python -m reproduce.bench.checkpoint_memory " + " ".join(argv or sys.argv[1:])
    text = report(rows, command.strip())
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "checkpoint_memory_Humanoid.md").write_text(text)


if __name__ == "__main__":
    main()
