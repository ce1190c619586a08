"""TRPO and VPG steps on a fixed batch."""

import numpy as np
import tensorflow as tf

from qprop_tf.optim import TRPO, VPG, mean_kl
from qprop_tf.policy import GaussianMLPPolicy


def _fixed_batch(seed=0, n=2000, obs_dim=5, act_dim=2):
    rng = np.random.default_rng(seed)
    tf.keras.utils.set_random_seed(seed)
    policy = GaussianMLPPolicy(obs_dim, act_dim)
    obs = rng.standard_normal((n, obs_dim)).astype(np.float32)
    mean = policy(tf.constant(obs)).numpy()
    act = (mean + rng.standard_normal(mean.shape)).astype(np.float32)
    # advantage: prefer actions close to a target that depends on the state
    target = np.tanh(obs[:, :act_dim])
    adv = -np.sum((act - target) ** 2, axis=1)
    adv = ((adv - adv.mean()) / adv.std()).astype(np.float32)
    return policy, {"obs": obs, "act": act, "signal": adv}


def _surrogate_and_kl(policy, inputs, old_mean, old_log_std):
    old = policy.distribution(tf.constant(old_mean), tf.constant(old_log_std))
    new = policy.distribution(policy(tf.constant(inputs["obs"])))
    ratio = tf.exp(new.log_prob(inputs["act"]) - old.log_prob(inputs["act"]))
    surr = float(tf.reduce_mean(ratio * inputs["signal"]))
    return surr, float(mean_kl(old, new))


def test_trpo_step_respects_trust_region_and_improves_surrogate():
    policy, inputs = _fixed_batch()
    old_mean = policy(tf.constant(inputs["obs"])).numpy()
    old_log_std = policy.log_std.numpy().copy()
    surr0, _ = _surrogate_and_kl(policy, inputs, old_mean, old_log_std)
    stats = TRPO(policy, max_kl=0.01).update(inputs)
    surr1, kl = _surrogate_and_kl(policy, inputs, old_mean, old_log_std)
    assert stats["accepted"] == 1.0
    assert 0 < kl <= 1.5 * 0.01
    assert surr1 > surr0 + 1e-3
    assert abs(stats["mean_kl"] - kl) < 1e-4
    # a second step on the same batch is again bounded relative to its own start
    before = policy(tf.constant(inputs["obs"])).numpy(), policy.log_std.numpy().copy()
    TRPO(policy, max_kl=0.01).update(inputs)
    _, kl2 = _surrogate_and_kl(policy, inputs, *before)
    assert kl2 <= 1.5 * 0.01


def test_trpo_restores_parameters_when_no_step_improves():
    policy, inputs = _fixed_batch(seed=1)
    theta = [v.numpy().copy() for v in policy.trainable_variables]
    # an extra loss that any step away from theta_old makes worse: ||mu - mu_old||^2 * 1e6
    old_mean = tf.constant(policy(tf.constant(inputs["obs"])).numpy())

    def extra(mean, _inputs):
        return 1e6 * tf.reduce_mean(tf.square(mean - old_mean))

    inputs = dict(inputs, signal=np.zeros_like(inputs["signal"]))
    stats = TRPO(policy, max_kl=0.01, extra_loss=extra).update(inputs)
    assert stats["accepted"] == 0.0
    for v, t in zip(policy.trainable_variables, theta, strict=True):
        np.testing.assert_array_equal(v.numpy(), t)


def test_extra_loss_gets_gradient_through_the_mean():
    policy, inputs = _fixed_batch(seed=2)
    inputs = dict(inputs, signal=np.zeros_like(inputs["signal"]))
    obs = tf.constant(inputs["obs"])
    before = float(tf.reduce_mean(policy(obs)[:, 0]))

    def extra(mean, _inputs):  # push the first action dimension up
        return -tf.reduce_mean(mean[:, 0])

    stats = TRPO(policy, max_kl=0.01, extra_loss=extra).update(inputs)
    assert stats["accepted"] == 1.0
    assert float(tf.reduce_mean(policy(obs)[:, 0])) > before + 0.01


def test_vpg_step_improves_surrogate():
    policy, inputs = _fixed_batch(seed=3)
    old_mean = policy(tf.constant(inputs["obs"])).numpy()
    old_log_std = policy.log_std.numpy().copy()
    surr0, _ = _surrogate_and_kl(policy, inputs, old_mean, old_log_std)
    VPG(policy, lr=1e-3).update(inputs)
    surr1, kl = _surrogate_and_kl(policy, inputs, old_mean, old_log_std)
    assert surr1 > surr0 and kl > 0


def test_kl_averaged_over_action_dims_is_a_wider_trust_region():
    """sb3-contrib's KL is the per-dimension KL averaged over actions (KL/d). Solving
    (F/d + l I) s = g and scaling to 2*delta gives exactly the step of the true KL with
    delta*d and damping l*d: the two updates must agree, and the true KL reaches ~d*delta."""
    d = 3
    pol_a, inputs = _fixed_batch(act_dim=d)
    pol_b, _ = _fixed_batch(act_dim=d)
    old_mean = pol_a(tf.constant(inputs["obs"])).numpy()
    old_log_std = pol_a.log_std.numpy().copy()
    sa = TRPO(pol_a, max_kl=0.01, cg_damping=0.1, kl_scale=1.0 / d).update(inputs)
    sb = TRPO(pol_b, max_kl=0.01 * d, cg_damping=0.1 * d).update(inputs)
    for va, vb in zip(pol_a.trainable_variables, pol_b.trainable_variables, strict=True):
        np.testing.assert_allclose(va.numpy(), vb.numpy(), rtol=1e-4, atol=1e-6)
    _, kl = _surrogate_and_kl(pol_a, inputs, old_mean, old_log_std)
    assert abs(sa["mean_kl"] - kl) <= 1e-3 * kl  # the logged KL is the true one
    assert abs(sa["mean_kl"] - sb["mean_kl"]) <= 1e-3 * kl
    assert 0.01 < kl <= 0.01 * d  # wider than the nominal bound, within d times it


def test_analytic_step_share_is_the_extra_terms_part_of_the_steps_decrease():
    from qprop_tf.optim import analytic_step_share

    g, g_q, d = tf.constant([3.0, 1.0]), tf.constant([1.0, 1.0]), tf.constant([-1.0, -1.0])
    assert float(analytic_step_share(g, g_q, d)) == 0.5  # (g_Q . d) / (g . d) = -2 / -4

    def push_up(mean, _inputs):
        return -tf.reduce_mean(mean[:, 0])

    policy, inputs = _fixed_batch(seed=4)
    alone = TRPO(policy, extra_loss=push_up).update(dict(inputs, signal=0 * inputs["signal"]))
    assert abs(alone["analytic_step_share"] - 1.0) < 1e-5  # no likelihood-ratio term
    assert alone["analytic_grad_norm"] > 0
    policy, inputs = _fixed_batch(seed=4)
    both = TRPO(policy, extra_loss=lambda m, i: 1e-3 * push_up(m, i)).update(inputs)
    assert abs(both["analytic_step_share"]) < 0.05  # a small term takes a small share
    policy, inputs = _fixed_batch(seed=4)
    vpg = VPG(policy, extra_loss=push_up).update(dict(inputs, signal=0 * inputs["signal"]))
    assert abs(vpg["analytic_step_share"] - 1.0) < 1e-5
    policy, inputs = _fixed_batch(seed=4)
    none = TRPO(policy).update(inputs)  # no extra term: NaN, and the run does not stop on it
    assert np.isnan(none["analytic_step_share"]) and np.isnan(none["analytic_grad_norm"])
