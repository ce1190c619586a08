"""``action_scale``: the authors' rllab ``normalize`` (the agent acts in [-1, 1]^d, mapped
linearly onto the env's bounds) against acting in the env's own bounds."""

from __future__ import annotations

import numpy as np
import pytest

from qprop_tf.config import load_config
from qprop_tf.envs import DOMAINS, make_env, unit_bounds
from qprop_tf.errors import ConfigError
from qprop_tf.saved_policy import to_env_bounds


def test_only_humanoid_has_bounds_other_than_unit():
    """The switch changes nothing on six of the seven domains; its docs say Humanoid only."""
    odd = [d for d in DOMAINS if not unit_bounds(make_env(d, 0).action_space)]
    assert odd == ["Humanoid"]
    assert np.allclose(make_env("Humanoid", 0).action_space.high, 0.4)


def test_unit_scale_maps_the_unit_box_onto_humanoids_bounds():
    raw, unit = make_env("Humanoid", 3), make_env("Humanoid", 3, "unit")
    assert unit_bounds(unit.action_space) and not unit_bounds(raw.action_space)
    a = np.linspace(-1.0, 1.0, 17)
    o_unit = unit.step(a)[0]
    o_raw = raw.step(0.4 * a)[0]  # low + (a + 1) (high - low) / 2 = 0.4 a
    np.testing.assert_allclose(o_unit, o_raw, rtol=0, atol=1e-9)
    assert not np.allclose(o_unit, make_env("Humanoid", 3).step(a)[0])  # clamped at 0.4


def test_unit_scale_leaves_the_unit_domains_untouched_bit_for_bit():
    env = make_env("Hopper", 1, "unit")
    assert env.action_space is env.unwrapped.action_space  # not wrapped
    a = np.array([0.3, -0.7, 0.1])
    assert np.array_equal(env.step(a)[0], make_env("Hopper", 1).step(a)[0])


def test_a_bad_action_scale_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown action_scale 'half'; valid: env, unit"):
        load_config("trpo", "Hopper", 0, ["action_scale=half"])
    with pytest.raises(ConfigError, match="unknown action_scale"):
        make_env("Hopper", 0, "raw")
    assert load_config("trpo", "Humanoid", 0, ["action_scale=unit"]).action_scale == "unit"


def test_a_saved_unit_policy_acts_on_the_raw_env_as_the_run_did():
    """Folding the map into the saved output layer: clip-then-map equals map-then-clip."""
    rng = np.random.default_rng(0)
    low, high = -np.ones(3), np.ones(3)
    env_low, env_high = np.array([-0.4, -0.4, -2.0]), np.array([0.4, 0.4, 1.0])
    spec = {"center": rng.normal(size=3), "scale": rng.uniform(0.5, 2, 3),
            "log_std": np.zeros(3)}
    out = to_env_bounds(spec, low, high, env_low, env_high)
    h = rng.normal(size=(50, 3)) * 2
    policy_action = np.clip(spec["center"] + spec["scale"] * h, low, high)
    mapped = env_low + (policy_action + 1) * (env_high - env_low) / 2
    np.testing.assert_allclose(np.clip(out["center"] + out["scale"] * h, env_low, env_high),
                               mapped, atol=1e-12)
    np.testing.assert_allclose(np.exp(out["log_std"]), (env_high - env_low) / 2)
