"""DDPG's deterministic actor mu_theta, its NumPy mirror for acting, and its loss.

mu_theta(s) = c + h * tanh(MLP(s)), an MLP 100-50-25 with ReLU (the authors'
``DeterministicMLPPolicy``, rllabplusplus ``launcher_stub_utils.py``), c = (high + low) / 2,
h = (high - low) / 2; Glorot-uniform weights, zero biases (as the critic).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from qprop_tf.critic import QNetwork


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

    def export(self) -> dict[str, Any]:
        """Everything needed to act, as plain arrays (:mod:`qprop_tf.saved_policy`): the
        dense layers input to output with their activations, then a = center + scale * out."""
        layers = [*self.hidden_layers, self.out_layer]
        return {"kind": "deterministic",
                "layers": [(layer.kernel.numpy(), layer.bias.numpy(),
                            str(layer.get_config()["activation"])) for layer in layers],
                "center": self.center.copy(), "scale": self.half_range.copy()}

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
