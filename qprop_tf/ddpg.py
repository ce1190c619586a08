"""DDPG (Lillicrap et al. 2016), the paper's off-policy baseline (REFERENCE.md section 2).

Networks and settings
---------------------
- Actor mu_theta: MLP 100-50-25, ReLU, tanh output scaled to the action bounds,
  mu(s) = c + h * tanh(z(s)) with c = (high + low) / 2, h = (high - low) / 2. Glorot-uniform
  weights, zero biases (as the critic).
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

Exploration: a_t = clip(mu_theta(s_t) + x_t, low, high) with Ornstein-Uhlenbeck noise
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

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from qprop_tf.config import PAPER_EPISODE_STEPS, Config
from qprop_tf.critic import Critic, QNetwork, soft_update
from qprop_tf.replay import ReplayBuffer
from qprop_tf.state import (
    assign_variables,
    prefixed,
    rng_state,
    set_rng_state,
    unprefixed,
    variables_state,
)

EVAL_SEED_OFFSET = 999
"""The evaluation env is seeded with ``seed * 1000 + 999`` (training envs use seed * 1000 + i)."""


# ----------------------------------------------------------------------- exploration noise
def ou_step(x: np.ndarray, theta: float, sigma: float, rng: np.random.Generator,
            mu: float = 0.0, dt: float = 1.0) -> np.ndarray:
    """One Euler-Maruyama step of the Ornstein-Uhlenbeck process dx = theta (mu - x) dt + sigma dW.

    x_{t+1} = x_t + theta * (mu - x_t) * dt + sigma * sqrt(dt) * eps,   eps ~ N(0, I)
    """
    return x + theta * (mu - x) * dt + sigma * np.sqrt(dt) * rng.standard_normal(x.shape)


def ou_stationary_variance(theta: float, sigma: float, dt: float = 1.0) -> float:
    """Stationary variance of :func:`ou_step` (per dimension), for 0 < theta * dt < 2.

    x_{t+1} - mu = (1 - theta dt)(x_t - mu) + sigma sqrt(dt) eps is an AR(1) process, so at
    stationarity Var = (1 - theta dt)^2 Var + sigma^2 dt, i.e.

        Var = sigma^2 dt / (1 - (1 - theta dt)^2) = sigma^2 / (theta (2 - theta dt)),

    0.09 / 0.2775 = 0.324 (std 0.569) for theta 0.15, sigma 0.3, dt 1; the stationary mean
    is mu (0). The continuous-time limit is sigma^2 / (2 theta).
    """
    return sigma**2 * dt / (1.0 - (1.0 - theta * dt) ** 2)


class OUNoise:
    """Ornstein-Uhlenbeck exploration noise, one independent process per action dimension."""

    def __init__(self, act_dim: int, theta: float = 0.15, sigma: float = 0.3,
                 rng: np.random.Generator | None = None, mu: float = 0.0, dt: float = 1.0
                 ) -> None:
        self.theta, self.sigma, self.mu, self.dt = float(theta), float(sigma), float(mu), dt
        self.rng = rng if rng is not None else np.random.default_rng()
        self.state = np.full(act_dim, self.mu)

    def reset(self) -> None:
        """x <- mu (at every episode start)."""
        self.state = np.full_like(self.state, self.mu)

    def sample(self) -> np.ndarray:
        """Advance one step (:func:`ou_step`) and return the new state."""
        self.state = ou_step(self.state, self.theta, self.sigma, self.rng, self.mu, self.dt)
        return self.state

    def get_state(self) -> dict[str, Any]:
        """x (``state``) and the generator's state (``rng``, JSON)."""
        return {"state": np.array(self.state), "rng": rng_state(self.rng)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.state = np.array(state["state"])
        set_rng_state(self.rng, state["rng"])


# ----------------------------------------------------------------------- the actor
class DeterministicActor(keras.Model):
    """mu_theta(s) = c + h * tanh(MLP(s)): ReLU hidden layers, output scaled to [low, high]."""

    def __init__(self, obs_dim: int, act_dim: int, low: np.ndarray, high: np.ndarray,
                 hidden: tuple[int, ...] = (100, 50, 25), seed: int | None = None,
                 name: str = "actor") -> None:
        super().__init__(name=name, dtype="float32")
        low = np.asarray(low, dtype=np.float64).reshape(act_dim)
        high = np.asarray(high, dtype=np.float64).reshape(act_dim)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(high > low)):
            raise ValueError("a tanh actor needs finite action bounds with high > low")
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.center = ((high + low) / 2).astype(np.float32)
        self.half_range = ((high - low) / 2).astype(np.float32)

        def init(i: int) -> keras.initializers.Initializer:
            return keras.initializers.GlorotUniform(seed=None if seed is None else seed + i)

        self.hidden_layers = [
            keras.layers.Dense(h, activation="relu", kernel_initializer=init(i),
                               bias_initializer="zeros", dtype="float32", name=f"h{i}")
            for i, h in enumerate(hidden)]
        self.out_layer = keras.layers.Dense(act_dim, activation="tanh",
                                            kernel_initializer=init(len(hidden)),
                                            bias_initializer="zeros", dtype="float32",
                                            name="out")
        self.build((None, obs_dim))

    def build(self, input_shape: Any) -> None:
        shape = (None, self.obs_dim)
        for layer in self.hidden_layers:
            layer.build(shape)
            shape = (None, layer.units)
        self.out_layer.build(shape)
        self.built = True

    def call(self, obs: tf.Tensor) -> tf.Tensor:
        """mu_theta(s), a [N, act_dim] action inside the bounds."""
        h = obs
        for layer in self.hidden_layers:
            h = layer(h)
        return self.center + self.half_range * self.out_layer(h)

    def param_list(self) -> list[tf.Variable]:
        """Kernels and biases, input to output: the order of :meth:`flat_params`."""
        out: list[tf.Variable] = []
        for layer in (*self.hidden_layers, self.out_layer):
            out += [layer.kernel, layer.bias]
        return out

    def flat_params(self) -> tf.Tensor:
        """All parameters as one vector (one device->host copy to sync the mirror)."""
        return tf.concat([tf.reshape(v, [-1]) for v in self.param_list()], axis=0)


