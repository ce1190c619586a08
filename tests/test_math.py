"""Conjugate gradient, the Fisher-vector product, GAE and the linear baseline."""

import numpy as np
import pytest
import tensorflow as tf

from qprop_tf.advantages import (
    discounted_returns,
    gae_advantages,
    path_end_values,
    standardize,
)
from qprop_tf.baselines import LinearFeatureBaseline, linear_features
from qprop_tf.optim import conjugate_gradient, fisher_vector_product, flatten, mean_kl
from qprop_tf.policy import GaussianMLPPolicy


def test_conjugate_gradient_solves_random_spd_system():
    rng = np.random.default_rng(0)
    n = 12
    m = rng.standard_normal((n, n))
    a = m @ m.T + n * np.eye(n)
    b = rng.standard_normal(n)
    a_tf = tf.constant(a)
    x = conjugate_gradient(lambda v: tf.linalg.matvec(a_tf, v), tf.constant(b), iters=n,
                           residual_tol=1e-24)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a, b), rtol=1e-8, atol=1e-10)


def test_conjugate_gradient_inside_tf_function_matches_eager():
    rng = np.random.default_rng(1)
    m = rng.standard_normal((6, 6)).astype(np.float32)
    a = tf.constant(m @ m.T + 6 * np.eye(6, dtype=np.float32))
    b = tf.constant(rng.standard_normal(6).astype(np.float32))

    @tf.function
    def solve(b):
        return conjugate_gradient(lambda v: tf.linalg.matvec(a, v), b, iters=10)

    np.testing.assert_allclose(solve(b).numpy(), np.linalg.solve(a.numpy(), b.numpy()),
                               rtol=1e-4, atol=1e-5)


def _tiny_policy():
    tf.keras.utils.set_random_seed(3)
    policy = GaussianMLPPolicy(3, 2, hidden=(4,), init_std=0.7, dtype="float64")
    policy.log_std.assign(np.array([-0.3, 0.2]))
    obs = tf.constant(np.random.default_rng(0).standard_normal((7, 3)))
    return policy, obs


def test_fisher_vector_product_matches_dense_fisher():
    policy, obs = _tiny_policy()
    variables = policy.trainable_variables
    old_mean = tf.stop_gradient(policy(obs))
    old_dist = policy.distribution(old_mean, tf.stop_gradient(tf.identity(policy.log_std)))

    def kl_fn():
        return mean_kl(old_dist, policy.distribution(policy(obs)))

    # dense Fisher = Hessian of the mean KL at theta_old, by autodiff (jacobian of gradient)
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            kl = kl_fn()
        grad = flatten(inner.gradient(kl, variables))
    hess = outer.jacobian(grad, variables)
    n = int(grad.shape[0])
    dense = tf.concat([tf.reshape(h, [n, -1]) for h in hess], axis=1).numpy()

    # independent check: the Gaussian Fisher J^T diag(1/sigma^2) J (mean) + 2 I (log-std)
    with tf.GradientTape(persistent=True) as tape:
        mean = policy(obs)
    blocks = []
    for var in variables:
        if var is policy.log_std:
            blocks.append(np.zeros((7, 2, 2)))
        else:
            blocks.append(tf.reshape(tape.jacobian(mean, var), [7, 2, -1]).numpy())
    j = np.concatenate(blocks, axis=2)
    inv_var = np.exp(-2 * policy.log_std.numpy())
    analytic = np.einsum("bip,i,biq->pq", j, inv_var, j) / 7
    ls_idx = [i for i, v in enumerate(variables) if v is policy.log_std][0]
    offset = sum(int(np.prod(v.shape)) for v in variables[:ls_idx])
    analytic[offset:offset + 2, offset:offset + 2] += 2 * np.eye(2)
    np.testing.assert_allclose(dense, analytic, atol=1e-10)

    rng = np.random.default_rng(5)
    for _ in range(3):
        v = rng.standard_normal(n)
        fvp = fisher_vector_product(kl_fn, variables, tf.constant(v), damping=0.0).numpy()
        np.testing.assert_allclose(fvp, dense @ v, atol=1e-5, rtol=1e-5)
    damped = fisher_vector_product(kl_fn, variables, tf.constant(v), damping=0.1).numpy()
    np.testing.assert_allclose(damped, dense @ v + 0.1 * v, atol=1e-5)


