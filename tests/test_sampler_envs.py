"""Environments, the sampler's whole-path batches, and config validation."""

import numpy as np
import pytest

from qprop_tf.config import Config, load_config
from qprop_tf.envs import DOMAINS, make_envs, resolve_env_id
from qprop_tf.errors import ConfigError
from qprop_tf.policy import GaussianMLPPolicy, NumpyPolicy
from qprop_tf.runtime import seed_everything
from qprop_tf.sampler import Sampler


def test_paper_names_map_to_v5_ids():
    assert resolve_env_id("Walker") == "Walker2d-v5"
    assert resolve_env_id("Hopper-v5") == "Hopper-v5"
    assert len(DOMAINS) == 7 and all(v.endswith("-v5") for v in DOMAINS.values())


def test_unknown_env_lists_valid_names():
    with pytest.raises(ConfigError) as err:
        resolve_env_id("Hopper-v1")
    msg = str(err.value)
    assert "Hopper-v1" in msg and "HalfCheetah" in msg and "Walker2d-v5" in msg


@pytest.mark.parametrize("override, fragment", [
    (["no_such_key=1"], "unknown config key"),
    (["batch_size=abc"], "bad value for 'batch_size'"),
    (["batch_size=0"], "batch_size must be > 0"),
    (["batch_size=-5"], "batch_size must be > 0"),
    (["gamma=1.5"], "gamma"),
    (["bootstrap_truncation=maybe"], "expected a boolean"),
    (["baseline=quadratic"], "unknown baseline"),
    (["justtext"], "key=value"),
])
def test_bad_config_is_a_clear_error(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config("trpo", "Hopper", 0, override)


def test_overrides_are_typed():
    cfg = load_config("trpo", "Hopper", 0, ["max_steps=1e6", "bootstrap_truncation=false",
                                             "policy_hidden=64,32", "max_kl=0.02"])
    assert cfg.max_steps == 1_000_000 and cfg.bootstrap_truncation is False
    assert cfg.policy_hidden == (64, 32) and cfg.max_kl == 0.02
    with pytest.raises(ConfigError, match="unknown algo"):
        Config(algo="sac").validate()


def _sampler(env="Hopper", n_envs=2, batch=600, seed=0):
    envs = make_envs(env, n_envs, seed)
    seed_everything(seed)
    policy = GaussianMLPPolicy(envs[0].observation_space.shape[0],
                               envs[0].action_space.shape[0])
    return Sampler(envs, NumpyPolicy(policy), batch, np.random.default_rng(seed))


def test_sampler_collects_whole_paths_with_flags_kept_apart():
    batch = _sampler().sample()
    n = batch.n_steps
    assert n >= 600
    assert batch.path_lengths.sum() == n
    assert batch.obs.shape == (n, 11) and batch.act.shape == (n, 3)
    ends = np.cumsum(batch.path_lengths) - 1
    # flags only on the last step of each path, every path ends in exactly one of them
    mask = np.zeros(n, bool)
    mask[ends] = True
    assert not batch.terminated[~mask].any() and not batch.truncated[~mask].any()
    assert np.all(batch.terminated[ends] ^ batch.truncated[ends])
    assert batch.path_terminated.any()  # a random Hopper falls
    np.testing.assert_array_equal(batch.terminated[ends], batch.path_terminated)
    # episode returns and time indices are per path
    starts = batch.path_starts
    np.testing.assert_allclose(batch.episode_returns,
                               np.add.reduceat(batch.rew, starts), rtol=1e-12)
    assert np.all(batch.t[starts] == 0)
    # one observation after each path (the replay rebuilds next observations from it)
    assert batch.last_obs.shape == (batch.n_paths, 11)


def test_sampler_truncation_at_time_limit():
    batch = _sampler("Reacher", n_envs=1, batch=200).sample()  # Reacher never terminates
    assert np.all(batch.path_lengths == 50)
    assert batch.path_truncated.all() and not batch.path_terminated.any()
    assert batch.n_steps == 200  # one env: 4 whole paths, exactly as the sequential sampler
    # 3 envs: 3 paths in parallel reach 150 < 200 steps, so 3 more start: the documented
    # overshoot of parallel whole-path sampling
    assert _sampler("Reacher", n_envs=3, batch=200).sample().n_steps == 300


def test_sampler_logp_matches_tfp():
    s = _sampler(n_envs=1, batch=100)
    batch = s.sample()
    dist = s.policy.policy.distribution(batch.mean)
    np.testing.assert_allclose(dist.log_prob(batch.act).numpy(), batch.logp, rtol=1e-4,
                               atol=1e-4)


def test_sampler_is_deterministic_per_seed():
    a = _sampler(seed=4).sample()
    b = _sampler(seed=4).sample()
    c = _sampler(seed=5).sample()
    np.testing.assert_array_equal(a.obs, b.obs)
    np.testing.assert_array_equal(a.act, b.act)
    assert a.obs.shape != c.obs.shape or not np.array_equal(a.obs, c.obs)


def test_actions_are_clipped_before_the_env():
    s = _sampler(n_envs=1, batch=50)
    s.policy.std = np.full_like(s.policy.std, 50.0)  # huge noise: most samples out of bounds
    seen = []
    env = s.envs[0]
    step = env.step

    def spy(a):
        seen.append(np.array(a))
        return step(a)

    env.step = spy
    batch = s.sample()
    assert np.abs(batch.act).max() > 1.0  # stored as sampled
    assert np.abs(np.stack(seen)).max() <= 1.0  # sent clipped


def test_critic_xla_auto_is_on_up_to_humanoid_and_off_past_the_memory_budget():
    cfg = Config()  # replay 1M transitions
    assert cfg.use_critic_xla(11) and cfg.use_critic_xla(348)  # Hopper, Humanoid
    assert not cfg.use_critic_xla(700)  # 2.8 GB of observations alone
    assert Config(critic_xla="true").use_critic_xla(348)
    assert not Config(critic_xla="false").use_critic_xla(11)
    with pytest.raises(ConfigError, match="critic_xla"):
        Config(critic_xla="yes").validate()