class NumpyActor:
    """A NumPy copy of a :class:`DeterministicActor` (float64), for per-step actions."""

    def __init__(self, actor: DeterministicActor) -> None:
        self.actor = actor
        self.shapes = [tuple(v.shape) for v in actor.param_list()]
        self.bounds = np.cumsum([0] + [int(np.prod(s)) for s in self.shapes]).tolist()
        self.center = actor.center.astype(np.float64)
        self.half_range = actor.half_range.astype(np.float64)
        self.sync()

    def sync(self) -> None:
        """Copy the Keras weights (eager; the training loop uses :meth:`load_flat`)."""
        self.load_flat(np.concatenate([v.numpy().ravel() for v in self.actor.param_list()]))

    def load_flat(self, flat: np.ndarray) -> None:
        """Set the weights from a :meth:`DeterministicActor.flat_params` vector."""
        flat = np.asarray(flat, dtype=np.float64)
        if flat.size != self.bounds[-1]:
            raise ValueError(f"expected {self.bounds[-1]} parameters, got {flat.size}")
        params = [flat[lo:hi].reshape(shape) for lo, hi, shape in
                  zip(self.bounds[:-1], self.bounds[1:], self.shapes, strict=True)]
        self.flat = flat
        self.layers = [(params[i], params[i + 1]) for i in range(0, len(params) - 2, 2)]
        self.out_w, self.out_b = params[-2], params[-1]

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """mu(s) for one observation [obs_dim] or a batch [N, obs_dim]."""
        h = obs
        for w, b in self.layers:
            h = h @ w
            h += b
            np.maximum(h, 0.0, out=h)
        z = h @ self.out_w
        z += self.out_b
        return self.center + self.half_range * np.tanh(z)


