"""Every --algo trains end to end; Q-Prop runs log their diagnostics and are deterministic."""

import numpy as np
import pandas as pd
import pytest

from qprop_tf.config import ALGOS, ETA_RULES, QPROP_ALGOS, load_config
from qprop_tf.errors import ConfigError
from qprop_tf.progress import TIME_COLUMNS
from qprop_tf.run import train

DIAGNOSTICS = ["critic_loss", "critic_mean_q", "eta_mean", "eta_one_fraction", "corr_adv_abar",
               "signal_var_before", "signal_var_after", "replay_size", "critic_updates"]


def _smoke(algo, out, seed=0, **extra):
    overrides = {"batch_size": 600, "max_steps": 1200, "progress_bar": False,
                 "min_replay": 500, **extra}
    cfg = load_config(algo, "Hopper", seed, overrides)
    return pd.read_csv(train(cfg, out, verbose=False) / "progress.csv")


@pytest.mark.parametrize("algo", ALGOS)
def test_two_iterations_of_every_algo(algo, tmp_path):
    df = _smoke(algo, tmp_path / algo)
    assert list(df.iteration) == [0, 1]
    assert np.isfinite(df.average_return).all()
    if algo in QPROP_ALGOS:
        assert set(DIAGNOSTICS) <= set(df.columns)
        assert (df.critic_updates == df.batch_steps).all()  # ratio 1: one update per step
        assert np.isfinite(df.critic_loss).all()
        if algo.endswith("-c"):
            assert (df.eta_one_fraction < 1).all()  # conservative switches some samples off
        if algo in ("qprop", "vqprop"):
            assert (df.eta_one_fraction == 1).all()


def test_qprop_run_is_deterministic(tmp_path):
    a = _smoke("qprop-c", tmp_path / "a", seed=5)
    b = _smoke("qprop-c", tmp_path / "b", seed=5)
    drop = [c for c in TIME_COLUMNS if c in a.columns]
    pd.testing.assert_frame_equal(a.drop(columns=drop), b.drop(columns=drop), check_exact=True)


def test_eta_is_a_config_field_the_algo_names_preset():
    assert load_config("qprop-c", "Hopper", 0).eta == "conservative"
    assert load_config("vqprop-adaptive", "Hopper", 0).eta == "adaptive"
    for algo in QPROP_ALGOS:
        for rule in ETA_RULES:
            assert load_config(algo, "Hopper", 0, [f"eta={rule}"]).eta == rule
    assert load_config("trpo", "Hopper", 0).eta == ""
    with pytest.raises(ConfigError, match="ddpg has none"):
        load_config("ddpg", "Hopper", 0, ["eta=ones"])
    with pytest.raises(ConfigError, match="unknown eta 'adapt1'"):
        load_config("qprop", "Hopper", 0, ["eta=adapt1"])
    # another algo brings its own preset, unless eta comes with it
    cfg = load_config("qprop-c", "Hopper", 0)
    assert cfg.with_overrides({"algo": "qprop-a"}).validate().eta == "aggressive"
    assert cfg.with_overrides({"algo": "qprop-a", "eta": "ones"}).validate().eta == "ones"
    # a config.json written before the field existed reads as the algo's preset
    old = cfg.to_dict()
    del old["eta"]
    assert cfg.differences(old) == []
    assert load_config("qprop-c", "Hopper", 0, ["eta=ones"]).differences(old) == [
        "eta: 'conservative' -> 'ones'"]


def test_set_eta_overrides_the_preset_in_a_run(tmp_path):
    df = _smoke("qprop-c", tmp_path / "ones", eta="ones")
    assert (df.eta_one_fraction == 1).all()


def test_mlp_baseline_and_switches_run(tmp_path):
    df = _smoke("trpo", tmp_path / "mlp", baseline="mlp", bootstrap_truncation=False,
                fit_baseline_first=True, n_envs=2)
    assert list(df.iteration) == [0, 1] and np.isfinite(df.explained_variance.iloc[1])


@pytest.mark.parametrize("clip", [False, True])
def test_critic_clip_actions_switch_decides_what_the_replay_stores(clip):
    from qprop_tf.config import Config
    from qprop_tf.envs import make_envs
    from qprop_tf.onpolicy import make_control_variate
    from qprop_tf.policy import GaussianMLPPolicy, NumpyPolicy
    from qprop_tf.sampler import Sampler

    cfg = Config(algo="qprop-c", env="Hopper", critic_clip_actions=clip,
                 min_replay=10**6).validate()
    envs = make_envs("Hopper", 1, 0)
    space = envs[0].action_space
    policy = GaussianMLPPolicy(11, 3, init_std=3.0)  # most samples fall outside [-1, 1]
    batch = Sampler(envs, NumpyPolicy(policy), 300, np.random.default_rng(0)).sample()
    cv = make_control_variate(cfg, 11, 3, (space.low, space.high))
    cv._fit(batch, policy)
    stored = cv.replay.act.numpy()[: batch.n_steps + batch.n_paths]
    assert np.abs(batch.act).max() > 1.5  # the batch itself keeps the sampled actions
    if clip:
        assert np.abs(stored).max() <= 1.0
    else:
        assert np.abs(stored).max() > 1.5


