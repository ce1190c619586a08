"""A one-step bandit with a known policy gradient, to test the Q-Prop estimator.

Contexts s ~ N(0, I) (or a single fixed context), a linear-Gaussian policy
a ~ N(W s + b, diag(sigma^2)) (our GaussianMLPPolicy with no hidden layer), and a quadratic
reward r(s, a) = -||a - (A s + c)||^2. Then

    J(theta) = E_s[ -||mu(s) - a*(s)||^2 ] - sum_j sigma_j^2
    dJ/dW = -2 E[(mu(s) - a*(s)) s^T] = -2 (W - A),  dJ/db = -2 (b - c),
    dJ/dlog sigma_j = -2 sigma_j^2

(the expectations use E[s] = 0, E[s s^T] = I). ``python -m reproduce.bandit`` prints each
eta rule's measured bias and variance against the true gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from qprop_tf.critic import q_and_action_gradient
from qprop_tf.optim import flatten, surrogate_loss
from qprop_tf.policy import GaussianMLPPolicy
from qprop_tf.qprop import (
    compute_eta,
    qprop_analytic_loss,
    qprop_learning_signal,
    taylor_control_variate,
)


@dataclass
class Bandit:
    obs_dim: int = 2
    act_dim: int = 2
    sigma: float = 0.5
    context: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self.A = rng.standard_normal((self.act_dim, self.obs_dim)) if self.context else np.zeros(
            (self.act_dim, self.obs_dim))
        self.c = rng.standard_normal(self.act_dim)
        tf.keras.utils.set_random_seed(self.seed)
        self.policy = GaussianMLPPolicy(self.obs_dim, self.act_dim, hidden=(),
                                        init_std=self.sigma, dtype="float64")
        self.W = self.policy.mean_layer.kernel.numpy().T  # mean = s @ kernel + bias
        self.b = self.policy.mean_layer.bias.numpy()

    # ----------------------------------------------------------------- the known answer
    def true_gradient(self) -> np.ndarray:
        """dJ/dtheta in the order of policy.trainable_variables (kernel, bias, log_std)."""
        grads = {id(self.policy.mean_layer.kernel): (-2 * (self.W - self.A)).T,
                 id(self.policy.mean_layer.bias): -2 * (self.b - self.c),
                 id(self.policy.log_std): -2 * self.sigma**2 * np.ones(self.act_dim)}
        return np.concatenate([np.ravel(grads[id(v)]) for v in self.policy.trainable_variables])

    def true_q(self, obs: tf.Tensor, act: tf.Tensor) -> tf.Tensor:
        """Q(s, a) = r(s, a) = -||a - (A s + c)||^2 (one step: Q is the reward)."""
        target = tf.matmul(obs, tf.constant(self.A.T)) + tf.constant(self.c)
        return -tf.reduce_sum(tf.square(act - target), axis=-1)

    def wrong_q(self, seed: int = 1) -> callable:
        """A deliberately wrong critic: a random quadratic in a, unrelated to the reward."""
        rng = np.random.default_rng(1000 + seed)
        w0 = tf.constant(rng.standard_normal(self.act_dim) * 3)
        m = rng.standard_normal((self.act_dim, self.act_dim))
        mm = tf.constant(m @ m.T)
        ws = tf.constant(rng.standard_normal((self.obs_dim, self.act_dim)))

        def q(obs: tf.Tensor, act: tf.Tensor) -> tf.Tensor:
            quad = tf.reduce_sum(tf.matmul(act, mm) * act, axis=-1)
            return tf.reduce_sum(act * w0, -1) + 0.5 * quad + tf.reduce_sum(
                tf.matmul(obs, ws) * act, -1)

        return q

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        obs = rng.standard_normal((n, self.obs_dim)) if self.context else np.zeros(
            (n, self.obs_dim))
        mean = obs @ self.W.T + self.b
        act = mean + self.sigma * rng.standard_normal(mean.shape)
        target = obs @ self.A.T + self.c
        rew = -np.sum((act - target) ** 2, axis=1)
        value = -np.sum((mean - target) ** 2, axis=1) - self.act_dim * self.sigma**2
        return {"obs": obs, "act": act, "mean": mean, "rew": rew, "value": value}

    # ----------------------------------------------------------------- the estimators
    def estimates(self, rule: str | None, q_fn, n_batches: int, batch_size: int,
                  use_baseline: bool = False, seed: int = 0, analytic: bool = True
                  ) -> dict[str, np.ndarray]:
        """Per-batch gradient estimates of the plain MC estimator (rule None) or Q-Prop.

        A_hat = r (or r - V(s) with the exact V if ``use_baseline``). Every sample is its own
        path, so the adaptive rule cross-fits over alternate samples. ``analytic=False`` drops
        the analytic critic term (a broken estimator, for testing the tests). Returns the estimates
        [n_batches, n_params] and, for the variance analysis, the per-sample terms
        f = grad log pi * A_hat and f_bar = grad log pi * A_bar of the last batch.
        """
        policy = self.policy
        variables = policy.trainable_variables
        rng = np.random.default_rng(seed)

        @tf.function
        def grad_fn(obs, act, signal, eta, use_q):
            old = policy.distribution(policy(obs))
            old_logp = tf.stop_gradient(old.log_prob(act))
            with tf.GradientTape() as tape:
                mean = policy(obs)
                loss = surrogate_loss(policy.distribution(mean), old_logp, act, signal)
                if use_q:
                    loss = loss + qprop_analytic_loss(q_fn, obs, mean, eta)
            return -flatten(tape.gradient(loss, variables))

        @tf.function
        def taylor(obs, mean):
            return q_and_action_gradient(q_fn, obs, mean)

        out = []
        for _ in range(n_batches):
            d = self.sample(batch_size, rng)
            adv = d["rew"] - d["value"] if use_baseline else d["rew"]
            if rule is None:
                signal, eta = adv, np.zeros_like(adv)
            else:
                _, dq = taylor(tf.constant(d["obs"]), tf.constant(d["mean"]))
                a_bar = taylor_control_variate(dq.numpy(), d["act"], d["mean"])
                eta = compute_eta(rule, adv, a_bar, np.arange(batch_size))
                signal = qprop_learning_signal(adv, eta, a_bar)
            g = grad_fn(tf.constant(d["obs"]), tf.constant(d["act"]), tf.constant(signal),
                        tf.constant(eta), tf.constant(rule is not None and analytic))
            out.append(g.numpy())
        return {"estimates": np.array(out)}

    def per_sample_terms(self, q_fn, n: int, use_baseline: bool, seed: int = 0
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """f_i = grad log pi(a_i|s_i) * A_hat_i and f_bar_i = grad log pi * A_bar_i (closed form
        score of the linear-Gaussian policy), plus A_hat and A_bar, for n samples."""
        d = self.sample(n, np.random.default_rng(seed))
        adv = d["rew"] - d["value"] if use_baseline else d["rew"]
        _, dq = q_and_action_gradient(q_fn, tf.constant(d["obs"]), tf.constant(d["mean"]))
        a_bar = taylor_control_variate(dq.numpy(), d["act"], d["mean"])
        eps = (d["act"] - d["mean"]) / self.sigma
        score_mean = eps / self.sigma                                  # d log pi / d mu
        score_kernel = (d["obs"][:, :, None] * score_mean[:, None, :]).reshape(n, -1)
        score_logstd = eps**2 - 1
        score = np.concatenate([score_kernel, score_mean, score_logstd], axis=1)
        return score * adv[:, None], score * a_bar[:, None], adv, a_bar


def report(n_batches: int = 400, batch_size: int = 100) -> str:
    """Bias (in standard errors) and variance of each eta rule on the bandit."""
    lines = ["| critic | eta rule | max abs bias | max bias / s.e. | total variance vs MC |",
             "|---|---|---|---|---|"]
    bandit = Bandit()
    true = bandit.true_gradient()
    for critic_name, q_fn in (("true Q", bandit.true_q), ("wrong Q", bandit.wrong_q())):
        mc = bandit.estimates(None, q_fn, n_batches, batch_size, seed=1)["estimates"]
        for rule in (None, "ones", "conservative", "aggressive", "adaptive"):
            est = mc if rule is None else bandit.estimates(
                rule, q_fn, n_batches, batch_size, seed=1)["estimates"]
            bias = est.mean(0) - true
            se = est.std(0, ddof=1) / np.sqrt(n_batches)
            lines.append(f"| {critic_name} | {rule or 'none (MC)'} | {np.abs(bias).max():.3f} | "
                         f"{np.max(np.abs(bias) / se):.1f} | "
                         f"{est.var(0).sum() / mc.var(0).sum():.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
