"""``action_scale``: the authors' rllab ``normalize`` (the agent acts in [-1, 1]^d, mapped
linearly onto the env's bounds) against acting in the env's own bounds."""

from __future__ import annotations

import numpy as np
import pytest

from qprop_tf.config import load_config
from qprop_tf.envs import (
    DOMAINS,
    EXTRA_ENVS,
    NON_UNIT_BOUNDS,
    action_scale_matters,
    make_env,
    unit_bounds,
)
from qprop_tf.errors import ConfigError
from qprop_tf.saved_policy import to_env_bounds


def test_only_humanoid_has_bounds_other_than_unit():
    """The switch changes nothing on six of the seven domains; its docs say Humanoid only,
    and NON_UNIT_BOUNDS, which specs and resumes go by, names exactly the envs it changes."""
    odd = [d for d in DOMAINS if not unit_bounds(make_env(d, 0).action_space)]
    assert odd == ["Humanoid"]
    for name in [*DOMAINS.values(), *EXTRA_ENVS]:
        high = make_env(name, 0).action_space.high
        assert action_scale_matters(name) == (not unit_bounds(make_env(name, 0).action_space))
        assert np.allclose(high, NON_UNIT_BOUNDS.get(name, 1.0))
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


def test_the_authors_action_scale_is_the_default_and_humanoid_specs_record_it():
    """Config's default is the authors' [-1, 1]; a spec records it only where it matters."""
    from reproduce.spec import resolve_runs

    assert load_config("trpo", "Humanoid", 0).action_scale == "unit"
    t1 = {s.domain: s for s in resolve_runs("table1", ["Humanoid", "Hopper"], ["trpo"], 1)}
    assert t1["Humanoid"].overrides["action_scale"] == "unit"
    assert "action_scale" not in t1["Hopper"].overrides
    env_row = resolve_runs("humanoid-env", ["Humanoid"], ["trpo"], 1)[0]
    assert env_row.overrides["action_scale"] == "env"
    assert env_row.identity() != t1["Humanoid"].identity()


def test_runs_made_before_the_switch_count_as_env_runs_on_humanoid_only():
    """A spec.json without ``action_scale`` (every run before 2026-11-28) acted in the env's
    bounds: on Humanoid it is the humanoid-env profile's run, not table1's; elsewhere the
    setting changes nothing, so the run still counts for every profile."""
    import json
    from pathlib import Path

    from reproduce.spec import RunSpec, resolve_runs

    results = Path(__file__).resolve().parents[1] / "results"
    old = RunSpec.from_dict(json.loads(
        (results / "humanoid-env/runs/Humanoid/trpo/seed0/spec.json").read_text()))
    assert "action_scale" not in old.overrides
    assert old.identity() == resolve_runs("humanoid-env", ["Humanoid"], ["trpo"], 1)[0].identity()
    assert old.identity() != resolve_runs("table1", ["Humanoid"], ["trpo"], 1)[0].identity()
    hopper = RunSpec.from_dict(json.loads(
        (results / "table1/runs/Hopper/trpo/seed0/spec.json").read_text()))
    assert "action_scale" not in hopper.overrides
    assert hopper.identity() == resolve_runs("table1", ["Hopper"], ["trpo"], 1)[0].identity()


def test_the_env_unit_humanoid_runs_are_an_extra_row_not_table1s_cells():
    from pathlib import Path

    from reproduce.algo_names import paper_name
    from reproduce.table import build_table

    results = Path(__file__).resolve().parents[1] / "results"
    df, _ = build_table(results, "table1")
    cell = df[(df.domain == "Humanoid") & (df.algo == "trpo")].iloc[0]
    on_disk = sorted((results / "table1/runs/Humanoid/trpo").glob("seed*/DONE"))
    assert cell.seeds_run == len(on_disk)  # the env runs are not counted in the paper's row
    extra = df[(df.domain == "Humanoid") & (df.algo == "trpo@humanoid-env")].iloc[0]
    assert extra.seeds_run >= 2 and not extra.table1_column
    assert extra.algorithm == paper_name("trpo@humanoid-env") == (
        "TRPO, actions in env units (ours)")


def test_a_resume_checks_action_scale_where_it_matters_and_reads_old_configs_as_env():
    """A config.json from before the field existed acted in the env's bounds: resuming it
    with the authors' setting is a mismatch on Humanoid, and no difference on Hopper."""
    old = {k: v for k, v in load_config("trpo", "Humanoid", 0).to_dict().items()
           if k != "action_scale"}
    assert load_config("trpo", "Humanoid", 0).differences(old) == [
        "action_scale: 'env' -> 'unit'"]
    assert load_config("trpo", "Humanoid", 0, ["action_scale=env"]).differences(old) == []
    hopper = {k: v for k, v in load_config("trpo", "Hopper", 0).to_dict().items()
              if k != "action_scale"}
    assert load_config("trpo", "Hopper", 0).differences(hopper) == []
    assert load_config("trpo", "Hopper", 0, ["action_scale=env"]).differences(
        load_config("trpo", "Hopper", 0).to_dict()) == []


def test_a_tagged_row_is_drawn_in_its_algorithms_colour_dash_dot():
    from reproduce.plot_style import dashes, legend_handles, palette

    colors = palette(["trpo", "trpo@humanoid-env", "ddpg"])
    assert colors["trpo@humanoid-env"] == colors["trpo"] != colors["ddpg"]
    assert palette(["trpo"])["trpo"] == colors["trpo"]  # stable with or without the tag
    assert dashes("trpo") == "" and dashes("trpo@humanoid-env")
    solid, tagged = legend_handles(colors, ["trpo", "trpo@humanoid-env"])[0][:2]
    assert solid.get_linestyle() == "-" and tagged.get_linestyle() != "-"
