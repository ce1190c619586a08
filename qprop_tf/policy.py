"""The Gaussian MLP policy (Keras) and its NumPy mirror for rollouts.

pi_theta(a|s) = N(mu_theta(s), diag(exp(log_std))^2), mu_theta a 100-50-25 tanh MLP with a
linear output, log_std a state-independent parameter starting at log(1.0).
Distribution, log-prob, entropy and KL come from tensorflow-probability.

Rollouts never call TF per env step: :class:`NumpyPolicy` holds a copy of the weights
and computes the mean in NumPy (about 10 us a call); it is re-synced after every update.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def kernel_initializer(init: str, gain: float) -> keras.initializers.Initializer | str:
    """Weights of one Dense layer: ``glorot`` (Glorot-uniform, the authors' rllab default;
    ``gain`` ignored) or ``orthogonal`` (W = gain * Q, Q orthogonal; sb3 / OpenAI baselines
    use gain sqrt(2) on tanh hidden layers, 0.01 on the policy's mean output, 1 on V's)."""
    if init == "glorot":
        return "glorot_uniform"
    if init == "orthogonal":
        return keras.initializers.Orthogonal(gain=gain)
    raise ValueError(f"unknown init {init!r}; valid: glorot, orthogonal")


HIDDEN_GAIN = math.sqrt(2.0)
MEAN_OUTPUT_GAIN = 0.01


class GaussianMLPPolicy(keras.Model):
    """Gaussian policy with a tanh MLP mean and a state-independent log-std."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (100, 50, 25),
                 init_std: float = 1.0, activation: str = "tanh", dtype: str = "float32",
                 name: str = "policy", init: str = "glorot") -> None:
        super().__init__(name=name, dtype=dtype)
        self.obs_dim = obs_dim
        self.act_dim = act_dim
        self.hidden_layers = [
            keras.layers.Dense(h, activation=activation,
                               kernel_initializer=kernel_initializer(init, HIDDEN_GAIN),
                               dtype=dtype, name=f"h{i}")
            for i, h in enumerate(hidden)
        ]
        self.mean_layer = keras.layers.Dense(
            act_dim, kernel_initializer=kernel_initializer(init, MEAN_OUTPUT_GAIN), dtype=dtype,
            name="mean")
        self.log_std = self.add_weight(
            shape=(act_dim,), initializer=keras.initializers.Constant(math.log(init_std)),
            name="log_std", dtype=dtype)
        self.build((None, obs_dim))

    def build(self, input_shape: tuple) -> None:
        shape = input_shape
        for layer in self.hidden_layers:
            layer.build(shape)
            shape = (None, layer.units)
        self.mean_layer.build(shape)
        self.built = True

    def call(self, obs: tf.Tensor) -> tf.Tensor:
        """mu_theta(s): the mean action."""
        h = obs
        for layer in self.hidden_layers:
            h = layer(h)
        return self.mean_layer(h)

    def distribution(self, mean: tf.Tensor, log_std: tf.Tensor | None = None
                     ) -> tfd.Distribution:
        """N(mean, diag(exp(log_std))^2) as a tfp distribution over the action vector."""
        log_std = self.log_std if log_std is None else log_std
        return tfd.MultivariateNormalDiag(loc=mean, scale_diag=tf.exp(log_std))

    def export(self) -> dict[str, Any]:
        """Everything needed to act, as plain arrays (:mod:`qprop_tf.saved_policy`): the
        dense layers input to output with their activations; the mean is the last layer's
        output (center 0, scale 1); and the log-std."""
        layers = [*self.hidden_layers, self.mean_layer]
        return {"kind": "gaussian",
                "layers": [(layer.kernel.numpy(), layer.bias.numpy(),
                            str(layer.get_config()["activation"])) for layer in layers],
                "center": np.zeros(self.act_dim, np.float32),
                "scale": np.ones(self.act_dim, np.float32),
                "log_std": self.log_std.numpy()}


class NumpyPolicy:
    """A NumPy copy of a :class:`GaussianMLPPolicy` for fast per-step action sampling."""

    def __init__(self, policy: GaussianMLPPolicy) -> None:
        self.policy = policy
        self.sync()

    def sync(self) -> None:
        """Copy the Keras weights (call after every policy update)."""
        self.layers = [(layer.kernel.numpy().astype(np.float64),
                        layer.bias.numpy().astype(np.float64))
                       for layer in self.policy.hidden_layers]
        self.out_w = self.policy.mean_layer.kernel.numpy().astype(np.float64)
        self.out_b = self.policy.mean_layer.bias.numpy().astype(np.float64)
        self.log_std = self.policy.log_std.numpy().astype(np.float64)
        self.std = np.exp(self.log_std)

    def mean(self, obs: np.ndarray) -> np.ndarray:
        """mu(s) in NumPy: tanh layers, then the linear output layer."""
        h = obs
        for w, b in self.layers:
            h = h @ w
            h += b
            np.tanh(h, out=h)
        out = h @ self.out_w
        out += self.out_b
        return out

    def log_prob_from_noise(self, noise: np.ndarray) -> np.ndarray:
        """log N(mu + std*eps | mu, std^2) = -|eps|^2/2 - sum(log_std) - d/2 log(2 pi)."""
        d = noise.shape[-1]
        return (-0.5 * np.sum(noise**2, axis=-1) - np.sum(self.log_std)
                - 0.5 * d * math.log(2 * math.pi))

    def sample(self, obs: np.ndarray, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (action, mean, noise) for a batch of observations: a = mu + std * noise."""
        mu = self.mean(obs)
        noise = rng.standard_normal(mu.shape)
        return mu + self.std * noise, mu, noise
