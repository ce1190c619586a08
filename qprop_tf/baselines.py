"""State-value baselines V(s) for GAE: the authors' linear feature baseline, or an MLP.

Both expose ``predict(obs, t)``, ``fit(obs, t, returns)`` and ``get_state()`` /
``set_state()``; ``t`` is the step index within the episode (the linear baseline's time
features use it, the MLP ignores it).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from qprop_tf.policy import HIDDEN_GAIN, kernel_initializer


def linear_features(obs: np.ndarray, t: np.ndarray) -> np.ndarray:
    """rllab's LinearFeatureBaseline features.

    phi(s, t) = [clip(s, -10, 10), clip(s, -10, 10)^2, t/100, (t/100)^2, (t/100)^3, 1]
    """
    o = np.clip(np.asarray(obs, dtype=np.float64), -10.0, 10.0)
    al = (np.asarray(t, dtype=np.float64) / 100.0)[:, None]
    return np.concatenate([o, o**2, al, al**2, al**3, np.ones_like(al)], axis=1)


class LinearFeatureBaseline:
    """Ridge regression on :func:`linear_features`, refitted on each batch's returns.

    w = argmin ||Phi w - R||^2 + reg ||w||^2 = (Phi^T Phi + reg I)^-1 Phi^T R; as in rllab,
    reg is multiplied by 10 (up to 5 times) if the solution is not finite.
    """

    def __init__(self, obs_dim: int, reg: float = 1e-5) -> None:
        self.reg = reg
        self.coeffs = np.zeros(2 * obs_dim + 4)

    def predict(self, obs: np.ndarray, t: np.ndarray) -> np.ndarray:
        return linear_features(obs, t) @ self.coeffs

    def fit(self, obs: np.ndarray, t: np.ndarray, returns: np.ndarray) -> None:
        phi = linear_features(obs, t)
        a = phi.T @ phi
        b = phi.T @ np.asarray(returns, dtype=np.float64)
        reg = self.reg
        eye = np.eye(a.shape[0])
        for _ in range(5):
            coeffs = np.linalg.lstsq(a + reg * eye, b, rcond=None)[0]
            if np.all(np.isfinite(coeffs)):
                self.coeffs = coeffs
                return
            reg *= 10.0

    def get_state(self) -> dict[str, np.ndarray]:
        return {"coeffs": self.coeffs.copy()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.coeffs = np.asarray(state["coeffs"], dtype=np.float64).copy()


class MLPBaseline:
    """V(s) as a tanh MLP fitted by Adam on mean squared error to the given targets.

    Each fit is one compiled call, minibatch indices drawn in the graph, either
    ``updates`` minibatches sampled with replacement (``epochs`` = 0) or ``epochs`` passes
    over a fresh random permutation of the batch in minibatches of ``minibatch`` (the last
    one partial), as sb3 fits its value net. With ``normalize_targets`` the targets are
    standardised with the batch's mean and std and the network predicts in that scale
    (rescaled on predict; the previous fit's outputs are reinterpreted in the new scale);
    without, it regresses the raw targets.
    """

    def __init__(self, obs_dim: int, hidden: tuple[int, ...] = (64, 64), lr: float = 1e-3,
                 updates: int = 100, minibatch: int = 256, seed: int = 0, epochs: int = 0,
                 normalize_targets: bool = True, init: str = "glorot") -> None:
        self.model = keras.Sequential(
            [keras.Input((obs_dim,))]
            + [keras.layers.Dense(h, activation="tanh",
                                  kernel_initializer=kernel_initializer(init, HIDDEN_GAIN))
               for h in hidden]
            + [keras.layers.Dense(1, kernel_initializer=kernel_initializer(init, 1.0))])
        self.optimizer = keras.optimizers.Adam(lr)
        self.optimizer.build(self.model.trainable_variables)
        self.updates = updates
        self.minibatch = minibatch
        self.epochs = epochs
        self.normalize_targets = normalize_targets
        self.ret_mean = tf.Variable(0.0, trainable=False)
        self.ret_std = tf.Variable(1.0, trainable=False)
        # A generator whose state is a variable, so a checkpoint restores the minibatches.
        self.rng = tf.random.Generator.from_seed(seed)
        self._predict = tf.function(self._predict_impl, reduce_retracing=True)
        self._fit = tf.function(self._fit_impl, reduce_retracing=True)

    def _predict_impl(self, obs: tf.Tensor) -> tf.Tensor:
        return self.model(obs)[:, 0] * self.ret_std + self.ret_mean

    def _step(self, obs: tf.Tensor, target: tf.Tensor, idx: tf.Tensor) -> tf.Tensor:
        """One Adam step on mean((V(s_i) - y_i)^2) over the minibatch ``idx``."""
        with tf.GradientTape() as tape:
            pred = self.model(tf.gather(obs, idx))[:, 0]
            loss = tf.reduce_mean(tf.square(pred - tf.gather(target, idx)))
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables, strict=True))
        return loss

    def _fit_impl(self, obs: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
        n = tf.shape(obs)[0]
        loss = tf.constant(0.0)
        if self.epochs > 0:
            n_batches = (n + self.minibatch - 1) // self.minibatch
            for _ in tf.range(self.epochs):
                perm = tf.argsort(self.rng.uniform([n]))
                for i in tf.range(n_batches):
                    idx = perm[i * self.minibatch:tf.minimum((i + 1) * self.minibatch, n)]
                    loss = self._step(obs, target, idx)
            return loss
        for _ in tf.range(self.updates):
            idx = self.rng.uniform([self.minibatch], 0, n, dtype=tf.int32)
            loss = self._step(obs, target, idx)
        return loss

    def predict(self, obs: np.ndarray, t: np.ndarray) -> np.ndarray:
        return self._predict(tf.convert_to_tensor(obs, tf.float32)).numpy().astype(np.float64)

    def fit(self, obs: np.ndarray, t: np.ndarray, returns: np.ndarray) -> None:
        target = np.asarray(returns, dtype=np.float64)
        if self.normalize_targets:
            mean, std = float(np.mean(returns)), float(np.std(returns) + 1e-8)
            self.ret_mean.assign(mean)
            self.ret_std.assign(std)
            target = (target - mean) / std
        target = target.astype(np.float32)
        self._fit(tf.convert_to_tensor(obs, tf.float32), tf.convert_to_tensor(target))

    def _variables(self) -> list[tf.Variable]:
        return [*self.model.variables, *self.optimizer.variables, self.ret_mean,
                self.ret_std, self.rng.state]

    def get_state(self) -> dict[str, np.ndarray]:
        """Weights, Adam slots, the target scaling and the minibatch generator."""
        return {str(i): np.array(v.numpy()) for i, v in enumerate(self._variables())}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        for i, v in enumerate(self._variables()):
            v.assign(state[str(i)])
