"""DDPG (Lillicrap et al. 2016), the paper's off-policy baseline (§5.2 and Table 1; the
authors' settings are those of rllabplusplus' ``launcher_stub_utils.py`` and
``sandbox/rocky/tf/algos/ddpg.py``).

Networks and settings
---------------------
- Actor mu_theta (:mod:`qprop_tf.actor`): MLP 100-50-25, ReLU, tanh output scaled to the
  action bounds, mu(s) = c + h * tanh(z(s)) with c = (high + low) / 2, h = (high - low) / 2.
  Glorot-uniform weights, zero biases (as the critic).
- Critic: the Q-Prop critic, :class:`qprop_tf.critic.Critic` (100-100 ReLU, action at the
  second layer, its own target network Q_w'), reused through
  :meth:`~qprop_tf.critic.Critic.update_on_batch`. Replay: :class:`~qprop_tf.replay.ReplayBuffer`
  (1e6 rows, uniform, sampled in-graph), written a chunk at a time with
  :meth:`~qprop_tf.replay.ReplayBuffer.add_steps`.
- Adam (epsilon 1e-8, as TF1) with lr 1e-3 for both networks (``actor_lr``, ``qf_lr``),
  minibatch 64 (``qf_batch_size``, used by both), tau 0.001 (``qf_tau``) for both target
  networks, learning starts once the replay holds ``min_replay`` (1000) transitions, then one
  critic and one actor update per env step. No batch norm, no weight decay.

DDPG has a *target actor* mu_theta'. Q-Prop's critic has none (its TD target uses the
current policy mean); DDPG's TD target uses the target actor, as in Lillicrap et al. and the
authors' rllab ``DDPG``. Per update, on one minibatch (the order of rllab's ``do_training``):

    y        = r + gamma * (1 - d) * Q_w'(s', mu_theta'(s'))     (critic.td_target)
    L(w)     = mean_i (y_i - Q_w(s_i, a_i))^2                    (Adam step on w)
    L(theta) = -mean_i Q_w(s_i, mu_theta(s_i))                   (Adam step on theta, same s_i,
                                                                  with the just-updated Q_w)
    w'     <- tau * w + (1 - tau) * w',   theta' <- tau * theta + (1 - tau) * theta'

Exploration (:mod:`qprop_tf.explore`): a_t = clip(mu_theta(s_t) + x_t, low, high) with
Ornstein-Uhlenbeck noise
x_{t+1} = x_t + theta * (0 - x_t) + sigma * eps_t, eps_t ~ N(0, I) (dt = 1; theta 0.15,
sigma 0.3), x reset to 0 at every episode start. The clipped action is the one stored.

``reward_scale`` multiplies the rewards stored for learning ("DDPG-r0.1" is 0.1); every logged
return is unscaled. d is 1 on a terminated step, and on a time-limit truncation only when
``bootstrap_truncation`` is False (the default bootstraps there, as the critic).

Speed: chunks of K env steps
----------------------------
TF is never called per env step. The loop alternates: K = ``ddpg_chunk`` env steps with a
NumPy mirror of the actor (:class:`NumpyActor`) plus OU noise; one ``add_steps`` write of
those K transitions into the replay (in place: ~0.27 ms per call at 1M rows whatever K,
never a buffer copy); then K critic+actor updates in *one* compiled call (an explicit
``tf.while_loop`` with a tensor trip count, indices sampled in-graph, XLA when
``critic_xla``), which also returns the new actor weights as one flat vector to re-sync the
mirror. What K changes: the behaviour policy is up to K updates stale (the mirror acts with
the weights of the chunk's start), and the K updates of a chunk see all K new transitions
at once instead of one more per update. K = 1 is the textbook algorithm; K << the 1e6
replay and the 1/tau = 1000-update target time scale leaves learning essentially unchanged
while the fixed per-call costs (~0.3 ms for the write, ~0.25-0.4 ms for the TF call) are
paid once per K steps (``python -m reproduce.bench.ddpg`` measures them).

Epochs and logging
------------------
An epoch is ``batch_size`` env steps (the last one shortened so the run stops exactly at
``max_steps``), then a noise-free evaluation: whole episodes on a separately seeded env
(seed ``seed * 1000 + EVAL_SEED_OFFSET``) until at least ``eval_steps`` steps. One training
env (``n_envs`` does not apply); its episodes carry over from one epoch to the next. One row of
progress.csv per epoch: ``average_return`` is the mean return of the training (noisy)
episodes that ended in the epoch (NaN if none), ``eval_return`` the mean evaluation return,
and ``max_return_so_far`` the best ``eval_return`` (Table 1 uses evaluation returns for
DDPG). ``iteration_time`` is the whole epoch including evaluation, ``sample_time`` the env
steps with their replay writes, ``update_time`` the compiled updates with the mirror sync;
``steps_per_second`` = batch_steps / (sample_time + update_time) excludes evaluation, whose
time is iteration_time - sample_time - update_time.
"""

