"""The strong-base switches (issue 11), each off by default: fixed-length rollouts,
lambda-return targets, the value fit's epochs and target scaling, orthogonal init."""

import gymnasium as gym
import numpy as np
import pytest

from qprop_tf.advantages import gae_advantages, lambda_returns, path_end_values
from qprop_tf.baselines import MLPBaseline
from qprop_tf.config import Config, load_config
from qprop_tf.envs import make_envs
from qprop_tf.errors import ConfigError
from qprop_tf.policy import GaussianMLPPolicy, NumpyPolicy
from qprop_tf.runtime import seed_everything
from qprop_tf.sampler import Sampler


def _fixed_sampler(n_envs: int, batch: int, seed: int = 0) -> Sampler:
    envs = make_envs("Hopper", n_envs, seed)
    seed_everything(seed)
    policy = GaussianMLPPolicy(envs[0].observation_space.shape[0],
                               envs[0].action_space.shape[0])
    return Sampler(envs, NumpyPolicy(policy), batch, np.random.default_rng(seed),
                   fixed_length=True)


@pytest.mark.parametrize("n_envs", [1, 2])
def test_fixed_rollouts_hold_exactly_the_batch_and_continue_episodes(n_envs):
    """Exactly batch_size steps a batch; the piece cut at a batch's end goes on in the next
    batch (same env, t continuing, first obs = the cut piece's last_obs); an episode's
    return is counted once, whole, in the batch where it ends."""
    sampler = _fixed_sampler(n_envs, 257)
    batches = [sampler.sample() for _ in range(6)]
    assert all(b.n_steps == 257 for b in batches)
    per_env_rewards: list[list[float]] = [[] for _ in range(n_envs)]
    returns: list[float] = []
    for b in batches:
        ends = np.cumsum(b.path_lengths)
        assert b.path_cut.sum() <= n_envs and not np.any(b.path_cut & b.path_terminated)
        # only the pieces continued from the previous batch start mid-episode
        resumed = int(np.sum(b.t[b.path_starts] != 0))
        assert resumed <= n_envs and (resumed == 0 or b is not batches[0])
        assert np.all(np.diff(b.t)[np.setdiff1d(np.arange(b.n_steps - 1), ends - 1)] == 1)
        returns.extend(b.episode_returns.tolist())
        per_env_rewards[0].extend(b.rew.tolist())
        assert b.episode_lengths.shape == b.episode_returns.shape
    assert len(returns) > 5
    # whole episodes, replayed without the sampler, give the same returns (one env)
    if n_envs == 1:
        rew = np.array(per_env_rewards[0])
        lengths = np.concatenate([b.episode_lengths for b in batches])
        cum = np.concatenate([[0], np.cumsum(lengths)])
        whole = [rew[cum[i]:cum[i + 1]].sum() for i in range(len(lengths))]
        np.testing.assert_allclose(returns, whole)


def test_a_cut_piece_resumes_where_it_stopped():
    sampler = _fixed_sampler(1, 40, seed=3)
    sampler.policy.std[:] = 1e-3  # long, nearly deterministic episodes: cuts happen
    a, b = sampler.sample(), sampler.sample()
    assert a.path_cut[-1], "the first batch should end mid-episode"
    np.testing.assert_array_equal(a.last_obs[-1], b.obs[0])
    assert b.t[0] == a.t[-1] + 1


def test_cut_paths_bootstrap_even_when_truncation_is_terminal():
    """V_end = V(s_T) for a cut piece whatever bootstrap_truncation says; 0 at termination."""
    last = np.array([5.0, 6.0, 7.0, 8.0])
    term = np.array([True, False, False, False])
    trunc = np.array([False, True, False, False])
    cut = np.array([False, False, True, False])
    np.testing.assert_array_equal(path_end_values(last, term, trunc, True, cut),
                                  [0.0, 6.0, 7.0, 0.0])
    np.testing.assert_array_equal(path_end_values(last, term, trunc, False, cut),
                                  [0.0, 0.0, 7.0, 0.0])