def _slow_gae(rew, val, lengths, term, trunc, last_val, gamma, lam, bootstrap):
    out, ret = [], []
    start = 0
    for p, length in enumerate(lengths):
        r = rew[start:start + length]
        v = val[start:start + length]
        v_end = last_val[p] if (trunc[p] and not term[p] and bootstrap) else 0.0
        for t in range(length):
            a = 0.0
            for k in range(t, length):
                v_next = v[k + 1] if k + 1 < length else v_end
                a += (gamma * lam) ** (k - t) * (r[k] + gamma * v_next - v[k])
            g = sum(gamma ** (k - t) * r[k] for k in range(t, length))
            out.append(a)
            ret.append(g + gamma ** (length - t) * v_end)
        start += length
    return np.array(out), np.array(ret)


@pytest.mark.parametrize("bootstrap", [True, False])
def test_gae_matches_slow_reference_on_multi_path_batch(bootstrap):
    rng = np.random.default_rng(0)
    lengths = np.array([5, 1, 8, 3])
    term = np.array([True, False, False, True])
    trunc = np.array([False, True, True, False])
    n = lengths.sum()
    rew, val = rng.standard_normal(n), rng.standard_normal(n)
    last_val = rng.standard_normal(len(lengths)) * 10
    gamma, lam = 0.99, 0.97
    ends = path_end_values(last_val, term, trunc, bootstrap)
    adv = gae_advantages(rew, val, ends, lengths, gamma, lam)
    ret = discounted_returns(rew, ends, lengths, gamma)
    ref_adv, ref_ret = _slow_gae(rew, val, lengths, term, trunc, last_val, gamma, lam, bootstrap)
    np.testing.assert_allclose(adv, ref_adv, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ret, ref_ret, rtol=1e-10, atol=1e-10)
    # termination never bootstraps; truncation does only when asked
    assert ends[0] == 0 and ends[3] == 0
    assert (ends[1] != 0) == bootstrap


def test_gae_lambda_one_is_return_minus_value():
    rng = np.random.default_rng(2)
    lengths = np.array([6, 4])
    rew, val = rng.standard_normal(10), rng.standard_normal(10)
    ends = np.array([0.0, 1.5])
    adv = gae_advantages(rew, val, ends, lengths, 0.9, 1.0)
    ret = discounted_returns(rew, ends, lengths, 0.9)
    np.testing.assert_allclose(adv, ret - val, atol=1e-12)


def test_standardize():
    x = np.array([1.0, 2.0, 3.0, 10.0])
    z = standardize(x)
    assert abs(z.mean()) < 1e-12 and abs(z.std() - 1) < 1e-6


def test_linear_baseline_recovers_linear_target():
    rng = np.random.default_rng(0)
    obs = rng.uniform(-3, 3, (2000, 4))
    t = rng.integers(0, 1000, 2000)
    w = rng.standard_normal(2 * 4 + 4)
    target = linear_features(obs, t) @ w
    base = LinearFeatureBaseline(4, reg=1e-8)
    base.fit(obs, t, target)
    np.testing.assert_allclose(base.coeffs, w, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(base.predict(obs, t), target, atol=1e-4)


def test_cached_fisher_vector_product_equals_recomputed_one():
    from qprop_tf.optim import fisher_vector_product_fn

    policy, obs = _tiny_policy()
    variables = policy.trainable_variables
    old_dist = policy.distribution(tf.stop_gradient(policy(obs)),
                                   tf.stop_gradient(tf.identity(policy.log_std)))

    def kl_fn():
        return mean_kl(old_dist, policy.distribution(policy(obs)))

    fvp = fisher_vector_product_fn(kl_fn, variables, 1e-3)
    rng = np.random.default_rng(7)
    n = sum(int(np.prod(v.shape)) for v in variables)
    for _ in range(3):
        v = tf.constant(rng.standard_normal(n))
        np.testing.assert_allclose(fvp(v).numpy(),
                                   fisher_vector_product(kl_fn, variables, v, 1e-3).numpy(),
                                   rtol=1e-10, atol=1e-12)


def test_mlp_baseline_fits_a_smooth_target():
    from qprop_tf.baselines import MLPBaseline

    tf.keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (1000, 3)).astype(np.float32)
    target = 10 + 5 * np.sin(2 * obs[:, 0]) + 3 * obs[:, 1] ** 2
    base = MLPBaseline(3, hidden=(32, 32), lr=3e-3, updates=300, minibatch=128)
    t = np.zeros(1000, int)
    base.fit(obs, t, target)
    first = np.mean((base.predict(obs, t) - target) ** 2)
    for _ in range(4):
        base.fit(obs, t, target)
    mse = np.mean((base.predict(obs, t) - target) ** 2)
    assert mse < 0.1 * np.var(target) and mse < first