from __future__ import annotations

import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from qprop_tf.actor import DeterministicActor, NumpyActor, actor_loss
from qprop_tf.config import Config
from qprop_tf.critic import Critic, soft_update
from qprop_tf.divergence import DivergenceMonitor
from qprop_tf.envs import make_env, resolve_env_id
from qprop_tf.explore import EpisodeLog, Explorer, OUNoise, evaluate
from qprop_tf.progress import COLUMNS as C
from qprop_tf.progress import DDPGStats, Iteration
from qprop_tf.replay import ReplayBuffer
from qprop_tf.runtime import check_finite
from qprop_tf.state import (
    assign_variables,
    env_state,
    prefixed,
    set_env_state,
    unprefixed,
    variables_state,
)

EVAL_SEED_OFFSET = 999
"""The evaluation env is seeded with ``seed * 1000 + 999`` (training envs use seed * 1000 + i)."""


# ----------------------------------------------------------------------- the learner
class DDPG:
    """Actor, target actor, the shared :class:`Critic` and the replay; the compiled update."""

    def __init__(self, obs_dim: int, act_dim: int, low: np.ndarray, high: np.ndarray,
                 actor_hidden: tuple[int, ...] = (100, 50, 25),
                 qf_hidden: tuple[int, ...] = (100, 100), actor_lr: float = 1e-3,
                 qf_lr: float = 1e-3, batch_size: int = 64, tau: float = 1e-3,
                 gamma: float = 0.99, replay_size: int = 1_000_000, min_replay: int = 1000,
                 jit_compile: bool = True, seed: int | None = None) -> None:
        self.tau = float(tau)
        self.batch_size = int(batch_size)
        self.min_replay = int(min_replay)
        self.jit_compile = bool(jit_compile)
        self.critic = Critic(obs_dim, act_dim, qf_hidden, qf_lr, batch_size, tau, gamma,
                             min_replay, jit_compile=jit_compile, seed=seed)
        actor_seed = None if seed is None else seed + 1000
        self.actor = DeterministicActor(obs_dim, act_dim, low, high, actor_hidden,
                                        seed=actor_seed, name="actor")
        self.target_actor = DeterministicActor(obs_dim, act_dim, low, high, actor_hidden,
                                               seed=actor_seed, name="target_actor")
        for t, s in zip(self.target_actor.param_list(), self.actor.param_list(), strict=True):
            t.assign(s)
        self.actor_optimizer = keras.optimizers.Adam(learning_rate=actor_lr, epsilon=1e-8)
        self.actor_optimizer.build(self.actor.param_list())
        self.replay = ReplayBuffer(obs_dim, act_dim, replay_size,
                                   seed=0 if seed is None else seed)
        self.mirror = NumpyActor(self.actor)
        self._train_fn: Any = None
        self._train_call: Any = None
        self._actor_step_fn: Any = None

    # ------------------------------------------------------------------ in-graph pieces
    def _actor_step(self, obs: tf.Tensor) -> tf.Tensor:
        """One Adam step on L(theta) = -mean Q_w(s, mu_theta(s)); the critic is held fixed."""
        variables = self.actor.param_list()
        with tf.GradientTape() as tape:
            loss = actor_loss(self.critic.qf, self.actor, obs)
        grads = tape.gradient(loss, variables)
        self.actor_optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss

    def _update(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """One minibatch: critic TD step (target actor in y), actor step, both soft updates."""
        obs, act, rew, done, next_obs = self.replay.sample(self.batch_size)
        q_loss, mean_q = self.critic.update_on_batch(obs, act, rew, done, next_obs,
                                                     self.target_actor)
        a_loss = self._actor_step(obs)
        soft_update(self.target_actor.param_list(), self.actor.param_list(), self.tau)
        return q_loss, mean_q, a_loss

    def _make_train_fn(self) -> Any:
        # Explicit tf.while_loop with a tensor trip count (see Critic._make_fit_fn): a new
        # n (the last chunk of an epoch is shorter) neither retraces nor recompiles.
        def train_loop(n_updates: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            def cond(i: tf.Tensor, sums: tf.Tensor) -> tf.Tensor:
                return i < n_updates

            def body(i: tf.Tensor, sums: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
                return i + 1, sums + tf.stack(self._update())

            _, sums = tf.while_loop(cond, body, (tf.constant(0), tf.zeros([3])))
            return sums, self.actor.flat_params()

        return tf.function(train_loop, jit_compile=self.jit_compile,
                           input_signature=[tf.TensorSpec([], tf.int32)])

    # ------------------------------------------------------------------ state
    def _parts(self) -> dict[str, list[Any]]:
        return {"actor": self.actor.variables, "target_actor": self.target_actor.variables,
                "actor_adam": self.actor_optimizer.variables}

    def get_state(self) -> dict[str, np.ndarray]:
        """Actor, target actor, the actor's Adam slots, the critic's state and the replay's
        bookkeeping (``replay/...``; its rows are checkpointed a chunk at a time)."""
        state: dict[str, np.ndarray] = {}
        for name, variables in self._parts().items():
            state.update(variables_state(name, variables))
        return {**state, **self.critic.get_state(),
                **prefixed("replay", self.replay.get_state())}

    def set_state(self, state: dict[str, np.ndarray], replay_chunks: Any) -> None:
        for name, variables in self._parts().items():
            assign_variables(name, variables, state)
        self.critic.set_state(state)
        self.replay.set_state(unprefixed("replay", state), replay_chunks)
        self.mirror.sync()

    # ------------------------------------------------------------------ public
    def actor_step(self, obs: np.ndarray | tf.Tensor) -> float:
        """One actor update on a given batch of observations (compiled; for tests)."""
        if self._actor_step_fn is None:
            self._actor_step_fn = tf.function(self._actor_step)
        loss = self._actor_step_fn(tf.convert_to_tensor(obs, tf.float32))
        self.mirror.sync()
        return float(loss)

    def train(self, n_updates: int) -> dict[str, float]:
        """``n_updates`` critic+actor minibatch updates in one compiled call; re-syncs the mirror.

        Returns the means over the updates of the TD loss, Q_w(s, a) and the actor loss
        (NaN with no update).
        """
        if n_updates <= 0 or self.replay.size == 0:
            nan = float("nan")
            return {"critic_loss": nan, "mean_q": nan, "actor_loss": nan, "updates": 0}
        if self._train_fn is None:
            self._train_fn = self._make_train_fn()
            # Calling the concrete function skips the argument binding of tf.function
            # (~0.1-0.15 ms a call, which matters at K = 1).
            self._train_call = self._train_fn.get_concrete_function()
        sums, flat = self._train_call(tf.constant(n_updates, tf.int32))
        self.mirror.load_flat(flat.numpy())
        mean = sums.numpy().astype(np.float64) / n_updates
        return {"critic_loss": float(mean[0]), "mean_q": float(mean[1]),
                "actor_loss": float(mean[2]), "updates": int(n_updates)}

    def n_updates_due(self, new_steps: int) -> int:
        """Updates owed for the last ``new_steps`` steps: one per step taken while the replay
        held >= ``min_replay`` transitions (counting that step), as in the textbook loop."""
        return int(min(new_steps, max(0, self.replay.size - self.min_replay + 1)))


# ----------------------------------------------------------------------- the run
class DDPGRunner:
    """Everything a DDPG run holds: envs, learner, noise, explorer; an epoch at a time for
    the run shell (:func:`qprop_tf.run.train`), a chunk at a time for the benchmark.

    Build it after :func:`qprop_tf.runtime.seed_everything`, as the on-policy runner.
    """

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.env_id = resolve_env_id(cfg.env)
        self.env = make_env(self.env_id, cfg.seed * 1000, cfg.action_scale)
        self.eval_env = make_env(self.env_id, cfg.seed * 1000 + EVAL_SEED_OFFSET,
                                 cfg.action_scale)
        self.obs_dim = int(self.env.observation_space.shape[0])
        self.act_dim = int(self.env.action_space.shape[0])
        space = self.env.action_space
        self.agent = DDPG(self.obs_dim, self.act_dim, space.low, space.high,
                          cfg.actor_hidden, cfg.qf_hidden, cfg.actor_lr, cfg.qf_lr,
                          cfg.qf_batch_size, cfg.qf_tau, cfg.gamma, cfg.replay_size,
                          cfg.min_replay, jit_compile=cfg.use_critic_xla(self.obs_dim),
                          seed=cfg.seed)
        self.noise = OUNoise(self.act_dim, cfg.ou_theta, cfg.ou_sigma,
                             np.random.default_rng(cfg.seed))
        self.explorer = Explorer(self.env, self.agent.mirror, self.noise, self.agent.replay,
                                 cfg.reward_scale,
                                 truncation_is_terminal=not cfg.bootstrap_truncation)
        self.policy = self.agent.actor  # what on_iteration hooks are shown, and is saved
        self.action_bounds = (space.low, space.high)  # the actor's (action_scale)
        raw = self.env.unwrapped.action_space
        self.env_bounds = (raw.low, raw.high)  # the env's own
        self.replay = self.agent.replay
        self.divergence = DivergenceMonitor()

    def step_chunk(self, n: int, log: EpisodeLog) -> tuple[dict[str, float], float, float]:
        """``n`` env steps, then the updates they are owed; (stats, sample s, update s)."""
        t0 = time.perf_counter()
        self.explorer.collect(n, log)
        t1 = time.perf_counter()
        stats = self.agent.train(self.agent.n_updates_due(n))
        return stats, t1 - t0, time.perf_counter() - t1

    def evaluate(self, min_steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Noise-free evaluation with the current actor (the OU noise is never touched)."""
        steps = self.cfg.eval_steps if min_steps is None else min_steps
        return evaluate(self.eval_env, self.agent.mirror, steps)

    def iterate(self, epoch: int, steps_left: int) -> Iteration:
        """One epoch: ``batch_size`` env steps (fewer if the budget has fewer left) in
        chunks of ``ddpg_chunk``, each followed by the updates it is owed, then the
        noise-free evaluation."""
        cfg, agent = self.cfg, self.agent
        epoch_steps = min(cfg.batch_size, steps_left)
        log = EpisodeLog()
        sample_time = update_time = 0.0
        losses: list[tuple[float, int]] = []
        qs: list[tuple[float, int]] = []
        actor_losses: list[tuple[float, int]] = []
        done_steps = 0
        while done_steps < epoch_steps:
            k = min(cfg.ddpg_chunk, epoch_steps - done_steps)
            stats, ts, tu = self.step_chunk(k, log)
            done_steps += k
            sample_time += ts
            update_time += tu
            if stats["updates"]:
                check_finite(f"epoch {epoch} update",
                             {key: stats[key] for key in ("critic_loss", "mean_q", "actor_loss")},
                             [agent.mirror.flat])
                losses.append((stats["critic_loss"], stats["updates"]))
                qs.append((stats["mean_q"], stats["updates"]))
                actor_losses.append((stats["actor_loss"], stats["updates"]))
        eval_returns, eval_lengths = self.evaluate()
        critic_loss = _weighted(losses)
        stats = DDPGStats(
            eval_return=float(np.mean(eval_returns)),
            eval_std_return=float(np.std(eval_returns)),
            eval_min_return=float(np.min(eval_returns)),
            eval_max_return=float(np.max(eval_returns)),
            eval_episodes=int(eval_returns.size), eval_steps=int(eval_lengths.sum()),
            eval_average_length=float(np.mean(eval_lengths)),
            critic_loss=critic_loss, mean_q=_weighted(qs),
            actor_loss=_weighted(actor_losses), updates=sum(k for _, k in losses),
            replay_size=agent.replay.size,
            critic_diverged=int(self.divergence.update(critic_loss)))
        return Iteration(
            steps=epoch_steps, returns=np.asarray(log.returns, dtype=np.float64),
            lengths=np.asarray(log.lengths), terminated=sum(log.terminated),
            score=stats.eval_return, columns=(stats,), sample_time=sample_time,
            update_time=update_time)

    label = "ep"  # the summary line's name for an epoch

    @staticmethod
    def summary(row: dict[str, Any]) -> str:
        """The middle of the epoch's line under the progress bar."""
        return (f"train {row[C.average_return]:9.2f} | eval {row[C.eval_return]:9.2f} "
                f"| max {row[C.max_return_so_far]:9.2f} | Q {row[C.mean_q]:8.3g} "
                f"| qloss {row[C.critic_loss]:8.3g}")

    # ------------------------------------------------------------------ checkpoints
    def get_state(self) -> dict[str, Any]:
        """Everything a DDPG run needs to continue exactly, mid-episode: networks, Adam
        slots, the replay's bookkeeping, the OU noise, the explorer's episode, the training
        env's full MuJoCo state and every generator."""
        noise, explorer = self.noise.get_state(), self.explorer.get_state()
        # the keys DDPG checkpoints have had from the start
        state = {**self.agent.get_state(), "noise/state": noise["state"],
                 "noise_rng": noise["rng"], "explorer/obs": explorer["obs"],
                 "ep_return": explorer["ep_return"], "ep_length": explorer["ep_length"]}
        state.update(prefixed("divergence", self.divergence.get_state()))
        state["env"] = env_state(self.env, "env", state, physics=True)
        state["eval_env"] = env_state(self.eval_env, "eval_env", state)
        return state

    def set_state(self, state: dict[str, Any], replay_chunks: Any) -> None:
        self.agent.set_state(state, replay_chunks)
        self.divergence.set_state(unprefixed("divergence", state))
        self.noise.set_state({"state": state["noise/state"], "rng": state["noise_rng"]})
        self.explorer.set_state({"obs": state["explorer/obs"], "ep_return": state["ep_return"],
                                 "ep_length": state["ep_length"]})
        set_env_state(self.eval_env, "eval_env", state["eval_env"], state)
        if not set_env_state(self.env, "env", state["env"], state):
            # No way to put this env back mid-episode: end the stored path where it was cut
            # (bootstrapped, as a time-limit truncation) and start a new episode.
            print("warning: this env's state cannot be restored mid-episode; the interrupted "
                  "training episode restarts (its partial return is not logged), so this run "
                  "is no longer step-for-step identical to an uninterrupted one", flush=True)
            self.agent.replay.close_open_path()
            self.explorer.start_episode()

    def close(self) -> None:
        self.env.close()
        self.eval_env.close()


def _weighted(parts: list[tuple[float, int]]) -> float:
    """Update-weighted mean of per-chunk means (NaN when no update ran)."""
    n = sum(k for _, k in parts)
    return sum(v * k for v, k in parts) / n if n else float("nan")
