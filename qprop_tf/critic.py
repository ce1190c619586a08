"""The off-policy critic Q_w(s, a) of Q-Prop, fitted by TD(0) on a replay buffer.

Q_w is a 100-100 ReLU MLP with a linear scalar output; the action joins (concatenated) at
the input of the second hidden layer; Glorot-uniform weights and zero biases. It is fitted
DDPG-style (Lillicrap et al. 2016) but with the *current* policy mean and no target policy:

    y_i  = r_i + gamma * (1 - terminal_i) * Q_w'(s'_i, mu_theta(s'_i))
    L(w) = mean_i (y_i - Q_w(s_i, a_i))^2              (Adam, lr 1e-3, minibatch 64)
    w'  <- tau * w + (1 - tau) * w'                     (after every gradient step, tau 1e-3)

All ``n_updates`` minibatch updates of one :meth:`Critic.fit` call run inside one compiled
``tf.function`` (XLA by default): a ``tf.range`` loop that samples indices in-graph from the
:class:`~qprop_tf.replay.ReplayBuffer`, so there is one Python->TF call per iteration.

Stability switches (ours, not the authors'; each off by default, issue 14), all in the fitting
only: A_bar's expansion point mu(s) and the analytic term never see them.

- ``target_clip``: the bootstrap action is clip(mu_theta(s'), low, high) (:func:`clip_action`);
- ``loss="huber"``: the Huber TD loss (:func:`huber_loss`) instead of the squared error;
- ``grad_clip`` > 0: the gradient is rescaled to at most that global norm;
- ``target_policy``: a lagged copy of the policy, Polyak-averaged towards it after every
  gradient step with ``tau`` (:func:`soft_update`), gives mu(s') instead of the current
  policy, as DDPG's target actor does.

Each fit also reduces, in-graph, the statistics of :data:`FIT_STATS` over its updates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from qprop_tf.config import CRITIC_LOSSES
from qprop_tf.replay import ReplayBuffer
from qprop_tf.state import assign_variables, variables_state


# ----------------------------------------------------------------------- the equations
def td_target(rew: tf.Tensor, terminal: tf.Tensor, q_next: tf.Tensor, gamma: float
              ) -> tf.Tensor:
    """One-step TD target, with no gradient through it.

    y = r + gamma * (1 - terminal) * Q_w'(s', mu_theta(s'))

    ``q_next`` is Q_w'(s', mu_theta(s')) from the target critic at the current policy mean;
    ``terminal`` is 1.0 where the transition ended the episode (no bootstrap), else 0.0.
    """
    y = rew + gamma * (1.0 - terminal) * q_next
    return tf.stop_gradient(y)


def clip_action(act: tf.Tensor, low: tf.Tensor, high: tf.Tensor) -> tf.Tensor:
    """The bootstrap action clipped to the action box.

    a' = min(max(mu_theta(s'), low), high)
    """
    return tf.clip_by_value(act, low, high)


def squared_loss(y: tf.Tensor, q: tf.Tensor) -> tf.Tensor:
    """The authors' TD loss: L = mean_i (y_i - Q_i)^2."""
    return tf.reduce_mean(tf.square(y - q))


def huber_loss(y: tf.Tensor, q: tf.Tensor, delta: float) -> tf.Tensor:
    """Huber TD loss: L = mean_i h(y_i - Q_i),
    h(x) = x^2 / 2 if |x| <= delta else delta * (|x| - delta / 2).

    Its gradient in Q is the TD error clipped to [-delta, delta].
    """
    x = tf.abs(y - q)
    quad = tf.minimum(x, delta)
    return tf.reduce_mean(0.5 * tf.square(quad) + delta * (x - quad))


def out_of_bounds(act: tf.Tensor, low: tf.Tensor, high: tf.Tensor) -> tf.Tensor:
    """1.0 for the rows of ``act`` with a component outside [low, high], else 0.0: [N]."""
    outside = tf.logical_or(act < low, act > high)
    return tf.cast(tf.reduce_any(outside, axis=-1), tf.float32)


def soft_update(target_vars: list[tf.Variable], source_vars: list[tf.Variable],
                tau: float) -> None:
    """Polyak averaging of the target network, in place.

    w' <- tau * w + (1 - tau) * w'
    """
    for t, s in zip(target_vars, source_vars, strict=True):
        t.assign(tau * s + (1.0 - tau) * t)


