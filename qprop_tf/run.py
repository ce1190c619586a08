"""The run shell, one for every algorithm: lock, resume, log, checkpoint, stop, DONE.

:func:`train` owns a run's life and nothing of its learning. The algorithm is a runner
(:class:`~qprop_tf.onpolicy.OnPolicyRunner` for trpo, vpg and Q-Prop,
:class:`~qprop_tf.ddpg.DDPGRunner` for ddpg) with

    iterate(iteration, steps_left) -> progress.Iteration    one iteration (DDPG: epoch)
    label, summary(row) -> str                              its line under the progress bar
    get_state() -> dict, set_state(state, replay_chunks)    everything it needs to resume
    policy, action_bounds, env_bounds, replay, env_id, obs_dim, act_dim, close()

The shell keeps the counters (iterations, env steps, episodes, the best return so far,
elapsed time), builds each row of progress.csv (:func:`qprop_tf.progress.make_row`), and
checkpoints what the runner hands it (:mod:`qprop_tf.checkpoint`) inside the run
directory's life (:mod:`qprop_tf.rundir`). A finished run keeps its final policy in
``policy.npz`` (:mod:`qprop_tf.saved_policy`), written before DONE; its checkpoints go.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from qprop_tf.checkpoint import Checkpointer, Loaded
from qprop_tf.config import Config
from qprop_tf.ddpg import DDPGRunner
from qprop_tf.divergence import progress_divergence
from qprop_tf.envs import domain_name, resolve_env_id
from qprop_tf.errors import StopRun
from qprop_tf.logger import RunLogger, report
from qprop_tf.onpolicy import OnPolicyRunner
from qprop_tf.progress import COLUMNS as C
from qprop_tf.progress import make_row
from qprop_tf.rundir import (
    StopSignals,
    at_boundary,
    check_config,
    is_done,
    machines_so_far,
    run_lock,
    write_done,
)
from qprop_tf.runtime import git_commit, machine, seed_everything, versions
from qprop_tf.saved_policy import save_policy
from qprop_tf.state import split

OnIteration = Callable[[int, dict[str, Any], Any], None]
"""on_iteration(iteration, row, policy): called after each logged row."""


def default_out_dir(cfg: Config) -> Path:
    return Path("runs") / domain_name(resolve_env_id(cfg.env)) / cfg.algo / f"seed{cfg.seed}"


def make_runner(cfg: Config) -> OnPolicyRunner | DDPGRunner:
    """The algorithm of ``cfg.algo``, built from the global seed (seed first)."""
    return DDPGRunner(cfg) if cfg.algo == "ddpg" else OnPolicyRunner(cfg)


def train(cfg: Config, out_dir: str | Path | None = None,
          on_iteration: OnIteration | None = None, verbose: bool = True,
          done_info: Callable[[], dict[str, Any]] | None = None) -> Path:
    """Train until ``cfg.max_steps`` env steps, resuming from the run directory's last
    checkpoint if there is one; write DONE at the end and return the run directory.

    Prints one summary line per iteration (under the progress bar when there is one)
    unless ``verbose`` is False. A run directory with DONE is left alone ("run already
    finished"); one holding another configuration raises
    :class:`~qprop_tf.errors.ConfigMismatch`; one in use by a live process raises
    :class:`~qprop_tf.errors.RunLocked`. SIGTERM/SIGINT checkpoint at the next iteration
    boundary and raise :class:`~qprop_tf.errors.RunInterrupted`.

    ``on_iteration(iteration, row, policy)`` is called after each logged row (tests use it;
    raising :class:`~qprop_tf.errors.StopRun` there finishes the run early); ``policy`` is
    the Gaussian policy, or DDPG's actor. On resume it is first called for every row kept
    from before, with policy None. ``done_info()`` adds fields to the DONE marker.
    """
    cfg.validate()
    out = Path(out_dir or cfg.out or default_out_dir(cfg))
    if is_done(out):
        print(f"run already finished: {out} (nothing to do; delete {out / 'DONE'} or use "
              f"another --out to run it again)", flush=True)
        return out
    check_config(out, cfg)
    with run_lock(out):
        if is_done(out):  # finished by another process while we waited for the lock
            print(f"run already finished: {out}", flush=True)
            return out
        return _run(cfg, out, on_iteration, verbose, done_info)


def _run(cfg: Config, out: Path, on_iteration: OnIteration | None, verbose: bool,
         done_info: Callable[[], dict[str, Any]] | None) -> Path:
    seed_everything(cfg.seed)
    runner = make_runner(cfg)
    if runner.replay is not None:
        runner.replay.start_journal()  # its rows go into the checkpoints a chunk at a time
    ckpt = Checkpointer(out, cfg.checkpoint_minutes)
    loaded = ckpt.load()
    start_message(out, loaded)
    iteration = env_steps = real_episodes = 0
    max_return, elapsed0, cpu0 = -np.inf, 0.0, 0.0
    if loaded is not None:
        runner.set_state({**loaded.arrays, **loaded.meta}, loaded.chunks)
        iteration = int(loaded.meta["iteration"])
        env_steps = int(loaded.meta["env_steps"])
        real_episodes = int(loaded.meta["real_episodes"])
        max_return = float(loaded.meta["max_return"])
        elapsed0 = float(loaded.meta["elapsed"])
        cpu0 = float(loaded.meta.get("cpu_elapsed", float("nan")))  # older checkpoints: unknown
    here = machine()
    pinned = os.environ.get("OPENBLAS_CORETYPE")
    if pinned and here["openblas"].lower() not in ("unknown", pinned.lower()):
        print(f"qprop-tf: warning: OpenBLAS runs {here['openblas']}'s kernels, not the pinned "
              f"{pinned}'s (NumPy loaded before qprop_tf): the round-off is another machine's; "
              f"set OPENBLAS_CORETYPE={pinned} before starting Python", file=sys.stderr)
    machines = machines_so_far(out, here)
    logger = RunLogger(out, resume_rows=None if loaded is None else int(loaded.meta["rows"]))
    logger.write_config({"machines": machines, "config": cfg.to_dict(), "env_id": runner.env_id,
                         "obs_dim": runner.obs_dim, "act_dim": runner.act_dim,
                         "versions": versions(), "git_commit": git_commit()})

    def save_checkpoint() -> None:
        arrays, meta = split(runner.get_state())
        logger.sync()
        meta.update(env_steps=env_steps, real_episodes=real_episodes, max_return=max_return,
                    elapsed=time.perf_counter() - t_start,
                    cpu_elapsed=time.process_time() - cpu_start, rows=logger.rows)
        ckpt.save(iteration, arrays, meta, runner.replay)

    bar = None
    if cfg.progress_bar:
        from tqdm import tqdm
        bar = tqdm(total=cfg.max_steps, initial=env_steps, unit="step", unit_scale=True,
                   dynamic_ncols=True, desc=f"{cfg.algo} {domain_name(runner.env_id)} s{cfg.seed}")
    t_start = time.perf_counter() - elapsed0
    cpu_start = time.process_time() - cpu0
    stopped = "budget"
    try:
        with StopSignals() as signals:
            replay_kept_rows(logger, on_iteration)
            while env_steps < cfg.max_steps:
                t0 = time.perf_counter()
                it = runner.iterate(iteration, cfg.max_steps - env_steps)
                t2 = time.perf_counter()
                env_steps += it.steps
                real_episodes += len(it.returns)
                max_return = max(max_return, it.score)  # a NaN score (no episode) keeps it
                row = make_row(it, iteration, env_steps, real_episodes, max_return,
                               time.perf_counter() - t_start, t2 - t0,
                               time.process_time() - cpu_start)
                logger.log(row)
                report(bar, summary_line(runner, row), it.steps, verbose)
                iteration += 1
                at_boundary(ckpt, signals, save_checkpoint, f"iteration {iteration - 1}")
                if on_iteration is not None:
                    on_iteration(iteration - 1, row, runner.policy)
    except StopRun as stop:
        stopped = "early"
        print(f"stopped early: {stop}", flush=True)
    finally:
        if bar is not None:
            bar.close()
        logger.close()
        runner.close()
    save_policy(runner.policy, out, runner.env_id, *runner.action_bounds, runner.env_bounds)
    write_done(out, {"stopped": stopped, "env_steps": env_steps, "iterations": iteration,
                     "checkpoints": ckpt.saves,
                     "checkpoint_seconds": round(ckpt.save_seconds, 3),
                     **progress_divergence(out / "progress.csv"),
                     **(done_info() if done_info is not None else {})})
    ckpt.remove()
    return out


def summary_line(runner: OnPolicyRunner | DDPGRunner, row: dict[str, Any]) -> str:
    """``it    3 | steps     1,234 | <the runner's summary> |   5000 st/s``."""
    return (f"{runner.label} {row[C.iteration]:4d} | steps {row[C.env_steps]:>9,d} "
            f"| {runner.summary(row)} | {row[C.steps_per_second]:6.0f} st/s")


def _numeric(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            out[k] = v
    return out


def replay_kept_rows(logger: RunLogger, on_iteration: OnIteration | None) -> None:
    """On resume, show ``on_iteration`` the rows kept from before (with policy None), so a
    stateful hook (the sweep's early-stop rule) sees the same history as without a crash."""
    if on_iteration is not None:
        for row in logger.kept_rows:
            on_iteration(int(float(row[C.iteration])), _numeric(row), None)


def start_message(out: Path, loaded: Loaded | None) -> None:
    if loaded is not None:
        print(f"resuming {out} from checkpoint {loaded.name}: iteration "
              f"{loaded.meta['iteration']}, {loaded.meta['env_steps']:,} env steps", flush=True)
    elif (out / "progress.csv").is_file():
        print(f"warning: {out} has a progress.csv but no valid checkpoint; starting over",
              flush=True)
