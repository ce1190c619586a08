"""The critic's stability switches (issue 14): each does what it says to the fitting, and
nothing to Q-Prop's estimator (A_bar's expansion point mu(s), eta, the analytic term)."""

import numpy as np
import pytest
import tensorflow as tf

from qprop_tf.config import Config, load_config
from qprop_tf.critic import (
    FIT_STATS,
    Critic,
    CriticOptions,
    clip_action,
    huber_loss,
    out_of_bounds,
)
from qprop_tf.errors import ConfigError
from qprop_tf.onpolicy import make_control_variate, make_target_policy
from qprop_tf.policy import GaussianMLPPolicy
from qprop_tf.replay import ReplayBuffer
from qprop_tf.sampler import Batch

OBS_DIM, ACT_DIM = 4, 2
LOW, HIGH = -np.ones(ACT_DIM, np.float32), np.ones(ACT_DIM, np.float32)
SWITCHES = {
    "target_clip": {"critic_target_clip": True},
    "huber": {"critic_loss": "huber", "critic_huber_delta": 0.05},
    "grad_clip": {"critic_grad_clip": 1e-3},
    "lagged": {"critic_target_policy": "lagged"},
}


def _batch(rng, n_paths=20, length=15, mean_scale=2.0) -> Batch:
    """Paths with policy means mostly outside [-1, 1], so a switch that touched mu(s)
    (e.g. clipped it) would show in A_bar."""
    n = n_paths * length
    obs = rng.standard_normal((n, OBS_DIM)).astype(np.float32)
    mean = (mean_scale * rng.standard_normal((n, ACT_DIM))).astype(np.float32)
    act = (mean + rng.standard_normal((n, ACT_DIM))).astype(np.float32)
    rew = np.sin(obs[:, 0]) + obs[:, 1] * act[:, 0] - 0.5 * act[:, 1] ** 2
    trunc = np.zeros(n, bool)
    trunc[np.arange(1, n_paths + 1) * length - 1] = True
    return Batch(obs=obs, act=act, rew=rew.astype(np.float64), terminated=np.zeros(n, bool),
                 truncated=trunc, logp=np.zeros(n), mean=mean,
                 t=np.tile(np.arange(length), n_paths), path_lengths=np.full(n_paths, length),
                 last_obs=rng.standard_normal((n_paths, OBS_DIM)).astype(np.float32),
                 path_terminated=np.zeros(n_paths, bool), path_truncated=np.ones(n_paths, bool),
                 episode_returns=np.zeros(n_paths))


def _policy(bias: float = 0.0, seed: int = 0) -> GaussianMLPPolicy:
    tf.keras.utils.set_random_seed(seed)
    policy = GaussianMLPPolicy(OBS_DIM, ACT_DIM, hidden=(16,))
    policy.mean_layer.bias.assign(np.full(ACT_DIM, bias, np.float32))
    return policy


def _replay(seed: int = 0) -> ReplayBuffer:
    replay = ReplayBuffer(OBS_DIM, ACT_DIM, capacity=2000, seed=seed)
    replay.add_batch(_batch(np.random.default_rng(seed)))
    return replay


def _critic(**options) -> Critic:
    return Critic(OBS_DIM, ACT_DIM, hidden=(16, 16), min_replay=100, jit_compile=False,
                  seed=0, options=CriticOptions(bounds=(LOW, HIGH), **options))