def test_reward_scale_scales_what_the_critic_learns_and_nothing_the_policy_sees():
    """The authors' scale_reward (371dfef): the replay stores c * r, so Q_w learns c * Q, and
    A_bar and the analytic term divide Q_w by c (q_baseline.py: qvalue /= scale_reward). A
    critic whose output is exactly c times another's, under reward_scale = c, must give the
    policy the same learning signal and the same analytic loss."""
    import tensorflow as tf

    from qprop_tf.config import Config
    from qprop_tf.envs import make_envs
    from qprop_tf.onpolicy import make_control_variate
    from qprop_tf.policy import GaussianMLPPolicy, NumpyPolicy
    from qprop_tf.sampler import Sampler

    c = 10.0
    envs = make_envs("Hopper", 1, 0)
    policy = GaussianMLPPolicy(11, 3)
    batch = Sampler(envs, NumpyPolicy(policy), 300, np.random.default_rng(0)).sample()
    adv = np.random.default_rng(1).normal(0, 5, batch.n_steps)
    out = {}
    for scale in (1.0, c):
        cfg = Config(algo="qprop", env="Hopper", reward_scale=scale, min_replay=10**6)
        cv = make_control_variate(cfg.validate(), 11, 3)
        cv.critic.qf.q(tf.constant(batch.obs[:1]), tf.constant(batch.mean[:1]))  # build
        layer = cv.critic.qf.out_layer  # the same seed: the same weights, then times scale
        layer.set_weights([w * scale for w in layer.get_weights()])
        signal, inputs, _ = cv.process(batch, adv, policy)
        loss = cv.extra_loss(tf.constant(batch.mean), {"obs": tf.constant(batch.obs),
                                                       "eta": tf.constant(inputs["eta"])})
        rows = batch.n_steps + batch.n_paths
        out[scale] = (signal, float(loss), cv.replay.rew.numpy()[:rows].copy())
    np.testing.assert_allclose(out[c][0], out[1.0][0], rtol=1e-5, atol=1e-6)
    assert out[c][1] == pytest.approx(out[1.0][1], rel=1e-5)
    assert np.abs(out[1.0][0] - adv).max() > 1e-3  # A_bar is not zero: the test can fail
    np.testing.assert_allclose(out[c][2], c * out[1.0][2], rtol=1e-6)
    assert np.abs(out[1.0][2]).max() > 0
    with pytest.raises(ConfigError, match="reward_scale"):
        load_config("qprop-c", "Hopper", 0, {"reward_scale": 0.0})


@pytest.mark.parametrize("scale", [False, True])
def test_prepare_signal_rescales_the_analytic_term_only_when_asked(scale):
    from qprop_tf.config import Config
    from qprop_tf.onpolicy import prepare_signal

    cfg = Config(algo="qprop-c", scale_analytic=scale)
    raw = np.random.default_rng(0).normal(3.0, 20.0, 1000)
    eta = np.ones(1000, np.float32)
    signal, inputs, s = prepare_signal(cfg, raw, {"eta": eta})
    assert abs(signal.mean()) < 1e-9 and abs(signal.std() - 1) < 1e-6
    expect = 1 / (raw.std() + 1e-8) if scale else 1.0
    assert s == pytest.approx(expect)
    np.testing.assert_allclose(inputs["eta"], eta * expect, rtol=1e-6)
    # The estimator as a whole is divided by std(l): signal * std + mean recovers l.
    np.testing.assert_allclose(signal * raw.std() + raw.mean(), raw, rtol=1e-6)


def test_kl_per_action_dim_reaches_trpo():
    from qprop_tf.onpolicy import make_optimizer
    from qprop_tf.policy import GaussianMLPPolicy

    policy = GaussianMLPPolicy(11, 3)
    for flag, scale in (("false", 1.0), ("true", 1 / 3)):
        cfg = load_config("trpo", "Hopper", 0, [f"kl_per_action_dim={flag}"])
        assert make_optimizer(cfg, policy).kl_scale == pytest.approx(scale)
