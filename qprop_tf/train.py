"""The on-policy training loop: sample -> baseline -> GAE -> policy step -> log.

TRPO-GAE and VPG are this loop with a different policy optimiser; Q-Prop adds a control
variate from an off-policy critic through the ``extra_loss`` hook of the optimisers.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from qprop_tf.advantages import (
    discounted_returns,
    explained_variance,
    gae_advantages,
    lambda_returns,
    path_end_values,
    standardize,
)
from qprop_tf.baselines import LinearFeatureBaseline, MLPBaseline
from qprop_tf.config import PAPER_EPISODE_STEPS, QPROP_ALGOS, Config, policy_optimizer_name
from qprop_tf.envs import domain_name, make_envs, resolve_env_id
from qprop_tf.errors import StopRun
from qprop_tf.logger import RunLogger, report
from qprop_tf.optim import TRPO, VPG
from qprop_tf.policy import GaussianMLPPolicy, NumpyPolicy
from qprop_tf.runtime import check_finite, git_commit, seed_everything, versions
from qprop_tf.sampler import Batch, Sampler


def default_out_dir(cfg: Config) -> Path:
    return Path("runs") / domain_name(resolve_env_id(cfg.env)) / cfg.algo / f"seed{cfg.seed}"


def make_baseline(cfg: Config, obs_dim: int):
    if cfg.baseline == "linear":
        return LinearFeatureBaseline(obs_dim, cfg.baseline_reg)
    return MLPBaseline(obs_dim, cfg.vf_hidden, cfg.vf_lr, cfg.vf_updates, cfg.vf_minibatch,
                       seed=cfg.seed, epochs=cfg.vf_epochs,
                       normalize_targets=cfg.vf_normalize_targets, init=cfg.init)


def make_optimizer(cfg: Config, policy: GaussianMLPPolicy, extra_loss=None):
    name = policy_optimizer_name(cfg.algo)
    if name == "trpo":
        return TRPO(policy, cfg.max_kl, cfg.cg_iters, cfg.cg_damping, cfg.backtrack_ratio,
                    cfg.max_backtracks, extra_loss=extra_loss)
    if name == "vpg":
        return VPG(policy, cfg.vpg_lr, extra_loss=extra_loss)
    raise ValueError(f"no policy optimiser for algo {cfg.algo!r}")


def make_control_variate(cfg: Config, obs_dim: int, act_dim: int,
                         bounds: tuple[np.ndarray, np.ndarray] | None = None):
    """Q-Prop's critic control variate for the qprop* algos, None otherwise.

    ``bounds`` (the action space's low, high) are needed when ``cfg.critic_clip_actions``.
    """
    if cfg.algo not in QPROP_ALGOS:
        return None
    from qprop_tf.critic import Critic
    from qprop_tf.qprop import QPropControlVariate
    from qprop_tf.replay import ReplayBuffer

    critic = Critic(obs_dim, act_dim, cfg.qf_hidden, cfg.qf_lr, cfg.qf_batch_size, cfg.qf_tau,
                    cfg.gamma, cfg.min_replay, jit_compile=cfg.use_critic_xla(obs_dim),
                    seed=cfg.seed)
    replay = ReplayBuffer(obs_dim, act_dim, cfg.replay_size, seed=cfg.seed)
    return QPropControlVariate(critic, replay, cfg.eta, cfg.qf_updates_ratio,
                               truncation_is_terminal=not cfg.bootstrap_truncation,
                               fit_critic_first=cfg.fit_critic_first,
                               clip_bounds=bounds if cfg.critic_clip_actions else None)


def compute_advantages(cfg: Config, batch: Batch, baseline) -> tuple[np.ndarray, np.ndarray,
                                                                     np.ndarray]:
    """(GAE advantages, baseline targets, baseline predictions) for one batch.

    The targets are the discounted returns (``vf_target="mc"``) or the lambda-returns
    A_GAE + V (``"lambda"``, as sb3 fits its value net).
    """
    values = baseline.predict(batch.obs, batch.t)
    last_t = batch.t[np.cumsum(batch.path_lengths) - 1] + 1
    last_values = baseline.predict(batch.last_obs, last_t)
    ends = path_end_values(last_values, batch.path_terminated, batch.path_truncated,
                           cfg.bootstrap_truncation, batch.path_cut)
    adv = gae_advantages(batch.rew, values, ends, batch.path_lengths, cfg.gamma,
                         cfg.gae_lambda)
    if cfg.vf_target == "lambda":
        returns = lambda_returns(adv, values)
    else:
        returns = discounted_returns(batch.rew, ends, batch.path_lengths, cfg.gamma)
    return adv, returns, values


def prepare_signal(cfg: Config, signal: np.ndarray, inputs: dict[str, np.ndarray]
                   ) -> tuple[np.ndarray, dict[str, np.ndarray], float]:
    """Standardise the learning signal (``center_advantages``) and, with ``scale_analytic``,
    put Q-Prop's analytic term on the same scale:

        l_i -> (l_i - mean(l)) / (std(l) + 1e-8),    eta_i -> eta_i / (std(l) + 1e-8)

    so that -mean(ratio * l) - mean(eta * Q_w(s, mu)) is the Q-Prop gradient divided by
    std(l), as a whole. The authors standardised l only (the analytic term then weighs
    std(l) times more than in the estimator). Returns (signal, inputs, analytic scale).
    """
    scale = 1.0
    if cfg.center_advantages:
        if cfg.scale_analytic and "eta" in inputs:
            scale = 1.0 / (float(np.std(signal)) + 1e-8)
            inputs = {**inputs, "eta": (inputs["eta"] * scale).astype(np.float32)}
        signal = standardize(signal)
    return signal, inputs, scale


def _numeric(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            out[k] = v
    return out


def replay_kept_rows(logger: RunLogger, on_iteration: Callable | None) -> None:
    """On resume, show ``on_iteration`` the rows kept from before (with policy None), so a
    stateful hook (the sweep's early-stop rule) sees the same history as without a crash."""
    if on_iteration is not None:
        for row in logger.kept_rows:
            on_iteration(int(float(row["iteration"])), _numeric(row), None)


def start_message(out: Path, loaded: Any) -> None:
    if loaded is not None:
        print(f"resuming {out} from checkpoint {loaded.name}: iteration "
              f"{loaded.meta['iteration']}, {loaded.meta['env_steps']:,} env steps", flush=True)
    elif (out / "progress.csv").is_file():
        print(f"warning: {out} has a progress.csv but no valid checkpoint; starting over",
              flush=True)


def train(cfg: Config, out_dir: str | Path | None = None,
          on_iteration: Callable[[int, dict[str, Any], Any], None] | None = None,
          verbose: bool = True,
          done_info: Callable[[], dict[str, Any]] | None = None) -> Path:
    """Train until ``cfg.max_steps`` env steps, resuming from the run directory's last
    checkpoint if there is one; write DONE at the end and return the run directory.

    Prints one summary line per iteration (under the progress bar when there is one)
    unless ``verbose`` is False. A run directory with DONE is left alone ("run already
    finished"); one holding another configuration raises
    :class:`~qprop_tf.checkpoint.ConfigMismatch`; one in use by a live process raises
    :class:`~qprop_tf.checkpoint.RunLocked`. SIGTERM/SIGINT checkpoint at the next iteration
    boundary and raise :class:`~qprop_tf.checkpoint.RunInterrupted`.

    ``on_iteration(iteration, row, policy)`` is called after each logged row (tests use it;
    raising :class:`~qprop_tf.checkpoint.StopRun` there finishes the run early). On resume it
    is first called for every row kept from before, with policy None. ``done_info()`` adds
    fields to the DONE marker.
    """
    from qprop_tf.rundir import check_config, is_done, run_lock

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
        if cfg.algo == "ddpg":
            from qprop_tf.ddpg import train_ddpg

            return train_ddpg(cfg, out, on_iteration=on_iteration, verbose=verbose,
                              done_info=done_info)
        return _train_on_policy(cfg, out, on_iteration, verbose, done_info)


def _train_on_policy(cfg: Config, out: Path,
                     on_iteration: Callable[[int, dict[str, Any], Any], None] | None,
                     verbose: bool, done_info: Callable[[], dict[str, Any]] | None) -> Path:
    from qprop_tf.checkpoint import Checkpointer
    from qprop_tf.rundir import StopSignals, at_boundary, write_done
    from qprop_tf.state import (
        assign_variables,
        env_state,
        prefixed,
        rng_state,
        set_env_state,
        set_rng_state,
        split,
        unprefixed,
        variables_state,
    )

    seed_everything(cfg.seed)
    env_id = resolve_env_id(cfg.env)
    envs = make_envs(env_id, cfg.n_envs, cfg.seed)
    obs_dim = envs[0].observation_space.shape[0]
    act_dim = envs[0].action_space.shape[0]

    policy = GaussianMLPPolicy(obs_dim, act_dim, cfg.policy_hidden, cfg.init_std,
                               init=cfg.init)
    mirror = NumpyPolicy(policy)
    baseline = make_baseline(cfg, obs_dim)
    space = envs[0].action_space
    control_variate = make_control_variate(cfg, obs_dim, act_dim, (space.low, space.high))
    optimizer = make_optimizer(
        cfg, policy, None if control_variate is None else control_variate.extra_loss)
    sampler = Sampler(envs, mirror, cfg.batch_size, np.random.default_rng(cfg.seed),
                      fixed_length=cfg.rollout == "fixed")
    replay = None if control_variate is None else control_variate.replay
    if replay is not None:
        replay.start_journal()

    # Checkpointed state. With whole paths no episode is in progress at an iteration
    # boundary (the sampler resets its envs at the start of every batch), so an env is its
    # RNG state; fixed-length rollouts also save the physics and the episodes in progress.
    in_progress = cfg.rollout == "fixed"

    def collect_state() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        state = {**variables_state("policy", policy.variables),
                 **prefixed("vpg_adam", optimizer.get_state()),
                 **prefixed("baseline", baseline.get_state()),
                 **prefixed("sampler", sampler.get_state()),
                 "sampler_rng": rng_state(sampler.rng)}
        if control_variate is not None:
            state.update(control_variate.get_state())
        arrays, meta = split(state)
        meta["envs"] = [env_state(env, f"env{i}", arrays, physics=in_progress)
                        for i, env in enumerate(envs)]
        return arrays, meta

    def restore_state(arrays: dict[str, np.ndarray], meta: dict[str, Any],
                      chunks: Any) -> None:
        state = {**arrays, **meta}
        assign_variables("policy", policy.variables, state)
        optimizer.set_state(unprefixed("vpg_adam", state))
        baseline.set_state(unprefixed("baseline", state))
        set_rng_state(sampler.rng, state["sampler_rng"])
        sampler.set_state(unprefixed("sampler", state))
        for i, env in enumerate(envs):
            if not set_env_state(env, f"env{i}", meta["envs"][i], arrays):
                raise RuntimeError(f"env {i}: its episode in progress cannot be restored")
        if control_variate is not None:
            control_variate.set_state(state, chunks)
        mirror.sync()

    ckpt = Checkpointer(out, cfg.checkpoint_minutes)
    loaded = ckpt.load()
    start_message(out, loaded)
    env_steps = 0
    real_episodes = 0
    max_return = -np.inf
    elapsed0 = 0.0
    iteration = 0
    if loaded is not None:
        restore_state(loaded.arrays, loaded.meta, loaded.chunks)
        iteration = int(loaded.meta["iteration"])
        env_steps = int(loaded.meta["env_steps"])
        real_episodes = int(loaded.meta["real_episodes"])
        max_return = float(loaded.meta["max_return"])
        elapsed0 = float(loaded.meta["elapsed"])

    logger = RunLogger(out, resume_rows=None if loaded is None else int(loaded.meta["rows"]))
    logger.write_config({"config": cfg.to_dict(), "env_id": env_id, "obs_dim": obs_dim,
                         "act_dim": act_dim, "versions": versions(), "git_commit": git_commit()})

    def save_checkpoint() -> None:
        arrays, meta = collect_state()
        logger.sync()
        meta.update(env_steps=env_steps, real_episodes=real_episodes, max_return=max_return,
                    elapsed=time.perf_counter() - t_start, rows=logger.rows)
        ckpt.save(iteration, arrays, meta, replay)

    bar = None
    if cfg.progress_bar:
        from tqdm import tqdm
        bar = tqdm(total=cfg.max_steps, initial=env_steps, unit="step", unit_scale=True,
                   dynamic_ncols=True, desc=f"{cfg.algo} {domain_name(env_id)} s{cfg.seed}")
    t_start = time.perf_counter() - elapsed0
    stopped = "budget"
    try:
        with StopSignals() as signals:
            replay_kept_rows(logger, on_iteration)
            while env_steps < cfg.max_steps:
                t0 = time.perf_counter()
                batch = sampler.sample()
                t1 = time.perf_counter()

                if cfg.fit_baseline_first:
                    _, returns, _ = compute_advantages(cfg, batch, baseline)
                    baseline.fit(batch.obs, batch.t, returns)
                adv, returns, values = compute_advantages(cfg, batch, baseline)
                ev = explained_variance(values, returns)
                if not cfg.fit_baseline_first:
                    baseline.fit(batch.obs, batch.t, returns)
                signal, inputs, diag = adv, {}, {}
                if control_variate is not None:
                    signal, inputs, diag = control_variate.process(batch, adv, policy)
                    check_finite(f"iteration {iteration} critic fit",
                                 {"critic_loss": diag["critic_loss"]} if diag["critic_updates"]
                                 else {})
                signal, inputs, analytic_scale = prepare_signal(cfg, signal, inputs)
                if control_variate is not None:
                    diag["analytic_scale"] = analytic_scale
                stats = optimizer.update({
                    "obs": tf.constant(batch.obs), "act": tf.constant(batch.act),
                    "signal": tf.constant(signal, tf.float32), **inputs})
                check_finite(f"iteration {iteration} update", stats,
                             [v.numpy() for v in policy.trainable_variables])
                mirror.sync()
                t2 = time.perf_counter()

                env_steps += batch.n_steps
                real_episodes += int(batch.episode_returns.size)
                # fixed-length rollouts: the episodes that ended in this batch (maybe none)
                rets = batch.episode_returns
                avg_ret = float(np.mean(rets)) if rets.size else float("nan")
                if rets.size:
                    max_return = max(max_return, avg_ret)
                elapsed = time.perf_counter() - t_start
                row = {
                    "iteration": iteration,
                    "env_steps": env_steps,
                    "paper_episodes": env_steps / PAPER_EPISODE_STEPS,
                    "real_episodes": real_episodes,
                    "batch_steps": batch.n_steps,
                    "batch_episodes": int(rets.size),
                    "average_return": avg_ret,
                    "std_return": float(np.std(rets)) if rets.size else float("nan"),
                    "min_return": float(np.min(rets)) if rets.size else float("nan"),
                    "max_return": float(np.max(rets)) if rets.size else float("nan"),
                    "max_return_so_far": max_return,
                    "average_length": (float(np.mean(batch.episode_lengths))
                                       if rets.size else float("nan")),
                    "terminated_fraction": (float(np.sum(batch.path_terminated) / rets.size)
                                            if rets.size else float("nan")),
                    "mean_kl": stats["mean_kl"],
                    "entropy": stats["entropy"],
                    "policy_std": float(np.mean(np.exp(mirror.log_std))),
                    "loss_before": stats["loss_before"],
                    "loss_after": stats["loss_after"],
                    "grad_norm": stats["grad_norm"],
                    "line_search_accepted": int(stats["accepted"]),
                    "backtracks": int(stats["backtracks"]),
                    "explained_variance": ev,
                    "advantage_std": float(np.std(adv)),
                    **diag,
                    "time": elapsed,
                    "iteration_time": t2 - t0,
                    "sample_time": t1 - t0,
                    "update_time": t2 - t1,
                    "steps_per_second": batch.n_steps / (t2 - t0),
                    "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                }
                logger.log(row)
                line = (f"it {iteration:4d} | steps {env_steps:>9,d} | ret {avg_ret:9.2f} "
                        f"| max {max_return:9.2f} | kl {stats['mean_kl']:.4f} "
                        f"| ent {stats['entropy']:6.3f} | {row['steps_per_second']:6.0f} st/s")
                report(bar, line, batch.n_steps, verbose)
                iteration += 1
                at_boundary(ckpt, signals, save_checkpoint, f"iteration {iteration - 1}")
                if on_iteration is not None:
                    on_iteration(iteration - 1, row, policy)
    except StopRun as stop:
        stopped = "early"
        print(f"stopped early: {stop}", flush=True)
    finally:
        if bar is not None:
            bar.close()
        logger.close()
        for env in envs:
            env.close()
    write_done(out, {"stopped": stopped, "env_steps": env_steps, "iterations": iteration,
                     "checkpoints": ckpt.saves,
                     "checkpoint_seconds": round(ckpt.save_seconds, 3),
                     **(done_info() if done_info is not None else {})})
    ckpt.remove()
    return out