def test_lambda_returns_are_advantage_plus_value_and_mc_at_lambda_one():
    rng = np.random.default_rng(0)
    rew, val = rng.normal(size=7), rng.normal(size=7)
    lengths, ends = np.array([4, 3]), np.array([0.0, 2.5])
    adv1 = gae_advantages(rew, val, ends, lengths, 0.9, 1.0)
    ret = lambda_returns(adv1, val)
    # lambda = 1: the lambda-return is the discounted return with the bootstrapped tail
    expect = [sum(0.9**k * r for k, r in enumerate(rew[i:4])) for i in range(4)]
    tail = [sum(0.9**k * r for k, r in enumerate(rew[4 + i:])) + 0.9**(3 - i) * 2.5
            for i in range(3)]
    np.testing.assert_allclose(ret, expect + tail)


def test_value_fit_by_epochs_takes_epochs_times_minibatches_steps():
    base = MLPBaseline(3, (8,), lr=1e-2, minibatch=64, epochs=3, normalize_targets=False)
    obs = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32)
    y = obs @ np.array([1.0, -2.0, 0.5]) + 10.0
    before = float(np.mean((base.predict(obs, None) - y) ** 2))
    base.fit(obs, None, y)
    assert int(base.optimizer.iterations.numpy()) == 3 * 5  # ceil(300 / 64) = 5
    assert float(base.ret_mean.numpy()) == 0.0 and float(base.ret_std.numpy()) == 1.0
    assert float(np.mean((base.predict(obs, None) - y) ** 2)) < before
    norm = MLPBaseline(3, (8,), updates=7, minibatch=64)
    norm.fit(obs, None, y)
    assert int(norm.optimizer.iterations.numpy()) == 7
    assert float(norm.ret_mean.numpy()) == pytest.approx(float(np.mean(y)), rel=1e-5)


def test_orthogonal_init_gains():
    seed_everything(0)
    pol = GaussianMLPPolicy(11, 3, (100, 50, 25), init="orthogonal")
    w0 = pol.hidden_layers[0].kernel.numpy()  # 11 x 100: orthonormal rows, times sqrt(2)
    np.testing.assert_allclose(w0 @ w0.T, 2.0 * np.eye(11), atol=1e-4)
    wm = pol.mean_layer.kernel.numpy()  # 25 x 3: orthonormal columns, times 0.01
    np.testing.assert_allclose(wm.T @ wm, 1e-4 * np.eye(3), atol=1e-7)
    glorot = GaussianMLPPolicy(11, 3, (100, 50, 25))
    assert np.abs(glorot.mean_layer.kernel.numpy()).max() > 0.05  # the default is unchanged
    base = MLPBaseline(11, (64, 64), init="orthogonal")
    out = base.model.layers[-1].kernel.numpy()  # 64 x 1, gain 1
    assert float(np.sum(out**2)) == pytest.approx(1.0, rel=1e-4)


@pytest.mark.parametrize("override, fragment", [
    (["rollout=steps"], "unknown rollout"),
    (["init=he"], "unknown init"),
    (["vf_target=td0"], "unknown vf_target"),
    (["vf_epochs=-1"], "vf_epochs must be >= 0"),
])
def test_bad_strong_base_values_are_refused(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config("trpo", "Hopper", 0, override)


def test_defaults_stay_the_authors():
    cfg = Config()
    assert (cfg.rollout, cfg.init, cfg.vf_target, cfg.vf_epochs, cfg.vf_normalize_targets,
            cfg.baseline, cfg.cg_damping, cfg.max_backtracks) == (
        "paths", "glorot", "mc", 0, True, "linear", 1e-5, 15)
    assert gym.__version__  # the envs used above are gymnasium's


def test_a_batch_that_ended_no_episode_is_readable_but_a_blank_return_is_not(tmp_path):
    from reproduce.results import read_progress

    path = tmp_path / "progress.csv"
    path.write_text("env_steps,average_return,batch_episodes\n500,1.0,2\n1000,,0\n1500,3.0,1\n")
    df = read_progress(path, "average_return")
    assert len(df) == 3 and np.isnan(df.average_return.iloc[1])
    path.write_text("env_steps,average_return,batch_episodes\n500,1.0,2\n1000,,4\n")
    with pytest.raises(ValueError, match="non-numeric or empty"):
        read_progress(path, "average_return")
