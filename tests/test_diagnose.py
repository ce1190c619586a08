"""The control-variate diagnostic: its CRN oracle and its end-to-end output."""

import numpy as np
import pandas as pd
import pytest

from qprop_tf.envs import make_env
from qprop_tf.errors import ConfigError
from reproduce.diagnose import StateRecorder, corr, crn_action_effects, diagnose


class _ZeroMeanPolicy:
    """mu(s) = 0, std 0.5: enough of a policy for the oracle."""

    std = np.full(3, 0.5)

    def mean(self, obs: np.ndarray) -> np.ndarray:
        return np.zeros((obs.shape[0], 3))


def _hopper_states(n: int) -> list:
    env = StateRecorder(make_env("Hopper", 3))
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(n):
        env.step(rng.uniform(-0.3, 0.3, 3))
    env.close()
    return env.states


def test_crn_oracle_is_exactly_zero_for_identical_first_actions_and_not_otherwise():
    states = _hopper_states(4)
    a = np.random.default_rng(1).uniform(-1, 1, (4, 3))
    same, se = crn_action_effects("Hopper-v5", _ZeroMeanPolicy(), states, a, a.copy(), 0.99,
                                  30, 3, np.random.default_rng(2))
    np.testing.assert_array_equal(same, 0.0)
    np.testing.assert_array_equal(se, 0.0)
    diff, _ = crn_action_effects("Hopper-v5", _ZeroMeanPolicy(), states, a, -a, 0.99, 30, 3,
                                 np.random.default_rng(2))
    assert np.all(np.abs(diff) > 1e-6)


def test_crn_oracle_sees_the_reward_of_the_first_action():
    # Hopper's reward has a control cost -1e-3 * |a|^2; with horizon 1 the oracle is exactly
    # the reward difference of the first step from the same state.
    states = _hopper_states(2)
    a = np.full((2, 3), 0.9)
    d, _ = crn_action_effects("Hopper-v5", _ZeroMeanPolicy(), states, a, np.zeros((2, 3)),
                              0.99, 1, 2, np.random.default_rng(0))
    env = make_env("Hopper", 0).unwrapped
    expect = []
    for qpos, qvel in states:
        env.set_state(qpos, qvel)
        _, r_a, *_ = env.step(a[0])
        env.set_state(qpos, qvel)
        _, r_0, *_ = env.step(np.zeros(3))
        expect.append(r_a - r_0)
    np.testing.assert_allclose(d, expect, rtol=1e-12, atol=1e-12)


def test_oracle_rejects_non_mujoco_envs():
    with pytest.raises(ConfigError, match="MuJoCo"):
        StateRecorder(make_env("Pendulum-v1", 0))


def test_corr_is_nan_for_constant_input():
    assert np.isnan(corr(np.ones(5), np.arange(5)))
    assert corr(np.arange(5), 2 * np.arange(5)) == pytest.approx(1.0)


def test_diagnose_end_to_end_writes_one_row_per_diagnosed_iteration(tmp_path):
    # InvertedPendulum's bounds are +-3: the default action_scale=unit maps [-1, 1] onto them,
    # in training and in the oracle's replay envs alike
    path = diagnose("InvertedPendulum-v5", "qprop-c", 0, iterations=3, every=2, states=6,
                    replicates=2, horizon=10, out=tmp_path,
                    overrides=["batch_size=300", "min_replay=100"], verbose=False)
    df = pd.read_csv(path)
    assert list(df["iteration"]) == [1, 2]
    for col in ("corr_D_adv", "corr_D_abar", "corr_adv_abar_batch", "std_D"):
        assert col in df.columns
    assert (df["states"] == 6).all()
    assert np.isfinite(df["std_D"]).all() and (df["std_D"] > 0).all()
    with pytest.raises(ConfigError, match="Q-Prop algo"):
        diagnose("Hopper", "trpo", 0, 1, 1, 2, 2, 2, tmp_path, verbose=False)


class _LinearPolicy:
    """mu(s) = scale * tanh(w . s), std = scale * 0.4: one policy in two action units."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.std = np.full(1, 0.4 * scale)
        self.w = np.array([[0.5], [-1.0], [2.0], [0.3]])

    def mean(self, obs: np.ndarray) -> np.ndarray:
        return self.scale * np.tanh(obs @ self.w)


def test_the_oracle_at_the_authors_scale_equals_the_env_scale_oracle_on_mapped_actions():
    """InvertedPendulum's bounds are +-3: a in [-1, 1] (unit) steps the env with 3a. The same
    policy and first actions written in env units give the same D; the unmapped ones not."""
    env = StateRecorder(make_env("InvertedPendulum-v5", 3))
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(5):
        env.step(rng.uniform(-0.2, 0.2, 1))
    env.close()
    a = np.array([[0.9], [-0.5], [1.4], [0.1], [-2.0]])  # 1.4 and -2.0: clipped to the bounds
    b = np.array([[0.0], [0.4], [-0.3], [0.7], [0.2]])
    unit, unit_se = crn_action_effects("InvertedPendulum-v5", _LinearPolicy(1.0), env.states,
                                       a, b, 0.99, 40, 3, np.random.default_rng(5), "unit")
    in_env, env_se = crn_action_effects("InvertedPendulum-v5", _LinearPolicy(3.0),
                                        env.states, 3 * a, 3 * b, 0.99, 40, 3,
                                        np.random.default_rng(5), "env")
    np.testing.assert_allclose(unit, in_env, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(unit_se, env_se, rtol=1e-5, atol=1e-5)
    assert np.abs(unit).max() > 0.1
    raw, _ = crn_action_effects("InvertedPendulum-v5", _LinearPolicy(1.0), env.states, a, b,
                                0.99, 40, 3, np.random.default_rng(5), "env")
    assert np.abs(raw - unit).max() > 1e-3
    with pytest.raises(ConfigError, match="unknown action_scale"):
        crn_action_effects("InvertedPendulum-v5", _LinearPolicy(1.0), env.states, a, b, 0.99,
                           2, 2, np.random.default_rng(5), "half")