def q_and_action_gradient(q_fn: Any, obs: tf.Tensor, mean: tf.Tensor
                          ) -> tuple[tf.Tensor, tf.Tensor]:
    """Q(s, mu) and grad_a Q(s, a)|_{a=mu} for a batch: the critic's Taylor expansion point.

    ``q_fn(obs, act) -> [N]``. Q-Prop's control variate is
    Q(s, mu) + grad_a Q(s, a)|_{a=mu} . (a - mu). Rows are independent, so the gradient of
    sum_i Q_i w.r.t. a_j is dQ_j/da_j.
    """
    with tf.GradientTape() as tape:
        tape.watch(mean)
        q = q_fn(obs, mean)
    return q, tape.gradient(q, mean)


FIT_STATS = ("loss", "mean_q", "oob_fraction", "target_mean_abs", "target_oob_mean_abs",
             "grad_norm", "max_abs_mu", "target_max_abs", "target_oob_max_abs", "grad_norm_max")
"""What :meth:`Critic.fit` reports over an iteration's updates (NaN when none ran):

- ``loss``: mean of the minibatches' mean squared TD error (whatever loss is minimised),
- ``mean_q``: mean Q_w(s, a),
- ``oob_fraction``: fraction of the bootstrap actions mu(s') (before any clipping) with a
  component outside the action bounds,
- ``target_mean_abs``, ``target_max_abs``: mean and largest |y|,
- ``target_oob_mean_abs``, ``target_oob_max_abs``: mean and largest |y| over the
  out-of-bounds mu(s') (NaN if none),
- ``grad_norm``, ``grad_norm_max``: mean and largest global norm of the TD loss's gradient
  (before ``grad_clip``),
- ``max_abs_mu``: the largest |component| of mu(s').
"""
_SUMS = ("loss", "mean_q", "oob_fraction", "target_mean_abs", "oob_target_abs_sum",
         "oob_count", "grad_norm")
_MAXES = ("max_abs_mu", "target_max_abs", "target_oob_max_abs", "grad_norm_max")


@dataclass(frozen=True)
class CriticOptions:
    """The fitting switches (issue 14); the defaults are the authors' critic.

    ``bounds`` = (low, high) of the action box: needed by ``target_clip`` and for the
    out-of-bounds statistics (without it nothing counts as out of bounds).
    """

    bounds: tuple[np.ndarray, np.ndarray] | None = None
    target_clip: bool = False
    loss: str = "mse"
    huber_delta: float = 1.0
    grad_clip: float = 0.0

    def __post_init__(self) -> None:
        if self.loss not in CRITIC_LOSSES:
            raise ValueError(f"unknown critic loss {self.loss!r}; valid: "
                             f"{', '.join(CRITIC_LOSSES)}")
        if not self.huber_delta > 0 or self.grad_clip < 0:
            raise ValueError("huber_delta must be > 0 and grad_clip >= 0")
        if self.target_clip and self.bounds is None:
            raise ValueError("target_clip needs the action bounds")


