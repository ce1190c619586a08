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
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

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
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (100, 100),
                 lr: float = 1e-3, batch_size: int = 64, tau: float = 1e-3,
                 gamma: float = 0.99, min_replay: int = 1000, adam_epsilon: float = 1e-8,
                 jit_compile: bool = True, seed: int | None = None) -> None:
        self.obs_dim = int(obs_dim)
        self.act_dim = int(act_dim)
        self.batch_size = int(batch_size)
        self.tau = float(tau)
        self.gamma = float(gamma)
        self.min_replay = int(min_replay)
        self.jit_compile = bool(jit_compile)
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
        return {"qf": self.qf.variables, "target_qf": self.target_qf.variables,
                "qf_adam": self.optimizer.variables}

    def get_state(self) -> dict[str, np.ndarray]:
        """The online and target weights and Adam's slots (``qf/i``, ``target_qf/i``,
        ``qf_adam/i``)."""
        state: dict[str, np.ndarray] = {}
        for name, variables in self._parts().items():
            state.update(variables_state(name, variables))
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        for name, variables in self._parts().items():
            assign_variables(name, variables, state)

    # ------------------------------------------------------------------ pieces
    def td_targets(self, rew: tf.Tensor, terminal: tf.Tensor, next_obs: tf.Tensor,
                   policy: keras.Model) -> tf.Tensor:
        """y = r + gamma * (1 - terminal) * Q_w'(s', mu_theta(s')) for a minibatch."""
        q_next = self.target_qf.q(next_obs, policy(next_obs))
        return td_target(rew, terminal, q_next, self.gamma)

    def _update(self, replay: ReplayBuffer, policy: keras.Model) -> tuple[tf.Tensor, tf.Tensor]:
        """One minibatch step: sample, TD loss, Adam step, soft target update."""
        return self.update_on_batch(*replay.sample(self.batch_size), policy)

    def update_on_batch(self, obs: tf.Tensor, act: tf.Tensor, rew: tf.Tensor, done: tf.Tensor,
                        next_obs: tf.Tensor, policy: keras.Model
                        ) -> tuple[tf.Tensor, tf.Tensor]:
        """One TD step on a given minibatch (in-graph): TD loss, Adam step, soft target update.

        ``policy`` gives the bootstrap action mu(s'): Q-Prop passes the current policy, DDPG
        its target actor. Returns (TD loss, mean Q_w(s, a)).
        """
        y = self.td_targets(rew, done, next_obs, policy)
        variables = self.qf.trainable_variables
        with tf.GradientTape() as tape:
            q = self.qf.q(obs, act)
            loss = tf.reduce_mean(tf.square(y - q))
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        soft_update(self.target_qf.trainable_variables, variables, self.tau)
        return loss, tf.reduce_mean(q)

    def _make_fit_fn(self, replay: ReplayBuffer, policy: keras.Model) -> Any:
        # An explicit tf.while_loop rather than `for _ in tf.range(n)`: under XLA, AutoGraph
        # gives a tf.range loop `maximum_iterations=n`, which makes n a compile-time constant,
        # so every new n_updates (it follows the batch size) would recompile (~1 s).
        def fit_loop(n_updates: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            def cond(i: tf.Tensor, loss_sum: tf.Tensor, q_sum: tf.Tensor) -> tf.Tensor:
                return i < n_updates

            def body(i: tf.Tensor, loss_sum: tf.Tensor, q_sum: tf.Tensor
                     ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
                loss, mean_q = self._update(replay, policy)
                return i + 1, loss_sum + loss, q_sum + mean_q

            _, loss_sum, q_sum = tf.while_loop(
                cond, body, (tf.constant(0), tf.constant(0.0), tf.constant(0.0)))
            n = tf.cast(tf.maximum(n_updates, 1), tf.float32)
            return loss_sum / n, q_sum / n

        return tf.function(fit_loop, jit_compile=self.jit_compile,
                           input_signature=[tf.TensorSpec([], tf.int32)])

    def fit_function(self, replay: ReplayBuffer, policy: keras.Model) -> Any:
        """The compiled loop ``f(n_updates: int32 scalar) -> (mean loss, mean Q)``."""
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

        Returns the mean TD loss and mean Q_w(s, a) over the updates' minibatches, NaN for
        both (and no update) while the replay holds fewer than ``min_replay`` transitions.
        """
        if replay.size < self.min_replay or n_updates <= 0:
            return {"loss": float("nan"), "mean_q": float("nan"), "n_updates": 0}
        loss, mean_q = self.fit_function(replay, policy)(tf.constant(n_updates, tf.int32))
        return {"loss": float(loss), "mean_q": float(mean_q), "n_updates": int(n_updates)}

    def _q_and_grad(self, obs: tf.Tensor, mean: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """:func:`q_and_action_gradient` of the online critic, compiled as
        ``self.q_and_grad``: shapes [N] and [N, act_dim]."""
        return q_and_action_gradient(self.qf.q, obs, mean)

    def q_values(self, obs: tf.Tensor | np.ndarray, act: tf.Tensor | np.ndarray) -> tf.Tensor:
        """Q_w(s, a) with the online critic (eager; for evaluation and tests)."""
        return self.qf.q(tf.convert_to_tensor(obs, tf.float32),
                         tf.convert_to_tensor(act, tf.float32))
