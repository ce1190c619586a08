"""TRPO-GAE, VPG and Q-Prop: one iteration is sample -> baseline -> GAE -> policy step.

TRPO and VPG are the same iteration with another policy optimiser; Q-Prop adds a control
variate from an off-policy critic through the optimisers' ``extra_loss`` hook. The run
shell (:func:`qprop_tf.run.train`) drives :class:`OnPolicyRunner` through
:meth:`~OnPolicyRunner.iterate` and checkpoints what :meth:`~OnPolicyRunner.get_state`
hands it; ``reproduce.diagnose`` calls the same ``iterate``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
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
from qprop_tf.config import QPROP_ALGOS, Config, policy_optimizer_name
from qprop_tf.critic import Critic, CriticOptions
from qprop_tf.envs import make_envs, resolve_env_id
from qprop_tf.optim import TRPO, VPG
from qprop_tf.policy import GaussianMLPPolicy, NumpyPolicy
from qprop_tf.progress import COLUMNS as C
from qprop_tf.progress import Iteration, PolicyStep
from qprop_tf.qprop import QPropControlVariate
from qprop_tf.replay import ReplayBuffer
from qprop_tf.runtime import check_finite
from qprop_tf.sampler import Batch, Sampler
from qprop_tf.state import (
    assign_variables,
    env_state,
    prefixed,
    rng_state,
    set_env_state,
    set_rng_state,
    unprefixed,
    variables_state,
)


def make_baseline(cfg: Config, obs_dim: int) -> LinearFeatureBaseline | MLPBaseline:
    if cfg.baseline == "linear":
        return LinearFeatureBaseline(obs_dim, cfg.baseline_reg)
    return MLPBaseline(obs_dim, cfg.vf_hidden, cfg.vf_lr, cfg.vf_updates, cfg.vf_minibatch,
                       seed=cfg.seed, epochs=cfg.vf_epochs,
                       normalize_targets=cfg.vf_normalize_targets, init=cfg.init)


def make_optimizer(cfg: Config, policy: GaussianMLPPolicy, extra_loss=None) -> TRPO | VPG:
    name = policy_optimizer_name(cfg.algo)
    if name == "trpo":
        return TRPO(policy, cfg.max_kl, cfg.cg_iters, cfg.cg_damping, cfg.backtrack_ratio,
                    cfg.max_backtracks, extra_loss=extra_loss,
                    kl_scale=1.0 / policy.act_dim if cfg.kl_per_action_dim else 1.0)
    if name == "vpg":
        return VPG(policy, cfg.vpg_lr, extra_loss=extra_loss)
    raise ValueError(f"no policy optimiser for algo {cfg.algo!r}")


def make_target_policy(cfg: Config, policy: GaussianMLPPolicy) -> GaussianMLPPolicy:
    """A copy of ``policy`` (same architecture and weights): the lagged bootstrap policy of
    ``critic_target_policy=lagged``."""
    hidden = tuple(layer.units for layer in policy.hidden_layers)
    target = GaussianMLPPolicy(policy.obs_dim, policy.act_dim, hidden, cfg.init_std,
                               init=cfg.init, name="target_policy")
    for t, s in zip(target.variables, policy.variables, strict=True):
        t.assign(s)
    return target


def make_control_variate(cfg: Config, obs_dim: int, act_dim: int,
                         bounds: tuple[np.ndarray, np.ndarray] | None = None,
                         policy: GaussianMLPPolicy | None = None
                         ) -> QPropControlVariate | None:
    """Q-Prop's critic control variate for the qprop* algos (eta rule ``cfg.eta``), None
    otherwise. ``bounds`` (the action space's low, high) are needed when
    ``cfg.critic_clip_actions`` or ``cfg.critic_target_clip``, and give the critic's
    out-of-bounds statistics; ``policy`` (its initial weights) when
    ``cfg.critic_target_policy`` is ``lagged``."""
    if cfg.algo not in QPROP_ALGOS:
        return None
    target_policy = None
    if cfg.critic_target_policy == "lagged":
        if policy is None:
            raise ValueError("critic_target_policy=lagged needs the policy to copy")
        target_policy = make_target_policy(cfg, policy)
    options = CriticOptions(bounds=bounds, target_clip=cfg.critic_target_clip,
                            loss=cfg.critic_loss, huber_delta=cfg.critic_huber_delta,
                            grad_clip=cfg.critic_grad_clip)
    critic = Critic(obs_dim, act_dim, cfg.qf_hidden, cfg.qf_lr, cfg.qf_batch_size, cfg.qf_tau,
                    cfg.gamma, cfg.min_replay, jit_compile=cfg.use_critic_xla(obs_dim),
                    seed=cfg.seed, options=options, target_policy=target_policy)
    replay = ReplayBuffer(obs_dim, act_dim, cfg.replay_size, seed=cfg.seed)
    return QPropControlVariate(critic, replay, cfg.eta, cfg.qf_updates_ratio,
                               truncation_is_terminal=not cfg.bootstrap_truncation,
                               fit_critic_first=cfg.fit_critic_first,
                               clip_bounds=bounds if cfg.critic_clip_actions else None,
                               reward_scale=cfg.reward_scale)


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


Inspect = Callable[[Batch, np.ndarray, float], None]
"""inspect(batch, advantages, explained variance): called by :meth:`OnPolicyRunner.iterate`
after the advantages, before the critic and the policy see the batch."""


class OnPolicyRunner:
    """The envs, policy, baseline, optimiser, sampler and (Q-Prop) critic of one run.

    ``envs`` replaces the ``n_envs`` seeded envs the config asks for (``reproduce.diagnose``
    passes recording wrappers). Build it after :func:`qprop_tf.runtime.seed_everything`: the
    policy's and the MLP baseline's initial weights come from the global seed.
    """

    def __init__(self, cfg: Config, envs: list[gym.Env] | None = None) -> None:
        self.cfg = cfg
        self.env_id = resolve_env_id(cfg.env)
        self.envs = (make_envs(self.env_id, cfg.n_envs, cfg.seed, cfg.action_scale)
                     if envs is None else envs)
        space = self.envs[0].action_space
        self.obs_dim = self.envs[0].observation_space.shape[0]
        self.act_dim = space.shape[0]
        self.action_bounds = (space.low, space.high)  # the policy's (action_scale)
        raw = self.envs[0].unwrapped.action_space
        self.env_bounds = (raw.low, raw.high)  # the env's own
        self.policy = GaussianMLPPolicy(self.obs_dim, self.act_dim, cfg.policy_hidden,
                                        cfg.init_std, init=cfg.init)
        self.mirror = NumpyPolicy(self.policy)
        self.baseline = make_baseline(cfg, self.obs_dim)
        self.control_variate = make_control_variate(cfg, self.obs_dim, self.act_dim,
                                                    (space.low, space.high), self.policy)
        cv = self.control_variate
        self.optimizer = make_optimizer(cfg, self.policy, None if cv is None else cv.extra_loss)
        self.sampler = Sampler(self.envs, self.mirror, cfg.batch_size,
                               np.random.default_rng(cfg.seed),
                               fixed_length=cfg.rollout == "fixed")
        self.replay = None if cv is None else cv.replay

    # ------------------------------------------------------------------ one iteration
    def advantages(self, batch: Batch) -> tuple[np.ndarray, float]:
        """GAE advantages with the baseline, which is then fitted on the batch (before the
        advantages with ``fit_baseline_first``, as the paper's Algorithm 1; after, as the
        authors' code); and the baseline's explained variance."""
        cfg, baseline = self.cfg, self.baseline
        if cfg.fit_baseline_first:
            _, returns, _ = compute_advantages(cfg, batch, baseline)
            baseline.fit(batch.obs, batch.t, returns)
        adv, returns, values = compute_advantages(cfg, batch, baseline)
        ev = explained_variance(values, returns)
        if not cfg.fit_baseline_first:
            baseline.fit(batch.obs, batch.t, returns)
        return adv, ev

    def iterate(self, iteration: int, steps_left: int = 0,
                inspect: Inspect | None = None) -> Iteration:
        """Sample a batch (whole paths, or ``batch_size`` steps), advantages, Q-Prop's
        control variate, one policy update. ``steps_left`` is not used: a batch is never
        cut to the budget."""
        cfg, policy, cv = self.cfg, self.policy, self.control_variate
        t0 = time.perf_counter()
        batch = self.sampler.sample()
        t1 = time.perf_counter()
        adv, ev = self.advantages(batch)
        if inspect is not None:
            inspect(batch, adv, ev)
        signal, inputs, diag = adv, {}, None
        if cv is not None:
            signal, inputs, diag = cv.process(batch, adv, policy)
            check_finite(f"iteration {iteration} critic fit",
                         {C.critic_loss: diag.critic_loss} if diag.critic_updates else {})
        signal, inputs, analytic_scale = prepare_signal(cfg, signal, inputs)
        if diag is not None:
            diag.analytic_scale = analytic_scale
        stats = self.optimizer.update({
            "obs": tf.constant(batch.obs), "act": tf.constant(batch.act),
            "signal": tf.constant(signal, tf.float32), **inputs})
        check_finite(f"iteration {iteration} update",  # diagnostics may be NaN (no term)
                     {k: v for k, v in stats.items() if not k.startswith("analytic_")},
                     [v.numpy() for v in policy.trainable_variables])
        self.mirror.sync()
        t2 = time.perf_counter()
        step = PolicyStep(
            mean_kl=stats["mean_kl"], entropy=stats["entropy"],
            policy_std=float(np.mean(np.exp(self.mirror.log_std))),
            loss_before=stats["loss_before"], loss_after=stats["loss_after"],
            grad_norm=stats["grad_norm"], line_search_accepted=int(stats["accepted"]),
            backtracks=int(stats["backtracks"]), explained_variance=ev,
            advantage_std=float(np.std(adv)))
        if diag is not None:
            diag.analytic_grad_norm = stats["analytic_grad_norm"]
            diag.analytic_step_share = stats["analytic_step_share"]
        # fixed-length rollouts: the episodes that ended in this batch (maybe none)
        rets = batch.episode_returns
        return Iteration(
            steps=batch.n_steps, returns=rets, lengths=batch.episode_lengths,
            terminated=int(np.sum(batch.path_terminated)),
            score=float(np.mean(rets)) if rets.size else float("nan"),
            columns=(step,) if diag is None else (step, diag),
            sample_time=t1 - t0, update_time=t2 - t1)

    label = "it"  # the summary line's name for an iteration

    @staticmethod
    def summary(row: dict[str, Any]) -> str:
        """The middle of the iteration's line under the progress bar."""
        return (f"ret {row[C.average_return]:9.2f} | max {row[C.max_return_so_far]:9.2f} "
                f"| kl {row[C.mean_kl]:.4f} | ent {row[C.entropy]:6.3f}")

    # ------------------------------------------------------------------ checkpoints
    def get_state(self) -> dict[str, Any]:
        """Policy, optimiser, baseline, the sampler's generator and episodes in progress,
        each env's generator (and, with fixed-length rollouts, its physics mid-episode),
        Q-Prop's critic and replay. With whole paths no episode is in progress at an
        iteration boundary (every batch starts new ones), so an env is its generator."""
        state = {**variables_state("policy", self.policy.variables),
                 **prefixed("vpg_adam", self.optimizer.get_state()),
                 **prefixed("baseline", self.baseline.get_state()),
                 **prefixed("sampler", self.sampler.get_state()),
                 "sampler_rng": rng_state(self.sampler.rng)}
        if self.control_variate is not None:
            state.update(self.control_variate.get_state())
        in_progress = self.cfg.rollout == "fixed"
        state["envs"] = [env_state(env, f"env{i}", state, physics=in_progress)
                         for i, env in enumerate(self.envs)]
        return state

    def set_state(self, state: dict[str, Any], replay_chunks: Any) -> None:
        assign_variables("policy", self.policy.variables, state)
        self.optimizer.set_state(unprefixed("vpg_adam", state))
        self.baseline.set_state(unprefixed("baseline", state))
        set_rng_state(self.sampler.rng, state["sampler_rng"])
        self.sampler.set_state(unprefixed("sampler", state))
        for i, env in enumerate(self.envs):
            if not set_env_state(env, f"env{i}", state["envs"][i], state):
                raise RuntimeError(f"env {i}: its episode in progress cannot be restored")
        if self.control_variate is not None:
            self.control_variate.set_state(state, replay_chunks)
        self.mirror.sync()

    def close(self) -> None:
        for env in self.envs:
            env.close()