# ----------------------------------------------------------------------- config
@pytest.mark.parametrize("overrides,fragment", [
    (["critic_loss=l1"], "unknown critic_loss"),
    (["critic_target_policy=target"], "unknown critic_target_policy"),
    (["critic_grad_clip=-1"], "critic_grad_clip must be >= 0"),
    (["critic_loss=huber", "critic_huber_delta=0"], "critic_huber_delta must be > 0"),
    (["critic_huber_delta=2"], "only with critic_loss=huber"),
])
def test_bad_switch_values_are_refused(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config("qprop-c", "Hopper", 0, overrides)


@pytest.mark.parametrize("algo", ["trpo", "ddpg"])
def test_switches_are_refused_without_qprops_critic(algo):
    with pytest.raises(ConfigError, match="switches of Q-Prop's critic"):
        load_config(algo, "Hopper", 0, ["critic_target_clip=true"])


def test_defaults_are_the_authors_critic():
    cfg = Config(algo="qprop-c").validate()
    assert (cfg.critic_target_clip, cfg.critic_loss, cfg.critic_grad_clip,
            cfg.critic_target_policy) == (False, "mse", 0.0, "current")
    for switch in SWITCHES.values():
        load_config("qprop-c", "Hopper", 0, [f"{k}={v}" for k, v in switch.items()])


# ----------------------------------------------------------------------- the equations
def test_huber_clip_and_out_of_bounds_by_hand():
    y = tf.constant([0.0, 0.0, 0.0])
    q = tf.constant([0.5, -2.0, 3.0])
    # h(0.5) = 0.125; h(2) = 1 * (2 - 0.5) = 1.5; h(3) = 2.5
    np.testing.assert_allclose(float(huber_loss(y, q, 1.0)), (0.125 + 1.5 + 2.5) / 3)
    with tf.GradientTape() as tape:
        tape.watch(q)
        loss = huber_loss(y, q, 1.0)
    np.testing.assert_allclose(tape.gradient(loss, q).numpy(), [0.5 / 3, -1 / 3, 1 / 3])
    a = tf.constant([[0.5, -3.0], [2.0, 0.0], [0.1, 0.2]])
    np.testing.assert_allclose(clip_action(a, LOW, HIGH).numpy(),
                               [[0.5, -1.0], [1.0, 0.0], [0.1, 0.2]])
    np.testing.assert_array_equal(out_of_bounds(a, LOW, HIGH).numpy(), [1.0, 1.0, 0.0])


# ----------------------------------------------------------------------- the fit
def test_fit_statistics_see_the_bootstrap_actions_out_of_bounds():
    stats = _critic().fit(_replay(), _policy(bias=3.0), 20)
    assert set(FIT_STATS) <= set(stats)
    assert stats["oob_fraction"] == 1.0 and stats["max_abs_mu"] > 2.0
    assert stats["target_max_abs"] >= stats["target_mean_abs"] > 0
    np.testing.assert_allclose(stats["target_oob_mean_abs"], stats["target_mean_abs"],
                               rtol=1e-5)  # every row is out of bounds
    assert stats["target_oob_max_abs"] == stats["target_max_abs"]
    assert stats["grad_norm_max"] >= stats["grad_norm"] > 0
    small = _policy(bias=0.0, seed=1)
    small.mean_layer.kernel.assign(0.1 * small.mean_layer.kernel)
    inside = _critic().fit(_replay(), small, 20)
    assert inside["max_abs_mu"] < 1.0 and inside["oob_fraction"] == 0.0
    assert np.isnan(inside["target_oob_mean_abs"]) and np.isnan(inside["target_oob_max_abs"])
    unbounded = Critic(OBS_DIM, ACT_DIM, hidden=(16, 16), min_replay=100, jit_compile=False,
                       seed=0).fit(_replay(), _policy(bias=3.0), 5)
    assert unbounded["oob_fraction"] == 0.0  # no bounds given: nothing is out of them


def test_target_clip_bootstraps_at_the_clipped_mean():
    policy, replay = _policy(bias=3.0), _replay(seed=3)
    critic = _critic(target_clip=True)
    for v in critic.target_qf.weights:  # a target critic unlike the online one
        v.assign(v + tf.random.normal(v.shape, stddev=0.3, seed=2))
    state = replay._rng.state.numpy()
    obs, act, rew, done, nxt = replay.sample(critic.batch_size)
    q_next = critic.target_qf.q(nxt, tf.clip_by_value(policy(nxt), LOW, HIGH))
    manual = float(tf.reduce_mean(tf.square(rew + 0.99 * (1 - done) * q_next
                                            - critic.qf.q(obs, act))))
    unclipped = critic.target_qf.q(nxt, policy(nxt))
    assert not np.allclose(q_next.numpy(), unclipped.numpy())
    replay._rng.reset(state)
    np.testing.assert_allclose(critic.fit(replay, policy, 1)["loss"], manual, rtol=1e-5)


@pytest.mark.parametrize("options", [{"loss": "huber", "huber_delta": 0.05},
                                     {"grad_clip": 1e-3}, {"target_clip": True}])
def test_each_switch_changes_the_fit(options):
    weights = []
    for opts in ({}, options):
        critic = _critic(**opts)
        critic.fit(_replay(seed=4), _policy(bias=3.0), 30)
        weights.append(critic.qf.weights[0].numpy())
    assert np.abs(weights[0] - weights[1]).max() > 1e-4


def test_lagged_target_policy_follows_the_policy_by_polyak_averaging():
    policy = _policy(seed=5)
    cfg = Config(algo="qprop-c", policy_hidden=(16,)).validate()
    lagged = make_target_policy(cfg, policy)
    for t, s in zip(lagged.variables, policy.variables, strict=True):
        np.testing.assert_array_equal(t.numpy(), s.numpy())  # starts equal
    start = [v.numpy() + 0.5 for v in lagged.trainable_variables]
    for v, x in zip(lagged.trainable_variables, start, strict=True):
        v.assign(x)
    critic = Critic(OBS_DIM, ACT_DIM, hidden=(16, 16), tau=0.01, min_replay=100,
                    jit_compile=False, seed=0, target_policy=lagged)
    critic.fit(_replay(), policy, 50)
    # w'_n = w + (1 - tau)^n (w'_0 - w) with the policy w held fixed during the fit
    for t, s, x in zip(lagged.trainable_variables, policy.trainable_variables, start,
                       strict=True):
        np.testing.assert_allclose(t.numpy(), s.numpy() + 0.99**50 * (x - s.numpy()),
                                   rtol=1e-4, atol=1e-5)
    assert any(k.startswith("target_policy/") for k in critic.get_state())
    other = Critic(OBS_DIM, ACT_DIM, hidden=(16, 16), tau=0.01, min_replay=100,
                   jit_compile=False, seed=0, target_policy=make_target_policy(cfg, policy))
    other.set_state(critic.get_state())
    np.testing.assert_array_equal(other.target_policy.variables[0].numpy(),
                                  lagged.variables[0].numpy())


# ----------------------------------------------------------------------- the estimator
def _analytic_gradient(cv, policy, batch, eta):
    obs = tf.constant(batch.obs)
    with tf.GradientTape() as tape:
        loss = cv.extra_loss(policy(obs), {"obs": obs, "eta": tf.constant(eta)})
    mean_vars = [v for v in policy.trainable_variables if v is not policy.log_std]
    return np.concatenate([g.numpy().ravel() for g in tape.gradient(loss, mean_vars)])


@pytest.mark.parametrize("switch", list(SWITCHES))
def test_a_switch_changes_the_fit_only_not_abar_eta_or_the_analytic_term(switch):
    """Same critic weights -> the same A_bar (expanded at the unclipped mu(s)), eta and
    learning signal, and the same analytic gradient, with the switch on and off."""
    policy = _policy(bias=2.0, seed=6)
    batch = _batch(np.random.default_rng(7))
    adv = np.random.default_rng(8).standard_normal(batch.n_steps)
    out = {}
    for on in (False, True):
        cfg = Config(algo="qprop-c", env="Hopper", min_replay=100, qf_updates_ratio=0.1,
                     critic_xla="false", policy_hidden=(16,), qf_hidden=(16, 16),
                     **(SWITCHES[switch] if on else {})).validate()
        cv = make_control_variate(cfg, OBS_DIM, ACT_DIM, (LOW, HIGH), policy)
        signal, inputs, diag = cv.process(batch, adv, policy)  # A_bar before the fit
        fitted = [v.numpy() for v in cv.critic.qf.weights]
        cv.critic.set_state({**cv.critic.get_state(), **reference_weights(out)})
        out[on] = {"signal": signal, "eta": inputs["eta"], "fitted": fitted, "cv": cv,
                   "grad": _analytic_gradient(cv, policy, batch, inputs["eta"])}
    np.testing.assert_array_equal(out[False]["signal"], out[True]["signal"])
    np.testing.assert_array_equal(out[False]["eta"], out[True]["eta"])
    assert 0 < out[True]["eta"].mean() < 1  # the test sees the per-sample rule at work
    np.testing.assert_allclose(out[False]["grad"], out[True]["grad"], rtol=1e-6, atol=1e-7)
    if switch != "lagged":  # the lagged policy equals the policy while the policy stands still
        assert not all(np.allclose(a, b) for a, b in
                       zip(out[False]["fitted"], out[True]["fitted"], strict=True))


def reference_weights(out: dict) -> dict:
    """The first critic's weights (``qf/i``) to load into the second: the same critic."""
    if False not in out:
        return {}
    return {k: v for k, v in out[False]["cv"].critic.get_state().items()
            if k.startswith("qf/")}


def test_bandit_estimator_stays_unbiased_with_a_critic_fitted_with_every_switch_on():
    """The bandit of reproduce.bandit with Q_w fitted (TD on one-step episodes: y = r) by a
    critic with every switch on: Q-Prop (eta = 1) stays unbiased and removes variance."""
    from reproduce.bandit import Bandit

    bandit = Bandit()
    rng = np.random.default_rng(21)
    d = bandit.sample(3000, rng)
    n = len(d["rew"])
    batch = Batch(obs=d["obs"].astype(np.float32), act=d["act"].astype(np.float32),
                  rew=d["rew"], terminated=np.ones(n, bool), truncated=np.zeros(n, bool),
                  logp=np.zeros(n), mean=d["mean"].astype(np.float32), t=np.zeros(n, int),
                  path_lengths=np.ones(n, int), last_obs=d["obs"].astype(np.float32),
                  path_terminated=np.ones(n, bool), path_truncated=np.zeros(n, bool),
                  episode_returns=d["rew"])
    replay = ReplayBuffer(2, 2, capacity=10000, seed=0)
    replay.add_batch(batch)
    tf.keras.utils.set_random_seed(0)
    policy = GaussianMLPPolicy(2, 2, hidden=())
    cfg = Config(algo="qprop-c").validate()
    critic = Critic(2, 2, hidden=(32, 32), min_replay=100, jit_compile=False, seed=0,
                    options=CriticOptions(bounds=(LOW, HIGH), target_clip=True, loss="huber",
                                          huber_delta=1.0, grad_clip=10.0),
                    target_policy=make_target_policy(cfg, policy))
    critic.fit(replay, policy, 1500)

    def q_fn(obs, act):
        return tf.cast(critic.qf.q(tf.cast(obs, tf.float32), tf.cast(act, tf.float32)),
                       tf.float64)

    true = bandit.true_gradient()
    est = bandit.estimates("ones", q_fn, 300, 100, seed=22)["estimates"]
    z = (est.mean(0) - true) / (est.std(0, ddof=1) / np.sqrt(len(est)))
    assert np.all(np.abs(z) < 4.5), z
    fitted = critic.q_values(batch.obs, batch.act).numpy()
    assert np.corrcoef(fitted, d["rew"])[0, 1] > 0.5  # a fitted critic, not a random one