# ----------------------------------------------------------------------- the network
class QNetwork(keras.Model):
    """Q_w(s, a): ReLU MLP, action concatenated at the input of the second hidden layer."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (100, 100),
                 seed: int | None = None, name: str = "qf") -> None:
        super().__init__(name=name, dtype="float32")
        if len(hidden) < 2:
            raise ValueError("the action joins at the second hidden layer: need >= 2 layers")
        self.obs_dim = int(obs_dim)
        self.act_dim = int(act_dim)

        def init(i: int) -> keras.initializers.Initializer:
            return keras.initializers.GlorotUniform(seed=None if seed is None else seed + i)

        self.hidden_layers = [
            keras.layers.Dense(h, activation="relu", kernel_initializer=init(i),
                               bias_initializer="zeros", dtype="float32", name=f"h{i}")
            for i, h in enumerate(hidden)
        ]
        self.out_layer = keras.layers.Dense(1, kernel_initializer=init(len(hidden)),
                                            bias_initializer="zeros", dtype="float32",
                                            name="out")
        self.build(None)

    def build(self, input_shape: Any = None) -> None:
        shape: tuple[int | None, int] = (None, self.obs_dim)
        for i, layer in enumerate(self.hidden_layers):
            if i == 1:
                shape = (None, shape[1] + self.act_dim)
            layer.build(shape)
            shape = (None, layer.units)
        self.out_layer.build(shape)
        self.built = True

    def q(self, obs: tf.Tensor, act: tf.Tensor) -> tf.Tensor:
        """Q_w(s, a) as a [N] vector."""
        h = self.hidden_layers[0](obs)
        h = self.hidden_layers[1](tf.concat([h, act], axis=-1))
        for layer in self.hidden_layers[2:]:
            h = layer(h)
        return tf.squeeze(self.out_layer(h), axis=-1)

    def call(self, inputs: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        obs, act = inputs
        return self.q(obs, act)


# ----------------------------------------------------------------------- the critic
class Critic:
    """Online Q_w, target Q_w' (initialised equal), Adam, and the compiled fitting loop.

    ``fit`` does nothing (and returns NaN statistics) until the replay holds ``min_replay``
    transitions. ``jit_compile`` compiles the update loop with XLA: on one CPU thread about
    14k updates/s vs 5.9k/s without at Hopper dimensions, 4.8k vs 3.2k at Humanoid's; it
    costs ~1 s of compilation once and ~120-150 MB of resident memory (LLVM/XLA). See
    ``reproduce/bench/critic.py``. n_updates is a runtime input of the compiled loop: changing
    it neither retraces nor recompiles.

    ``options`` holds the fitting switches (:class:`CriticOptions`); ``target_policy``, a
    model of the policy's architecture holding its initial weights, turns on the lagged
    bootstrap policy of :meth:`fit` (its weights are part of this critic's state).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (100, 100),
                 lr: float = 1e-3, batch_size: int = 64, tau: float = 1e-3,
                 gamma: float = 0.99, min_replay: int = 1000, adam_epsilon: float = 1e-8,
                 jit_compile: bool = True, seed: int | None = None,
                 options: CriticOptions | None = None,
                 target_policy: keras.Model | None = None) -> None:
        self.obs_dim = int(obs_dim)
        self.act_dim = int(act_dim)
        self.batch_size = int(batch_size)
        self.tau = float(tau)
        self.gamma = float(gamma)
        self.min_replay = int(min_replay)
        self.jit_compile = bool(jit_compile)
        self.options = CriticOptions() if options is None else options
        bounds = self.options.bounds
        inf = np.full(act_dim, np.inf, np.float32)
        self.low = tf.constant(-inf if bounds is None else np.asarray(bounds[0], np.float32))
        self.high = tf.constant(inf if bounds is None else np.asarray(bounds[1], np.float32))
        self.target_policy = target_policy
        self.qf = QNetwork(obs_dim, act_dim, hidden, seed=seed, name="qf")
        self.target_qf = QNetwork(obs_dim, act_dim, hidden, seed=seed, name="target_qf")
        for t, s in zip(self.target_qf.weights, self.qf.weights, strict=True):
            t.assign(s)
        # epsilon 1e-8: the default of TF1's tf.train.AdamOptimizer, which the rllab-based
        # original code used (Keras' default is 1e-7).
        self.optimizer = keras.optimizers.Adam(learning_rate=lr, epsilon=adam_epsilon)
        self.optimizer.build(self.qf.trainable_variables)
        self._fit_fns: dict[tuple[int, int], tuple[Any, Any, Any]] = {}
        # Not XLA: N changes every batch and XLA would compile once per shape.
        self.q_and_grad = tf.function(
            self._q_and_grad, reduce_retracing=True,
            input_signature=[tf.TensorSpec([None, obs_dim], tf.float32),
                             tf.TensorSpec([None, act_dim], tf.float32)])

    # ------------------------------------------------------------------ state
    def _parts(self) -> dict[str, list[tf.Variable]]:
        parts = {"qf": self.qf.variables, "target_qf": self.target_qf.variables,
                 "qf_adam": self.optimizer.variables}
        if self.target_policy is not None:
            parts["target_policy"] = self.target_policy.variables
        return parts

    def get_state(self) -> dict[str, np.ndarray]:
        """The online and target weights and Adam's slots (``qf/i``, ``target_qf/i``,
        ``qf_adam/i``), and the lagged target policy's weights (``target_policy/i``)."""
        state: dict[str, np.ndarray] = {}
        for name, variables in self._parts().items():
            state.update(variables_state(name, variables))
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        for name, variables in self._parts().items():
            assign_variables(name, variables, state)

    # ------------------------------------------------------------------ pieces
    def bootstrap_action(self, next_obs: tf.Tensor, policy: keras.Model
                         ) -> tuple[tf.Tensor, tf.Tensor]:
        """(mu(s') as the policy gives it, the action the TD target evaluates Q_w' at):
        clipped to the bounds with ``target_clip``, else the same."""
        mu = policy(next_obs)
        return mu, clip_action(mu, self.low, self.high) if self.options.target_clip else mu

    def td_targets(self, rew: tf.Tensor, terminal: tf.Tensor, next_obs: tf.Tensor,
                   policy: keras.Model) -> tf.Tensor:
        """y = r + gamma * (1 - terminal) * Q_w'(s', mu_theta(s')) for a minibatch."""
        _, a_next = self.bootstrap_action(next_obs, policy)
        return td_target(rew, terminal, self.target_qf.q(next_obs, a_next), self.gamma)

    def _loss(self, y: tf.Tensor, q: tf.Tensor) -> tf.Tensor:
        if self.options.loss == "huber":
            return huber_loss(y, q, self.options.huber_delta)
        return squared_loss(y, q)

    def _step(self, obs: tf.Tensor, act: tf.Tensor, rew: tf.Tensor, done: tf.Tensor,
              next_obs: tf.Tensor, policy: keras.Model) -> dict[str, tf.Tensor]:
        """One TD step on a minibatch (in-graph): TD loss, Adam step, soft target update;
        the minibatch's statistics (the names of ``_SUMS`` and ``_MAXES``)."""
        mu, a_next = self.bootstrap_action(next_obs, policy)
        y = td_target(rew, done, self.target_qf.q(next_obs, a_next), self.gamma)
        variables = self.qf.trainable_variables
        with tf.GradientTape() as tape:
            q = self.qf.q(obs, act)
            loss = self._loss(y, q)
        grads = tape.gradient(loss, variables)
        grad_norm = tf.linalg.global_norm(grads)
        if self.options.grad_clip > 0:
            grads, _ = tf.clip_by_global_norm(grads, self.options.grad_clip,
                                              use_norm=grad_norm)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        soft_update(self.target_qf.trainable_variables, variables, self.tau)
        oob = out_of_bounds(mu, self.low, self.high)
        abs_y = tf.abs(y)
        mse = loss if self.options.loss == "mse" else squared_loss(y, q)
        return {"loss": mse, "mean_q": tf.reduce_mean(q), "oob_fraction": tf.reduce_mean(oob),
                "target_mean_abs": tf.reduce_mean(abs_y),
                "oob_target_abs_sum": tf.reduce_sum(oob * abs_y),
                "oob_count": tf.reduce_sum(oob), "grad_norm": grad_norm,
                "max_abs_mu": tf.reduce_max(tf.abs(mu)), "target_max_abs": tf.reduce_max(abs_y),
                "target_oob_max_abs": tf.reduce_max(oob * abs_y), "grad_norm_max": grad_norm}

    def update_on_batch(self, obs: tf.Tensor, act: tf.Tensor, rew: tf.Tensor, done: tf.Tensor,
                        next_obs: tf.Tensor, policy: keras.Model
                        ) -> tuple[tf.Tensor, tf.Tensor]:
        """One TD step on a given minibatch (in-graph): TD loss, Adam step, soft target update.

        ``policy`` gives the bootstrap action mu(s'): Q-Prop passes the current policy, DDPG
        its target actor. Returns (TD loss, mean Q_w(s, a)).
        """
        stats = self._step(obs, act, rew, done, next_obs, policy)
        return stats["loss"], stats["mean_q"]

    def _update(self, replay: ReplayBuffer, policy: keras.Model
                ) -> tuple[tf.Tensor, tf.Tensor]:
        """One minibatch step of :meth:`fit`: sample, TD step with the bootstrap policy (the
        lagged one if any, then moved towards ``policy``); (sums, maxes) of its statistics."""
        lagged = self.target_policy
        stats = self._step(*replay.sample(self.batch_size),
                           policy if lagged is None else lagged)
        if lagged is not None:
            soft_update(lagged.trainable_variables, policy.trainable_variables, self.tau)
        return (tf.stack([stats[k] for k in _SUMS]), tf.stack([stats[k] for k in _MAXES]))

    def _make_fit_fn(self, replay: ReplayBuffer, policy: keras.Model) -> Any:
        # An explicit tf.while_loop rather than `for _ in tf.range(n)`: under XLA, AutoGraph
        # gives a tf.range loop `maximum_iterations=n`, which makes n a compile-time constant,
        # so every new n_updates (it follows the batch size) would recompile (~1 s).
        def fit_loop(n_updates: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            def cond(i: tf.Tensor, sums: tf.Tensor, maxes: tf.Tensor) -> tf.Tensor:
                return i < n_updates

            def body(i: tf.Tensor, sums: tf.Tensor, maxes: tf.Tensor
                     ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
                step_sums, step_maxes = self._update(replay, policy)
                return i + 1, sums + step_sums, tf.maximum(maxes, step_maxes)

            _, sums, maxes = tf.while_loop(
                cond, body, (tf.constant(0), tf.zeros([len(_SUMS)]), tf.zeros([len(_MAXES)])))
            return sums, maxes

        return tf.function(fit_loop, jit_compile=self.jit_compile,
                           input_signature=[tf.TensorSpec([], tf.int32)])

    def fit_function(self, replay: ReplayBuffer, policy: keras.Model) -> Any:
        """The compiled loop ``f(n_updates: int32 scalar) -> (sums, maxes)`` of the updates'
        statistics (``_SUMS``, ``_MAXES``)."""
        key = (id(replay), id(policy))
        entry = self._fit_fns.get(key)
        if entry is None or entry[0] is not replay or entry[1] is not policy:
            entry = (replay, policy, self._make_fit_fn(replay, policy))
            self._fit_fns[key] = entry
        return entry[2]

    # ------------------------------------------------------------------ public
    def fit(self, replay: ReplayBuffer, policy: keras.Model, n_updates: int
            ) -> dict[str, float]:
        """Run ``n_updates`` minibatch TD updates in one compiled call.

        Returns the statistics of :data:`FIT_STATS` over the updates' minibatches and
        ``n_updates``; NaN statistics (and no update) while the replay holds fewer than
        ``min_replay`` transitions.
        """
        if replay.size < self.min_replay or n_updates <= 0:
            return {**dict.fromkeys(FIT_STATS, float("nan")), "n_updates": 0}
        sums, maxes = self.fit_function(replay, policy)(tf.constant(n_updates, tf.int32))
        # float32 division, as the means were computed in-graph before these statistics
        total = dict(zip(_SUMS, sums.numpy(), strict=True))
        out = {k: float(total[k] / np.float32(n_updates)) for k in _SUMS if k in FIT_STATS}
        out.update(zip(_MAXES, maxes.numpy().astype(np.float64).tolist(), strict=True))
        if total["oob_count"] > 0:
            out["target_oob_mean_abs"] = float(total["oob_target_abs_sum"] / total["oob_count"])
        else:
            out["target_oob_mean_abs"] = out["target_oob_max_abs"] = float("nan")
        return {**{k: out[k] for k in FIT_STATS}, "n_updates": int(n_updates)}

    def _q_and_grad(self, obs: tf.Tensor, mean: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """:func:`q_and_action_gradient` of the online critic, compiled as
        ``self.q_and_grad``: shapes [N] and [N, act_dim]."""
        return q_and_action_gradient(self.qf.q, obs, mean)

    def q_values(self, obs: tf.Tensor | np.ndarray, act: tf.Tensor | np.ndarray) -> tf.Tensor:
        """Q_w(s, a) with the online critic (eager; for evaluation and tests)."""
        return self.qf.q(tf.convert_to_tensor(obs, tf.float32),
                         tf.convert_to_tensor(act, tf.float32))