def actor_loss(qf: QNetwork, actor: keras.Model, obs: tf.Tensor) -> tf.Tensor:
    """The deterministic policy gradient surrogate, L(theta) = -mean_i Q_w(s_i, mu_theta(s_i)).

    Its gradient w.r.t. theta is -mean_i grad_a Q_w(s_i, a)|_{a=mu(s_i)} grad_theta mu(s_i).
    """
    return -tf.reduce_mean(qf.q(obs, actor(obs)))


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


# ----------------------------------------------------------------------- rollouts
@dataclass
class EpisodeLog:
    """Finished training episodes (unscaled returns)."""

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    terminated: list[bool] = field(default_factory=list)


class Explorer:
    """Steps the training env with the NumPy actor plus OU noise and writes chunks to the
    replay (:meth:`ReplayBuffer.add_steps`); the current episode carries across chunks."""

    def __init__(self, env: gym.Env, mirror: NumpyActor, noise: OUNoise, replay: ReplayBuffer,
                 reward_scale: float = 1.0, truncation_is_terminal: bool = False) -> None:
        self.env, self.mirror, self.noise, self.replay = env, mirror, noise, replay
        self.reward_scale = float(reward_scale)
        self.truncation_is_terminal = bool(truncation_is_terminal)
        self.low = np.asarray(env.action_space.low, dtype=np.float64)
        self.high = np.asarray(env.action_space.high, dtype=np.float64)
        self.obs_dim = int(env.observation_space.shape[0])
        self.act_dim = int(env.action_space.shape[0])
        self.write_time = 0.0
        self.writes = 0
        self.start_episode()

    def start_episode(self) -> None:
        """Reset the env and the noise; the episode's return and length start at 0."""
        self.obs, _ = self.env.reset()
        self.noise.reset()
        self.ep_return = 0.0
        self.ep_length = 0

    def get_state(self) -> dict[str, Any]:
        """The episode in progress: its current observation, return and length (the env's
        physics and the noise are their owners' to save)."""
        return {"obs": np.array(self.obs), "ep_return": float(self.ep_return),
                "ep_length": int(self.ep_length)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.obs = np.array(state["obs"])
        self.ep_return = float(state["ep_return"])
        self.ep_length = int(state["ep_length"])

    def collect(self, n: int, log: EpisodeLog) -> None:
        """Take ``n`` env steps, append finished episodes to ``log``, write them to the replay."""
        obs_buf = np.empty((n, self.obs_dim), dtype=np.float32)
        act_buf = np.empty((n, self.act_dim), dtype=np.float32)
        rew_buf = np.empty(n, dtype=np.float64)
        lengths: list[int] = []
        last_obs: list[np.ndarray] = []
        last_done: list[bool] = []
        low, high, mirror, noise, step = self.low, self.high, self.mirror, self.noise, \
            self.env.step
        piece = 0
        for i in range(n):
            obs = self.obs
            act = np.minimum(np.maximum(mirror(obs) + noise.sample(), low), high)
            next_obs, rew, term, trunc, _ = step(act)
            obs_buf[i] = obs
            act_buf[i] = act
            rew_buf[i] = rew
            piece += 1
            self.ep_return += rew
            self.ep_length += 1
            if term or trunc:
                lengths.append(piece)
                last_obs.append(next_obs)
                last_done.append(bool(term) or (bool(trunc) and self.truncation_is_terminal))
                piece = 0
                log.returns.append(float(self.ep_return))
                log.lengths.append(self.ep_length)
                log.terminated.append(bool(term))
                self.start_episode()
            else:
                self.obs = next_obs
        is_open = piece > 0
        if is_open:
            lengths.append(piece)
            last_obs.append(self.obs)
            last_done.append(False)
        t0 = time.perf_counter()
        self.replay.add_steps(obs_buf, act_buf, self.reward_scale * rew_buf, lengths,
                              np.asarray(last_obs, dtype=np.float32), last_done,
                              last_path_open=is_open)
        self.write_time += time.perf_counter() - t0
        self.writes += 1


def evaluate(env: gym.Env, policy: Callable[[np.ndarray], np.ndarray], min_steps: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free rollouts: whole episodes with a = clip(mu(s)) until >= ``min_steps`` steps.

    Returns (undiscounted returns, lengths), one entry per episode.
    """
    low = np.asarray(env.action_space.low, dtype=np.float64)
    high = np.asarray(env.action_space.high, dtype=np.float64)
    returns: list[float] = []
    lengths: list[int] = []
    steps = 0
    while steps < min_steps:
        obs, _ = env.reset()
        ret, length, done = 0.0, 0, False
        while not done:
            obs, rew, term, trunc, _ = env.step(np.minimum(np.maximum(policy(obs), low), high))
            ret += rew
            length += 1
            done = term or trunc
        returns.append(ret)
        lengths.append(length)
        steps += length
    return np.asarray(returns, dtype=np.float64), np.asarray(lengths, dtype=np.int64)


class DDPGRunner:
    """Everything a DDPG run holds: envs, learner, noise, explorer. Used by training and bench."""

    def __init__(self, cfg: Config) -> None:
        from qprop_tf.envs import make_env, resolve_env_id

        self.cfg = cfg
        self.env_id = resolve_env_id(cfg.env)
        self.env = make_env(self.env_id, cfg.seed * 1000)
        self.eval_env = make_env(self.env_id, cfg.seed * 1000 + EVAL_SEED_OFFSET)
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

    def close(self) -> None:
        self.env.close()
        self.eval_env.close()


def _mean(x: list[float] | np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else float("nan")


def _weighted(parts: list[tuple[float, int]]) -> float:
    """Update-weighted mean of per-chunk means (NaN when no update ran)."""
    n = sum(k for _, k in parts)
    return sum(v * k for v, k in parts) / n if n else float("nan")


# ----------------------------------------------------------------------- the training loop
def ddpg_state(runner: DDPGRunner) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Everything a DDPG run needs to continue exactly, mid-episode: networks, Adam slots,
    the replay's bookkeeping, the OU noise, the explorer's episode, the training env's full
    MuJoCo state and every RNG. Arrays and JSON meta (see :mod:`qprop_tf.checkpoint`)."""
    from qprop_tf.state import env_state, split

    noise, explorer = runner.noise.get_state(), runner.explorer.get_state()
    # the keys DDPG checkpoints have had from the start
    state = {**runner.agent.get_state(), "noise/state": noise["state"],
             "noise_rng": noise["rng"], "explorer/obs": explorer["obs"],
             "ep_return": explorer["ep_return"], "ep_length": explorer["ep_length"]}
    arrays, meta = split(state)
    meta.update(env=env_state(runner.env, "env", arrays, physics=True),
                eval_env=env_state(runner.eval_env, "eval_env", arrays))
    return arrays, meta


def set_ddpg_state(runner: DDPGRunner, arrays: dict[str, np.ndarray], meta: dict[str, Any],
                   chunks: Any) -> None:
    """Inverse of :func:`ddpg_state` (``chunks``: the replay rows, see ReplayBuffer.set_state)."""
    from qprop_tf.state import set_env_state

    state = {**arrays, **meta}
    runner.agent.set_state(state, chunks)
    runner.noise.set_state({"state": state["noise/state"], "rng": state["noise_rng"]})
    runner.explorer.set_state({"obs": state["explorer/obs"], "ep_return": state["ep_return"],
                               "ep_length": state["ep_length"]})
    set_env_state(runner.eval_env, "eval_env", meta["eval_env"], arrays)
    if not set_env_state(runner.env, "env", meta["env"], arrays):
        # No way to put this env back mid-episode: end the stored path where it was cut
        # (bootstrapped, as a time-limit truncation) and start a new episode.
        print("warning: this env's state cannot be restored mid-episode; the interrupted "
              "training episode restarts (its partial return is not logged), so this run "
              "is no longer step-for-step identical to an uninterrupted one", flush=True)
        runner.agent.replay.close_open_path()
        runner.explorer.start_episode()


def train_ddpg(cfg: Config, out: str | Path,
               on_iteration: Callable[[int, dict[str, Any], Any], None] | None = None,
               verbose: bool = True,
               done_info: Callable[[], dict[str, Any]] | None = None) -> Path:
    """Train DDPG for ``cfg.max_steps`` env steps, one logged epoch per ``batch_size`` steps.

    Same run-directory conventions as :func:`qprop_tf.train.train` (config.json,
    progress.csv, TensorBoard events, progress bar, one summary line per epoch).
    ``on_iteration(epoch, row, actor)`` is called after each logged row. Checkpoints,
    resume, signals and DONE as :func:`qprop_tf.train.train` (which calls this, holding the
    run lock); epochs end mid-episode, so the training env is restored with its full MuJoCo
    state and the episode continues exactly.
    """
    from qprop_tf.checkpoint import Checkpointer
    from qprop_tf.envs import domain_name
    from qprop_tf.errors import StopRun
    from qprop_tf.logger import RunLogger, report
    from qprop_tf.rundir import StopSignals, at_boundary, write_done
    from qprop_tf.runtime import check_finite, git_commit, seed_everything, versions
    from qprop_tf.train import replay_kept_rows, start_message

    cfg.validate()
    out = Path(out)
    seed_everything(cfg.seed)
    runner = DDPGRunner(cfg)
    agent = runner.agent
    agent.replay.start_journal()
    ckpt = Checkpointer(out, cfg.checkpoint_minutes)
    loaded = ckpt.load()
    start_message(out, loaded)
    env_steps = 0
    real_episodes = 0
    max_return = -np.inf
    elapsed0 = 0.0
    epoch = 0
    if loaded is not None:
        set_ddpg_state(runner, loaded.arrays, loaded.meta, loaded.chunks)
        epoch = int(loaded.meta["iteration"])
        env_steps = int(loaded.meta["env_steps"])
        real_episodes = int(loaded.meta["real_episodes"])
        max_return = float(loaded.meta["max_return"])
        elapsed0 = float(loaded.meta["elapsed"])
    logger = RunLogger(out, resume_rows=None if loaded is None else int(loaded.meta["rows"]))
    logger.write_config({"config": cfg.to_dict(), "env_id": runner.env_id,
                         "obs_dim": runner.obs_dim, "act_dim": runner.act_dim,
                         "versions": versions(), "git_commit": git_commit()})
    bar = None
    if cfg.progress_bar:
        from tqdm import tqdm
        bar = tqdm(total=cfg.max_steps, initial=env_steps, unit="step", unit_scale=True,
                   dynamic_ncols=True, desc=f"{cfg.algo} {domain_name(runner.env_id)} s{cfg.seed}")

    def save_checkpoint() -> None:
        arrays, meta = ddpg_state(runner)
        logger.sync()
        meta.update(env_steps=env_steps, real_episodes=real_episodes, max_return=max_return,
                    elapsed=time.perf_counter() - t_start, rows=logger.rows)
        ckpt.save(epoch, arrays, meta, agent.replay)

    t_start = time.perf_counter() - elapsed0
    stopped = "budget"
    signals = StopSignals().__enter__()
    try:
        replay_kept_rows(logger, on_iteration)
        while env_steps < cfg.max_steps:
            t0 = time.perf_counter()
            epoch_steps = min(cfg.batch_size, cfg.max_steps - env_steps)
            log = EpisodeLog()
            sample_time = update_time = 0.0
            losses: list[tuple[float, int]] = []
            qs: list[tuple[float, int]] = []
            actor_losses: list[tuple[float, int]] = []
            done_steps = 0
            while done_steps < epoch_steps:
                k = min(cfg.ddpg_chunk, epoch_steps - done_steps)
                stats, ts, tu = runner.step_chunk(k, log)
                done_steps += k
                sample_time += ts
                update_time += tu
                if stats["updates"]:
                    check_finite(f"epoch {epoch} update",
                                 {key: stats[key] for key in
                                  ("critic_loss", "mean_q", "actor_loss")},
                                 [agent.mirror.flat])
                    losses.append((stats["critic_loss"], stats["updates"]))
                    qs.append((stats["mean_q"], stats["updates"]))
                    actor_losses.append((stats["actor_loss"], stats["updates"]))
            eval_returns, eval_lengths = runner.evaluate()
            t2 = time.perf_counter()

            env_steps += epoch_steps
            real_episodes += len(log.returns)
            eval_return = float(np.mean(eval_returns))
            max_return = max(max_return, eval_return)
            avg_ret = _mean(log.returns)
            n_updates = sum(k for _, k in losses)
            row = {
                "iteration": epoch,
                "env_steps": env_steps,
                "paper_episodes": env_steps / PAPER_EPISODE_STEPS,
                "real_episodes": real_episodes,
                "batch_steps": epoch_steps,
                "batch_episodes": len(log.returns),
                "average_return": avg_ret,
                "std_return": float(np.std(log.returns)) if log.returns else float("nan"),
                "min_return": float(np.min(log.returns)) if log.returns else float("nan"),
                "max_return": float(np.max(log.returns)) if log.returns else float("nan"),
                "max_return_so_far": max_return,
                "average_length": _mean(log.lengths),
                "terminated_fraction": _mean(log.terminated),
                "eval_return": eval_return,
                "eval_std_return": float(np.std(eval_returns)),
                "eval_min_return": float(np.min(eval_returns)),
                "eval_max_return": float(np.max(eval_returns)),
                "eval_episodes": int(eval_returns.size),
                "eval_steps": int(eval_lengths.sum()),
                "eval_average_length": float(np.mean(eval_lengths)),
                "critic_loss": _weighted(losses),
                "mean_q": _weighted(qs),
                "actor_loss": _weighted(actor_losses),
                "updates": n_updates,
                "replay_size": agent.replay.size,
                "time": time.perf_counter() - t_start,
                "iteration_time": t2 - t0,
                "sample_time": sample_time,
                "update_time": update_time,
                "steps_per_second": epoch_steps / max(sample_time + update_time, 1e-9),
                "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
            logger.log(row)
            line = (f"ep {epoch:4d} | steps {env_steps:>9,d} | train {avg_ret:9.2f} "
                    f"| eval {eval_return:9.2f} | max {max_return:9.2f} "
                    f"| Q {row['mean_q']:8.3g} | qloss {row['critic_loss']:8.3g} "
                    f"| {row['steps_per_second']:6.0f} st/s")
            report(bar, line, epoch_steps, verbose)
            epoch += 1
            at_boundary(ckpt, signals, save_checkpoint, f"epoch {epoch - 1}")
            if on_iteration is not None:
                on_iteration(epoch - 1, row, agent.actor)
    except StopRun as stop:
        stopped = "early"
        print(f"stopped early: {stop}", flush=True)
    finally:
        signals.__exit__()
        if bar is not None:
            bar.close()
        logger.close()
        runner.close()
    write_done(out, {"stopped": stopped, "env_steps": env_steps, "iterations": epoch,
                     "checkpoints": ckpt.saves,
                     "checkpoint_seconds": round(ckpt.save_seconds, 3),
                     **(done_info() if done_info is not None else {})})
    ckpt.remove()
    return out
